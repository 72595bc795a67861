from .chat_metric import ChatMetric
from .gcg_metric import GCGMetric
from .refer_seg_metric import ReferSegMetric
from .sem_seg_metric import XSAMSemSegMetric
from .vgd_metric import VGDMetric

__all__ = ['ChatMetric', 'GCGMetric', 'ReferSegMetric', 'VGDMetric', 'XSAMSemSegMetric']
