"""Heads: the registry (what each head can do) and the families that fill it.

Registration happens when a family module is imported, in the order below.
"""

# isort: off
from bottleneck.heads import sklearn_import  # noqa: F401  (before scikit-learn loads)
from bottleneck.heads import sklearn_heads  # noqa: F401  (fills the registry, first)
from bottleneck.heads import dense  # noqa: F401
from bottleneck.heads import linear  # noqa: F401
from bottleneck.heads import to_keras  # noqa: F401  (Keras forms of the heads above)
# isort: on
from bottleneck.heads.registry import (
    HEADS,
    SPATIAL_MODES,
    TASKS,
    HeadFileError,
    HeadFormat,
    HeadSpec,
    InvalidParameterError,
    KerasHead,
    check_rows,
    check_task,
    class_scores,
    full_param_name,
    get_head_spec,
    head_param_names,
    keras_head,
    listed_params,
    make_head,
    register_head,
    set_head_params,
)

__all__ = [
    "HEADS", "SPATIAL_MODES", "TASKS", "HeadFileError", "HeadFormat", "HeadSpec",
    "InvalidParameterError", "KerasHead", "check_rows", "check_task", "class_scores",
    "full_param_name", "get_head_spec", "head_param_names", "keras_head", "listed_params",
    "make_head", "register_head", "set_head_params",
]
