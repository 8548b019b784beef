"""Models of the coupling families: ``build``, ``load``, ``Model``, ``default_channels``, ``pool_schedule``."""

from .nn.architectures import FAMILIES, FIT_DEFAULTS, build, default_channels, pool_schedule
from .nn.model import Model, load

__all__ = ["build", "load", "Model", "FAMILIES", "FIT_DEFAULTS", "default_channels", "pool_schedule"]
