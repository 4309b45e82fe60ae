"""Learning from what people watch, on the write path: features from the store, the time split, training,
checkpoints, scoring and evaluation of the multi-task model (whose network lives in `models/`).

Modules import one way: errors <- features <- split <- ranking <- graph <- distributed <- training <- scoring <-
checkpoint <- evaluation.
"""

from .checkpoint import load_model, save_model, train_and_save
from .errors import FeatureError, ModelError
from .graph import GraphEmbeddings
from .scoring import LoadedModel
from .training import ARCH_CHOICES, BALANCE_CHOICES, DEFAULT_ARCH, DEFAULT_BALANCE, DEFAULT_EPOCHS, TrainOptions

__all__ = [
    "ModelError",
    "FeatureError",
    "TrainOptions",
    "DEFAULT_ARCH",
    "DEFAULT_BALANCE",
    "DEFAULT_EPOCHS",
    "ARCH_CHOICES",
    "BALANCE_CHOICES",
    "train_and_save",
    "save_model",
    "load_model",
    "LoadedModel",
    "GraphEmbeddings",
]
