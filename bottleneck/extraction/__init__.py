"""Extraction: resolve a config into a feature model, plan shards, run one shard, run them all."""

from bottleneck.extraction.config import ExtractConfig, resolve_config
from bottleneck.extraction.feature_model import FeatureExtractor
from bottleneck.extraction.run import extract

__all__ = ["ExtractConfig", "FeatureExtractor", "extract", "resolve_config"]

