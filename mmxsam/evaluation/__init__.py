"""mmxsam evaluation. Importing this package registers its metrics into mmdet's ``METRICS``."""
from . import metrics  # noqa: F401  (registration)
from .metrics import ReferSegMetric

__all__ = ['ReferSegMetric']
