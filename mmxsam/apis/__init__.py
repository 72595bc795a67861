"""User-facing inference: build a trained model from its config and run it on an image and a prompt."""
from .inference import TASKS, build_question, inference_xsam, init_xsam

__all__ = ['TASKS', 'build_question', 'inference_xsam', 'init_xsam']
