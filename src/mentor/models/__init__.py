"""Models: a small zoo (MLPs, CNNs) and a factory that also takes user code or an ``nn.Module``."""

from mentor.models.cnn import CNN
from mentor.models.factory import MODELS, count_parameters, create
from mentor.models.mlp import MLP
from mentor.models.paths import ModulePath, paths, paths_table
from mentor.models.two_head import TwoHeadRegressor
from mentor.outputs import select_output

__all__ = [
    "CNN", "MLP", "MODELS", "ModulePath", "TwoHeadRegressor", "count_parameters", "create", "paths", "paths_table",
    "select_output",
]
