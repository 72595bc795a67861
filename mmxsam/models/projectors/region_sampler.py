"""Region sampler for visual prompts: one feature per prompt mask (X-SAM's ``vision_sampler``,
sampler_type "naive"; no parameters).

For every prompt mask, ``num_points`` foreground pixels are drawn at random, mapped onto the
feature grid, bilinearly sampled with ``F.grid_sample`` and pooled to one C-d vector (it
replaces the ``<region>`` placeholder in the LLM input). In X-SAM the feature grid is the
seg projector output, (B, 1024, 3072) tokens on a 32x32 grid, and the masks are 1024x1024.

Point selection (as the official ``rand_sample_repeat``): a mask with n >= P foreground pixels
gives P distinct pixels drawn uniformly without replacement; a mask with n < P pixels gives all
n pixels plus P - n drawn uniformly with replacement.

Pixel -> grid mapping. Mask pixel (row y, column x) of an H x W mask, feature grid h x w,
``F.grid_sample`` coordinates gx, gy in [-1, 1] and fx, fy the resulting position in feature
cells (cell centres at 0 .. w-1):

- ``align_corners=True`` (official, the default): the pixel index is normalised by the mask
  size, u = x / W, v = y / H (in [0, 1)), then ``g = 2 u - 1`` with ``align_corners=True``:

      gx = 2 x / W - 1,   gy = 2 y / H - 1,   fx = x (w - 1) / W,   fy = y (h - 1) / H.

  Pixel 0 lands on the centre of cell 0, but pixel W-1 on (W-1)(w-1)/W, short of the last
  centre: compared with the geometric position of the pixel centre, (x + 0.5) w / W - 0.5, the
  point is off by up to half a feature cell near the borders (about +0.48 cell at x = 0 and
  -0.5 cell at x = W-1 for 1024 -> 32) and exact in the middle. Keep this to reuse weights
  trained by the official code.
- ``align_corners=False``: pixel centres map exactly, u = (x + 0.5) / W, with
  ``align_corners=False``:

      gx = (2 x + 1) / W - 1,   gy = (2 y + 1) / H - 1,   fx = (x + 0.5) w / W - 0.5.

  Points within half a cell of the border are clamped to the border cells
  (``padding_mode='border'``, which the first mapping never needs).
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.pixel_shuffle import token_grid

POOLS = ('max', 'mean')


def _rand(shape: Sequence[int], generator: Optional[torch.Generator], device: torch.device,
          dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform [0, 1) on ``device``, drawn from ``generator`` (on its own device) if given."""
    if generator is None:
        return torch.rand(shape, device=device, dtype=dtype)
    return torch.rand(shape, generator=generator, device=generator.device,
                      dtype=dtype).to(device)


def sample_points(masks: Tensor,
                  num_points: int,
                  generator: Optional[torch.Generator] = None,
                  align_corners: bool = True) -> Tensor:
    """Draw ``num_points`` foreground pixels of each mask, as ``grid_sample`` coordinates.

    Args:
        masks (Tensor): (K, H, W) or (H, W), bool (or any dtype: non-zero = foreground).
        num_points (int): P, points per mask.
        generator (torch.Generator, optional): random source (results are reproducible for a
            given seed); the global RNG if None.
        align_corners (bool): which pixel -> [-1, 1] mapping (module docstring).

    Returns:
        Tensor: (K, P, 2) (or (P, 2) for a 2-D mask) float32 coordinates (gx, gy) in [-1, 1],
        x (column) first as ``F.grid_sample`` expects. Without replacement when a mask has at
        least P pixels; otherwise all its pixels plus random repeats.

    Raises:
        ValueError: a mask has no foreground pixel (names its index).
    """
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
        raise ValueError(f'num_points must be a positive int, got {num_points!r}')
    single = masks.dim() == 2
    if single:
        masks = masks[None]
    if masks.dim() != 3:
        raise ValueError(f'sample_points expects (K, H, W) or (H, W) masks, got shape '
                         f'{tuple(masks.shape)}')
    k, h, w = masks.shape
    device = masks.device
    flat = masks.reshape(k, h * w) != 0  # (K, HW)
    counts = flat.sum(1)  # (K, )
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f'prompt mask(s) {empty} of {k} have no foreground pixel')
    # Foreground pixels of all masks, grouped by mask: fg_mask (N, ), fg_pix (N, ) flat index.
    fg_mask, fg_pix = flat.nonzero(as_tuple=True)
    offsets = counts.cumsum(0) - counts  # (K, ) start of each mask's group
    # A random permutation inside every group at once: sort by (mask index + U[0, 1)).
    keys = fg_mask.double() + _rand(fg_mask.shape, generator, device, torch.float64)
    order = keys.argsort()  # (N, ) group k stays at [offsets[k], offsets[k] + counts[k])
    # Slot j of mask k takes the j-th element of its permuted group (distinct pixels) while
    # j < counts[k], and a uniformly random element of the group (a repeat) after that.
    j = torch.arange(num_points, device=device)[None]  # (1, P)
    repeat = (_rand((k, num_points), generator, device, torch.float64) * counts[:, None]).long()
    repeat = torch.minimum(repeat, counts[:, None] - 1)  # guard the U -> 1 rounding edge
    slot = torch.where(j < counts[:, None], j, repeat)  # (K, P)
    pix = fg_pix[order[offsets[:, None] + slot]]  # (K, P) flat pixel index
    y, x = (pix // w).float(), (pix % w).float()
    if align_corners:  # official: x / W in [0, 1), then 2u - 1
        points = torch.stack([2 * x / w - 1, 2 * y / h - 1], dim=-1)
    else:  # pixel centres: (x + 0.5) / W
        points = torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], dim=-1)
    return points[0] if single else points  # (K, P, 2)


