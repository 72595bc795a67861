"""User-facing inference: build a trained model from its config and run it on an image and a prompt."""
from .inference import TASKS, build_inference_pipeline, build_question, build_record, inference_xsam, init_xsam
from .visual_prompt_specs import render_visual_prompt, render_visual_prompts
from .xsam_inferencer import XSAMInferencer

__all__ = [
    'TASKS', 'build_question', 'build_record', 'build_inference_pipeline', 'inference_xsam', 'init_xsam',
    'render_visual_prompt', 'render_visual_prompts', 'XSAMInferencer'
]
