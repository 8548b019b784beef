"""Models of the three coupling families: ``build``, ``load`` and the ``Model`` class."""

from .nn.architectures import FAMILIES, FIT_DEFAULTS, build
from .nn.model import Model, load

__all__ = ["build", "load", "Model", "FAMILIES", "FIT_DEFAULTS"]
