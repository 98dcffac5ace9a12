"""Models: a small zoo (MLPs, CNNs) and a factory that also takes user code or an ``nn.Module``."""

from mentor.models.cnn import CNN
from mentor.models.factory import MODELS, count_parameters, create
from mentor.models.mlp import MLP

__all__ = ["CNN", "MLP", "MODELS", "count_parameters", "create"]
