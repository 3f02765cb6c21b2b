"""Bayesian NSUM models, each a short assembly of :mod:`.components`.

``MODELS`` maps a spec's ``[model] name`` to its class (every concrete subclass of
:class:`~.base.NSUMModel` registers itself).
"""

from .base import NSUMModel
from .correlated import CorrelatedModel
from .gnsum import GNSUMModel
from .maltiel import BarrierModel, CombinedModel, DegreeModel, MaltielModel, TransmissionModel
from .overdispersed import OverdispersedModel
from .pooled import PooledModel

MODELS: dict[str, type[NSUMModel]] = dict(NSUMModel.registry)

__all__ = [
    "MODELS",
    "NSUMModel",
    "MaltielModel",
    "DegreeModel",
    "BarrierModel",
    "TransmissionModel",
    "CombinedModel",
    "OverdispersedModel",
    "CorrelatedModel",
    "PooledModel",
    "GNSUMModel",
]
