"""Shared machinery of the X-SAM segmentation connectors (not registered).

A connector turns single-scale SAM encoder maps (stride 16) into the maps the
segmentation decoder consumes. Level i takes one input map, runs a learned
branch that maps ``in_channels[i]`` to ``out_channels[i] * scales[i]**2``
channels at the input resolution, then :func:`pixel_shuffle` by ``scales[i]``
(2 -> stride 8, 1 -> stride 16, 0.5 -> stride 32). Subclasses only say what a
branch is (:meth:`_build_branch`).
"""
from abc import ABCMeta, abstractmethod
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from ..utils.pixel_shuffle import (CHANNEL_ORDERS, _power_of_two_exponent, pad_to_multiple,
                                   pixel_shuffle)

IntOrInts = Union[int, Sequence[int]]


def per_level(name: str, value: IntOrInts, num_levels: int) -> Tuple[int, ...]:
    """Broadcast an int, or check a sequence of ints, to one positive int per
    level; errors name the constructor argument."""
    values = [value] * num_levels if isinstance(value, int) else value
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f'{name} must be an int or a sequence of ints, got {value!r}')
    if len(values) != num_levels:
        raise ValueError(f'{name} has {len(values)} entries but there are {num_levels} levels '
                         f'(one per entry of scales): {value!r}')
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f'{name} must hold positive ints, got {value!r}')
    return tuple(values)


class BaseXSAMConnector(BaseModule, metaclass=ABCMeta):
    """Per-level branch followed by a pixel shuffle.

    Args:
        in_channels (int | Sequence[int]): channels of each selected input map
            (an int is shared by all levels).
        out_channels (int | Sequence[int]): channels of each output map.
            ``out_channels[i] * scales[i]**2`` (the branch width before the
            shuffle) must be an integer.
        scales (Sequence[float]): pixel-shuffle scale of each level, powers of
            two; the number of levels is ``len(scales)``.
        in_indices (Sequence[int], optional): which maps of the input sequence
            feed the levels, in level order (negative indices allowed). None:
            the input must hold exactly one map per level.
        channel_order (str): pixel-shuffle channel order, ``'torch'`` or
            ``'xsam'`` (the official code's order, needed only to use its
            released weights unchanged). See :mod:`mmxsam.models.utils.pixel_shuffle`.
        init_cfg (dict | list[dict], optional): mmengine initialisation config.

    Odd input sizes: every input is zero-padded at the bottom/right to a
    multiple of ``max(1 / min(scales), 1)`` before its branch (the official
    code pads every level to even sizes), so the output sizes stay exact
    powers of two apart across levels.
    """

    def __init__(self,
                 in_channels: IntOrInts,
                 out_channels: IntOrInts,
                 scales: Sequence[float],
                 in_indices: Optional[Sequence[int]] = None,
                 channel_order: str = 'torch',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence) or not scales:
            raise ValueError(f'scales must be a non-empty sequence of powers of two, '
                             f'got {scales!r}')
        exponents = []
        for s in scales:
            try:
                exponents.append(_power_of_two_exponent(s))
            except ValueError as err:
                raise ValueError(f'scales: {err}') from None
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f'channel_order must be one of {CHANNEL_ORDERS}, '
                             f'got {channel_order!r}')
        self.num_levels = len(scales)
        self.scales: Tuple[float, ...] = tuple(2.0**k for k in exponents)
        self.in_channels = per_level('in_channels', in_channels, self.num_levels)
        self.out_channels = per_level('out_channels', out_channels, self.num_levels)

        # Branch width before the shuffle: out * s^2 (s=2: 4*out, s=0.5: out/4).
        mid_channels = []
        for level, (out_c, k) in enumerate(zip(self.out_channels, exponents)):
            if k < 0 and out_c % 4**(-k) != 0:
                raise ValueError(
                    f'out_channels[{level}]={out_c} must be divisible by {4**(-k)} for scale '
                    f'{self.scales[level]} (pixel unshuffle multiplies channels by {4**(-k)})')
            mid_channels.append(out_c * 4**k if k >= 0 else out_c // 4**(-k))
        self.mid_channels: Tuple[int, ...] = tuple(mid_channels)

        if in_indices is not None:
            in_indices = tuple(in_indices)
            if len(in_indices) != self.num_levels or not all(
                    isinstance(i, int) and not isinstance(i, bool) for i in in_indices):
                raise ValueError(f'in_indices must hold one int per level ({self.num_levels}), '
                                 f'got {in_indices!r}')
        self.in_indices: Optional[Tuple[int, ...]] = in_indices
        self.channel_order = channel_order
        self.pad_multiple = 2**max(0, -min(exponents))

    @abstractmethod
    def _build_branch(self, level: int) -> nn.Module:
        """Branch of ``level``: (B, in_channels[level], H, W) ->
        (B, mid_channels[level], H, W)."""

    def _init_branches(self) -> None:
        """Build ``self.branches``; subclasses call it at the end of their
        ``__init__``, once the attributes :meth:`_build_branch` reads exist."""
        self.branches = nn.ModuleList(self._build_branch(i) for i in range(self.num_levels))

    def _select_inputs(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f'{type(self).__name__} expects a list/tuple of (B, C, H, W) maps, '
                            f'got {type(inputs).__name__}')
        if self.in_indices is None:
            if len(inputs) != self.num_levels:
                raise ValueError(f'{type(self).__name__} expects {self.num_levels} maps (one per '
                                 f'scale), got {len(inputs)}; set in_indices to select maps')
            return list(inputs)
        try:
            return [inputs[i] for i in self.in_indices]
        except IndexError:
            raise ValueError(f'in_indices {self.in_indices} out of range for {len(inputs)} '
                             f'input maps') from None

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """
        Args:
            inputs (list[Tensor] | tuple[Tensor]): SAM maps, each
                (B, in_channels[i], H, W) (H = W = 64 for a 1024 px SAM input).

        Returns:
            tuple[Tensor]: level i is (B, out_channels[i], H' * s_i, W' * s_i)
            with H', W' the sizes padded to ``pad_multiple``.
        """
        outs = []
        for level, x in enumerate(self._select_inputs(inputs)):
            if x.dim() != 4 or x.shape[1] != self.in_channels[level]:
                raise ValueError(f'level {level}: expected a (B, {self.in_channels[level]}, H, W) '
                                 f'map, got shape {tuple(x.shape)}')
            x = pad_to_multiple(x, self.pad_multiple)          # (B, C_in, H', W')
            x = self.branches[level](x)                         # (B, C_mid, H', W')
            outs.append(pixel_shuffle(x, self.scales[level], self.channel_order))
        return tuple(outs)
