"""Pixel shuffle / unshuffle with power-of-two scales, as used by X-SAM's
segmentation connector (scales 2, 1, 0.5) and segmentation projector (0.5).

One function covers both directions:

- ``scale = 2**k`` (k > 0) trades channels for space: (B, C, H, W) ->
  (B, C / s**2, H * s, W * s), i.e. :func:`torch.nn.functional.pixel_shuffle`.
- ``scale = 1`` is the identity.
- ``scale = 1 / 2**k`` trades space for channels: (B, C, H, W) ->
  (B, C / s**2, ceil(H * s), ceil(W * s)), i.e.
  :func:`torch.nn.functional.pixel_unshuffle` after zero padding.

Two channel orders are supported (they give the same shapes and differ only by
a fixed permutation of the channels):

- ``'torch'`` (default): exactly ``F.pixel_shuffle`` / ``F.pixel_unshuffle``.
  For s = 1/r, output channel ``c * r**2 + i * r + j`` holds input channel ``c``
  at offset (i, j) of each r x r block; s = r is the exact inverse, so a
  round trip 1/r then r is the identity.
- ``'xsam'``: the reshape/permute sequence of the official X-SAM
  ``pixel_shuffle`` (channels last: reshape to (B, H, W*s, C/s), swap H and W,
  reshape to (B, W*s, H*s, C/s**2), swap back). For s = 1/2 the output channel
  is ``(2 * i + j) * C + c`` (offset-major); for s = 2 output (c, 2h+i, 2w+j)
  reads input channel ``(2 * j + i) * C_out + c``. A round trip 1/2 then 2 in
  this order transposes every 2x2 block, so it is *not* the identity. Use it
  only to load weights trained by the official code without permuting them.
"""
import math
import numbers
from typing import Optional, Tuple

import torch.nn.functional as F
from torch import Tensor

CHANNEL_ORDERS = ('torch', 'xsam')


def _power_of_two_exponent(scale: float) -> int:
    """Return k such that ``scale == 2**k``; raise ValueError otherwise."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise ValueError(f'scale must be a number 2**k (k an integer), got {scale!r}')
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f'scale must be a positive power of two, got {scale!r}')
    mantissa, exponent = math.frexp(scale)  # scale = mantissa * 2**exponent, 0.5 <= m < 1
    if mantissa != 0.5:
        raise ValueError(
            f'scale must be a power of two (..., 0.25, 0.5, 1, 2, 4, ...), got {scale!r}')
    return exponent - 1


def _check_channel_order(channel_order: str) -> None:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(
            f'channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}')


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad an NCHW map at the bottom and right so that H and W are
    multiples of ``multiple`` (the X-SAM ``maybe_pad`` rule, generalised from
    2 to any positive integer). Returns ``x`` itself when nothing is needed.

    Args:
        x (Tensor): (B, C, H, W).
        multiple (int): positive integer.

    Returns:
        Tensor: (B, C, ceil(H / m) * m, ceil(W / m) * m).
    """
    if x.dim() != 4:
        raise ValueError(f'pad_to_multiple expects a 4-D (B, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)}')
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f'multiple must be a positive int, got {multiple!r}')
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    # F.pad order: (left, right, top, bottom) for the last two dims.
    return F.pad(x, (0, pad_w, 0, pad_h))


