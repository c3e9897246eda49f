"""Models: fit a head on a cache, the model directory, evaluate, predict on new images."""
