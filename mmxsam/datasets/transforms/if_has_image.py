"""Apply image transforms only to samples that have an image.

LLaVA-style conversation data keeps pure-text samples (``img_path=None``); loading, annotation decoding and
resizing cannot run on them, and :class:`PackXSAMInputs` gives them a blank image with ``has_image=False``.
Wrap the image steps so one pipeline serves both kinds of sample::

    dict(type='IfHasImage', transforms=[dict(type='LoadImageFromFile'), dict(type='XSAMResize', ...)])
"""
from typing import List, Optional

from mmcv.transforms import BaseTransform, Compose
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class IfHasImage(BaseTransform):
    """Args: transforms (list[dict]): run, in order, when ``results['img_path']`` is not None."""

    def __init__(self, transforms: List[dict]) -> None:
        self.compose = Compose(transforms)

    def transform(self, results: dict) -> Optional[dict]:
        return self.compose(results) if results.get('img_path') is not None else results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.compose!r})'
