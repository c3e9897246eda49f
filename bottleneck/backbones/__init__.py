"""Backbones: the registry (one line per backbone) and the models that are not in Keras.

Adding a keras.applications backbone is one line below; a backbone with converted weights is
an architecture module, a weights module with its resolver, and one line here.
"""

from bottleneck.backbones import lite0_weights
from bottleneck.backbones.preprocessing import caffe_mode, from_module, tf_mode
from bottleneck.backbones.registry import (
    BACKBONES,
    RANDOM_WEIGHTS_SEED,
    Backbone,
    ResolvedWeights,
    get_backbone,
    preprocess_mode,
    register_backbone,
)

_APPS = "keras.applications"
for _backbone in (
    Backbone("inception_v3", f"{_APPS}.inception_v3", "InceptionV3", 299, 75, 2048,
             "InceptionV3, 2048-d pooled", keras_preprocessing=tf_mode),
    Backbone("mobilenet_v2", f"{_APPS}.mobilenet_v2", "MobileNetV2", 224, 32, 1280,
             "MobileNetV2 (alpha 1.0), 1280-d pooled; imagenet weights at 96-224",
             keras_preprocessing=tf_mode),
    Backbone("mobilenet", f"{_APPS}.mobilenet", "MobileNet", 224, 32, 1024,
             "MobileNet v1 (alpha 1.0), 1024-d pooled; imagenet weights at 128-224",
             keras_preprocessing=tf_mode),
    Backbone("vgg16", f"{_APPS}.vgg16", "VGG16", 224, 32, 512,
             "VGG16, 512-d pooled; intermediate layers such as block4_pool",
             keras_preprocessing=caffe_mode, preprocess_mode="caffe"),
    Backbone("vgg19", f"{_APPS}.vgg19", "VGG19", 224, 32, 512,
             "VGG19, 512-d pooled; intermediate layers such as block4_pool",
             keras_preprocessing=caffe_mode, preprocess_mode="caffe"),
    Backbone("resnet50", f"{_APPS}.resnet50", "ResNet50", 224, 32, 2048,
             "ResNet50, 2048-d pooled", keras_preprocessing=caffe_mode, preprocess_mode="caffe"),
    Backbone("xception", f"{_APPS}.xception", "Xception", 299, 71, 2048,
             "Xception, 2048-d pooled", keras_preprocessing=tf_mode),
    Backbone("efficientnet_lite0", "bottleneck.backbones.efficientnet_lite", "EfficientNetLite0",
             224, 32, 1280, "EfficientNet-Lite0, 1280-d pooled; imagenet weights offline "
             "(converted)", resolvers={"imagenet": lite0_weights.imagenet_weights},
             keras_preprocessing=from_module("bottleneck.backbones.efficientnet_lite"),
             preprocess_mode="lite0",
             preprocess_aliases=("bottleneck.efficientnet_lite.preprocess_input",)),
):
    register_backbone(_backbone)

__all__ = ["BACKBONES", "RANDOM_WEIGHTS_SEED", "Backbone", "ResolvedWeights", "get_backbone",
           "preprocess_mode", "register_backbone"]