def pixel_shuffle(x: Tensor, scale: float, channel_order: str = 'torch') -> Tensor:
    """Pixel shuffle (scale > 1) or unshuffle (scale < 1) of an NCHW map.

    Args:
        x (Tensor): (B, C, H, W).
        scale (float): ``2**k`` for an integer k: 2 doubles H and W and divides
            C by 4; 0.5 halves H and W and multiplies C by 4; 1 returns ``x``.
        channel_order (str): ``'torch'`` (F.pixel_shuffle / F.pixel_unshuffle)
            or ``'xsam'`` (the official X-SAM order, see the module docstring).

    Returns:
        Tensor: (B, C / s**2, H', W') with H' = H * s, W' = W * s for s >= 1 and
        H' = ceil(H * s), W' = ceil(W * s) for s < 1.

    Odd sizes (s < 1, r = 1 / s): H and W are first zero-padded at the bottom
    and right to multiples of r, as the official ``maybe_pad`` does for r = 2
    (``F.pad(x, (0, 0, 0, W % 2, 0, H % 2))`` on a channels-last map).

    Raises:
        ValueError: ``x`` is not 4-D, ``scale`` is not a power of two, C is
            not divisible by s**2 (s > 1) or ``channel_order`` is unknown.
    """
    _check_channel_order(channel_order)
    k = _power_of_two_exponent(scale)
    if x.dim() != 4:
        raise ValueError(f'pixel_shuffle expects a 4-D (B, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)}')
    if k == 0:
        return x
    r = 2 ** abs(k)
    b, c, h, w = x.shape
    if k > 0:
        if c % (r * r) != 0:
            raise ValueError(f'pixel_shuffle with scale {scale} needs channels divisible by '
                             f'{r * r}, got {c} channels')
        if channel_order == 'torch':
            return F.pixel_shuffle(x, r)
        # Official order, channels last: (B, H, W, C) -> (B, H, W*r, C/r) -> swap H, W
        # -> (B, W*r, H*r, C/r^2) -> swap back.
        y = x.permute(0, 2, 3, 1).reshape(b, h, w * r, c // r)
        y = y.transpose(1, 2).reshape(b, w * r, h * r, c // (r * r)).transpose(1, 2)
        return y.permute(0, 3, 1, 2).contiguous()

    x = pad_to_multiple(x, r)
    h, w = x.shape[-2:]
    if channel_order == 'torch':
        return F.pixel_unshuffle(x, r)
    # Official order, channels last: (B, H, W, C) -> (B, H, W/r, C*r) -> swap H, W
    # -> (B, W/r, H/r, C*r^2) -> swap back.
    y = x.permute(0, 2, 3, 1).reshape(b, h, w // r, c * r)
    y = y.transpose(1, 2).reshape(b, w // r, h // r, c * r * r).transpose(1, 2)
    return y.permute(0, 3, 1, 2).contiguous()


def pixel_shuffle_tokens(x: Tensor,
                         h: int,
                         w: int,
                         scale: float,
                         channel_order: str = 'torch') -> Tuple[Tensor, Tuple[int, int]]:
    """:func:`pixel_shuffle` for a token sequence laid out row-major on an
    ``h x w`` grid, e.g. SAM block tokens before the segmentation projector
    (scale 0.5: (B, 64*64, 1024) -> (B, 32*32, 4096)).

    Args:
        x (Tensor): (B, N, C) with N == h * w; token n sits at row n // w,
            column n % w.
        h (int): grid height.
        w (int): grid width.
        scale (float): as in :func:`pixel_shuffle` (same padding rule).
        channel_order (str): as in :func:`pixel_shuffle`.

    Returns:
        tuple: the tokens (B, h' * w', C / s**2), row-major on the new grid,
        and the new grid size (h', w').
    """
    if x.dim() != 3:
        raise ValueError(f'pixel_shuffle_tokens expects a 3-D (B, N, C) tensor, got shape '
                         f'{tuple(x.shape)}')
    b, n, c = x.shape
    if n != h * w:
        raise ValueError(f'pixel_shuffle_tokens: {n} tokens do not fill an h x w = {h} x {w} '
                         f'grid ({h * w} tokens)')
    grid = x.transpose(1, 2).reshape(b, c, h, w)  # (B, C, h, w)
    out = pixel_shuffle(grid, scale, channel_order=channel_order)  # (B, C', h', w')
    out_h, out_w = out.shape[-2:]
    return out.flatten(2).transpose(1, 2), (out_h, out_w)


def token_grid(num_tokens: int, grid_size: Optional[Tuple[int, int]] = None, owner: str = 'tokens') -> Tuple[int, int]:
    """The ``(h, w)`` grid of ``num_tokens`` row-major tokens: ``grid_size`` if given, else the square one.

    Raises:
        ValueError: the tokens are not a square grid (and no ``grid_size`` was given), or do not fill
            ``grid_size``. Messages start with ``owner``.
    """
    if grid_size is None:
        side = math.isqrt(num_tokens)
        if side * side != num_tokens:
            raise ValueError(f'{owner}: {num_tokens} tokens are not a square grid; pass grid_size=(h, w)')
        return side, side
    h, w = grid_size
    if num_tokens != h * w:
        raise ValueError(f'{owner}: {num_tokens} tokens do not fill a {h} x {w} grid')
    return h, w
