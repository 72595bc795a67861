"""Drawing helpers for X-SAM results."""
from .draw_result import draw_xsam_result

__all__ = ['draw_xsam_result']
