"""mmdet's ``Resize`` that also resizes X-SAM's extra masks (visual prompts, ignore regions)."""
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS

EXTRA_MASK_KEYS = ('gt_vprompt_masks', 'gt_ignore_mask')


@TRANSFORMS.register_module()
class XSAMResize(Resize):
    """:class:`mmdet.datasets.transforms.Resize` (same arguments) applied to ``gt_masks`` and to the
    :class:`BitmapMasks` under ``gt_vprompt_masks`` and ``gt_ignore_mask`` (nearest neighbour, as masks)."""

    def _resize_masks(self, results: dict) -> None:
        super()._resize_masks(results)
        for key in EXTRA_MASK_KEYS:
            if results.get(key) is not None:
                if self.keep_ratio:
                    results[key] = results[key].rescale(results['scale'])
                else:
                    results[key] = results[key].resize(results['img_shape'])