@MODELS.register_module()
class XSAMRegionSampler(BaseModule):
    """Pool a feature map at random points of each prompt mask (no parameters).

    Args:
        num_points (int): points sampled per prompt mask. Default 256 (X-SAM).
        pool (str): ``'max'`` (the official code, ``AdaptiveMaxPool1d``) or ``'mean'`` (what
            the paper's text says) over the points.
        align_corners (bool): the pixel -> feature-grid mapping (module docstring): True is the
            official one, False aligns pixel centres exactly.
        init_cfg (dict | list[dict], optional): unused (no parameters); kept for the
            BaseModule interface.

    ``forward(features, prompt_masks, generator=None, grid_size=None)``:

    - features: (B, C, h, w) maps, or (B, h * w, C) tokens row-major on an h x w grid
      (``grid_size=(h, w)``; a square grid is assumed otherwise), e.g. the seg projector
      output (B, 1024, 3072).
    - prompt_masks: B tensors (K_b, H_b, W_b) bool (K_b may be 0; mask size independent of
      the grid), e.g. (K_b, 1024, 1024).
    - returns: B tensors (K_b, C) in the features' dtype, differentiable w.r.t. the features.

    An empty prompt mask raises ValueError naming the sample and prompt index.
    """

    def __init__(self,
                 num_points: int = 256,
                 pool: str = 'max',
                 align_corners: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 1:
            raise ValueError(f'num_points must be a positive int, got {num_points!r}')
        if pool not in POOLS:
            raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
        self.num_points = num_points
        self.pool = pool
        self.align_corners = align_corners

    def sample_points(self, masks: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """(K, H, W) masks -> (K, num_points, 2) grid coordinates; see :func:`sample_points`."""
        return sample_points(masks, self.num_points, generator, self.align_corners)

    @staticmethod
    def _to_maps(features: Tensor, grid_size: Optional[Tuple[int, int]]) -> Tensor:
        """(B, C, h, w) or (B, h * w, C) -> (B, C, h, w)."""
        if features.dim() == 4:
            return features
        if features.dim() != 3:
            raise ValueError(f'XSAMRegionSampler expects (B, C, h, w) maps or (B, h*w, C) tokens, '
                             f'got shape {tuple(features.shape)}')
        b, n, c = features.shape
        h, w = token_grid(n, grid_size, 'XSAMRegionSampler')
        return features.transpose(1, 2).reshape(b, c, h, w)

    def forward(self,
                features: Tensor,
                prompt_masks: Sequence[Tensor],
                generator: Optional[torch.Generator] = None,
                grid_size: Optional[Tuple[int, int]] = None) -> List[Tensor]:
        """Features (B, C, h, w) or (B, h*w, C) + B masks (K_b, H, W) -> B tensors (K_b, C)."""
        maps = self._to_maps(features, grid_size)  # (B, C, h, w)
        b, c = maps.shape[:2]
        if len(prompt_masks) != b:
            raise ValueError(f'XSAMRegionSampler: {len(prompt_masks)} prompt mask sets for a batch '
                             f'of {b} feature maps')
        outs = []
        for i, masks in enumerate(prompt_masks):
            if masks.dim() != 3:
                raise ValueError(f'XSAMRegionSampler: prompt masks of sample {i} must be '
                                 f'(K, H, W), got shape {tuple(masks.shape)}')
            if masks.shape[0] == 0:
                outs.append(maps.new_zeros((0, c)))
                continue
            empty = (masks.flatten(1) == 0).all(1).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f'XSAMRegionSampler: prompt mask {empty[0]} of sample {i} is '
                                 f'empty (no foreground pixel); empty prompts: {empty}')
            grid = self.sample_points(masks.to(maps.device), generator)  # (K, P, 2)
            # one grid_sample for all K prompts: (1, C, h, w) at (1, K, P, 2) -> (1, C, K, P),
            # in float32 as the official code
            sampled = F.grid_sample(maps[i:i + 1].float(), grid[None], mode='bilinear',
                                    padding_mode='border', align_corners=self.align_corners)
            sampled = sampled[0]  # (C, K, P)
            pooled = sampled.amax(-1) if self.pool == 'max' else sampled.mean(-1)  # (C, K)
            outs.append(pooled.t().to(maps.dtype))  # (K, C)
        return outs
