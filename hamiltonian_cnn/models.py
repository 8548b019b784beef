"""Models of the coupling families: ``build``, ``load``, the ``Model`` class and ``default_channels``."""

from .nn.architectures import FAMILIES, FIT_DEFAULTS, build, default_channels
from .nn.model import Model, load

__all__ = ["build", "load", "Model", "FAMILIES", "FIT_DEFAULTS", "default_channels"]
