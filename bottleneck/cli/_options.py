"""Help texts that several commands share."""

ENGINE_HELP = ("What runs the backbone: tf (TensorFlow, the reference) or openvino (a converted "
               "copy, faster on CPUs; pip install 'bottleneck[openvino]').")
PRECISION_HELP = ("fp32 gives TensorFlow's features; bf16 (openvino, on CPUs with bf16) is faster "
                  "and within cosine 0.9999 of them.")
THREADS_HELP = "Inference threads of the openvino engine (default: the cores this process may use)."
