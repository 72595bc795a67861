"""Center crop for detection/segmentation samples (X-SAM's large-scale-jitter crop).

X-SAM's stage-1 augmentation (reference §3) rescales by U(0.1, 2.0) x 1024 and then takes the *center*
1024 crop (padding smaller images afterwards). mmdet's :class:`RandomCrop` crops images, boxes, masks and
segmentation maps consistently but at a random offset; this subclass keeps all of that and only fixes the
offset to the center.
"""
from typing import Tuple

from mmdet.datasets.transforms import RandomCrop
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class CenterCropDet(RandomCrop):
    """:class:`mmdet.datasets.transforms.RandomCrop` with the crop window centred (same arguments)."""

    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        margin_h, margin_w = margin
        return margin_h // 2, margin_w // 2
