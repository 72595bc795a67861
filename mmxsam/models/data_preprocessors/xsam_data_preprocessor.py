"""One loaded image, two model inputs: the SAM input and the image-encoder (SigLIP) input.

Reference §1.1 (SAM) and §1.4 (SigLIP). The pipeline loads and resizes one image per sample (longest
side to ``sam_size``, mmdet ``Resize(keep_ratio=True)``) and ``PackDetInputs`` gives a uint8 ``(3, H, W)``
tensor. From it this preprocessor builds, on the data's device:

* ``inputs`` ``(B, 3, sam_size, sam_size)`` float: exactly :class:`~mmdet.models.DetDataPreprocessor`
  with ``pad_size_divisor=sam_size``: channel conversion, ImageNet normalisation, zero padding at the
  bottom/right (after normalisation, as SAM's processor does). Every image must fit in
  ``sam_size x sam_size``, so the batch is always exactly that size (SAM's fixed token grid).
  ``img_shape`` stays the unpadded size; ``pad_shape`` and ``batch_input_shape`` become
  ``(sam_size, sam_size)``; in training, ``gt_instances.masks`` and ``gt_sem_seg`` are padded to it
  (``pad_mask`` / ``pad_seg``, as the parent).
* ``encoder_inputs`` ``(B, 3, encoder_size, encoder_size)`` float, SigLIP's preprocessing on the same
  (unpadded) image: optionally expand to a square with the mean colour (xtuner ``expand2square``: the image
  centred, the short side filled with ``int(mean)``, i.e. 127 for SigLIP), resize to
  ``encoder_size x encoder_size`` (antialiased, like PIL's resize in HF's image processor, clamped and
  rounded to the uint8 grid for uint8 inputs), normalise with ``encoder_mean`` / ``encoder_std``
  (127.5 / 127.5, i.e. 0.5 / 0.5 of ``[0, 1]``).

Difference from the reference: SigLIP sees the image after the pipeline's resize to ``sam_size`` rather
than the original file (one resize more; the pixels agree up to resampling).
"""
from numbers import Number
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmengine.utils import is_seq_of
from torch import Tensor

ENCODER_INTERPOLATIONS = ('bilinear', 'bicubic')


@MODELS.register_module()
class XSAMDataPreprocessor(DetDataPreprocessor):
    """SAM input (fixed-size, ImageNet-normalised) and image-encoder input from one image per sample.

    Args:
        sam_size (int): side of the SAM input; images larger than ``sam_size`` on either side are an
            error. Defaults to 1024.
        mean (Sequence[Number]): SAM pixel mean (RGB, 0-255). Defaults to ImageNet's.
        std (Sequence[Number]): SAM pixel std (RGB, 0-255). Defaults to ImageNet's.
        encoder_size (int, optional): side of the square image-encoder input (384 for SigLIP2-so400m at
            full size). None: no ``encoder_inputs`` (stage 1, SAM only). Defaults to 384.
        encoder_mean (Sequence[Number]): image-encoder pixel mean (RGB, 0-255). Defaults to 127.5 (0.5).
        encoder_std (Sequence[Number]): image-encoder pixel std (RGB, 0-255). Defaults to 127.5 (0.5).
        pad_to_square (bool): expand to a square with the mean colour before resizing, in training
            (reference: True in stage 2, False in stage 3). Defaults to True.
        test_pad_to_square (bool, optional): the same at test time; None: ``pad_to_square``. The
            reference pads at every evaluation, so stage 3 reproduces it with ``pad_to_square=False,
            test_pad_to_square=True``. Defaults to None.
        encoder_interpolation (str): ``'bilinear'`` (SigLIP2's ``resample=2``; within 1 grey level of
            PIL) or ``'bicubic'`` (SigLIP's ``resample=3``; close to PIL when downscaling, but torch's
            cubic kernel differs from PIL's when upscaling). Defaults to ``'bilinear'``.
        pad_value (Number): SAM padding value, after normalisation. Defaults to 0.
        pad_mask (bool): pad ``gt_instances.masks`` to the batch shape in training. Defaults to True.
        mask_pad_value (int): mask padding value. Defaults to 0.
        pad_seg (bool): pad ``gt_sem_seg`` in training. Defaults to True.
        seg_pad_value (int): semantic-map padding value. Defaults to 255.
        bgr_to_rgb (bool): the loaded image is BGR (mmcv's default); both outputs are RGB. Defaults to
            True.
        rgb_to_bgr (bool): see :class:`~mmdet.models.DetDataPreprocessor`. Defaults to False.
        boxtype2tensor (bool): see :class:`~mmdet.models.DetDataPreprocessor`. Defaults to True.
        non_blocking (bool): see :class:`~mmdet.models.DetDataPreprocessor`. Defaults to False.
    """

    def __init__(self,
                 sam_size: int = 1024,
                 mean: Sequence[Number] = (123.675, 116.28, 103.53),
                 std: Sequence[Number] = (58.395, 57.12, 57.375),
                 encoder_size: Optional[int] = 384,
                 encoder_mean: Sequence[Number] = (127.5, 127.5, 127.5),
                 encoder_std: Sequence[Number] = (127.5, 127.5, 127.5),
                 pad_to_square: bool = True,
                 test_pad_to_square: Optional[bool] = None,
                 encoder_interpolation: str = 'bilinear',
                 pad_value: Union[float, int] = 0,
                 pad_mask: bool = True,
                 mask_pad_value: int = 0,
                 pad_seg: bool = True,
                 seg_pad_value: int = 255,
                 bgr_to_rgb: bool = True,
                 rgb_to_bgr: bool = False,
                 boxtype2tensor: bool = True,
                 non_blocking: bool = False) -> None:
        if sam_size <= 0:
            raise ValueError(f'sam_size must be positive, got {sam_size}')
        if encoder_size is not None and encoder_size <= 0:
            raise ValueError(f'encoder_size must be positive or None, got {encoder_size}')
        if encoder_interpolation not in ENCODER_INTERPOLATIONS:
            raise ValueError(f'encoder_interpolation must be one of {ENCODER_INTERPOLATIONS}, '
                             f'got {encoder_interpolation!r}')
        if len(encoder_mean) != len(encoder_std) or len(encoder_mean) not in (1, 3):
            raise ValueError('encoder_mean and encoder_std must both have 1 or 3 values, got '
                             f'{list(encoder_mean)} and {list(encoder_std)}')
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=sam_size,
            pad_value=pad_value,
            pad_mask=pad_mask,
            mask_pad_value=mask_pad_value,
            pad_seg=pad_seg,
            seg_pad_value=seg_pad_value,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            boxtype2tensor=boxtype2tensor,
            non_blocking=non_blocking,
            batch_augments=None)  # a batch resize would break the fixed SAM size and the encoder input
        self.sam_size = sam_size
        self.encoder_size = encoder_size
        self.pad_to_square = pad_to_square
        self.test_pad_to_square = pad_to_square if test_pad_to_square is None else test_pad_to_square
        self.encoder_interpolation = encoder_interpolation
        self.register_buffer('encoder_mean', torch.tensor(encoder_mean, dtype=torch.float32).view(-1, 1, 1), False)
        self.register_buffer('encoder_std', torch.tensor(encoder_std, dtype=torch.float32).view(-1, 1, 1), False)
        # xtuner expand2square fills with tuple(int(m * 255) for m in image_mean)
        self.register_buffer('encoder_fill', self.encoder_mean.floor(), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Build both model inputs.

        Args:
            data (dict): from the dataloader: ``inputs`` (list of ``(3, H_i, W_i)`` uint8 tensors, or a
                ``(B, 3, H, W)`` tensor) and ``data_samples``.
            training (bool): training mode (mask/seg padding, ``pad_to_square`` vs ``test_pad_to_square``).

        Returns:
            dict: ``inputs`` ``(B, 3, sam_size, sam_size)`` float, ``data_samples``, and, unless
            ``encoder_size`` is None, ``encoder_inputs`` ``(B, 3, encoder_size, encoder_size)`` float.
        """
        data = self.cast_data(data)
        images = self._split_images(data['inputs'])  # B x (3, H_i, W_i)
        self._check_sizes(images, data.get('data_samples'))
        encoder_inputs = None
        if self.encoder_size is not None:
            pad_to_square = self.pad_to_square if training else self.test_pad_to_square
            encoder_inputs = self.preprocess_encoder_images(images, pad_to_square)
        data = super().forward(data, training)
        if encoder_inputs is not None:
            data['encoder_inputs'] = encoder_inputs
        return data

    @staticmethod
    def _split_images(inputs: Union[Tensor, Sequence[Tensor]]) -> list:
        if isinstance(inputs, Tensor):
            if inputs.dim() != 4:
                raise ValueError(f'inputs must be (B, 3, H, W) or a list of (3, H, W), got {tuple(inputs.shape)}')
            return list(inputs.unbind(0))
        if not is_seq_of(inputs, Tensor):
            raise TypeError(f'inputs must be a tensor or a sequence of tensors, got {type(inputs)}')
        return list(inputs)

    def _check_sizes(self, images: list, data_samples: Optional[list]) -> None:
        for index, image in enumerate(images):  # one check per sample
            height, width = image.shape[-2:]
            if height > self.sam_size or width > self.sam_size:
                name = ''
                if data_samples is not None and index < len(data_samples):
                    meta = data_samples[index].metainfo
                    name = f" ({meta.get('img_path', meta.get('img_id', 'no img_path'))})"
                raise ValueError(
                    f'sample {index}{name}: image {height}x{width} does not fit the SAM input '
                    f'{self.sam_size}x{self.sam_size}; resize the longest side to at most sam_size in the '
                    'pipeline (Resize(scale=(sam_size, sam_size), keep_ratio=True))')

    def preprocess_encoder_images(self, images: Sequence[Tensor], pad_to_square: bool) -> Tensor:
        """Image-encoder input of each image (channel conversion, square padding, resize, normalise).

        Args:
            images (Sequence[Tensor]): ``B`` tensors ``(3, H_i, W_i)`` (uint8, or float in 0-255), as
                loaded (before channel conversion).
            pad_to_square (bool): expand each image to a centred square with the mean colour first.

        Returns:
            Tensor: ``(B, 3, encoder_size, encoder_size)`` float32, normalised.
        """
        size = self.encoder_size
        outputs = []
        for image in images:  # per sample: sizes differ, so there is no single batched resize
            quantise = not image.is_floating_point()
            x = image.float()
            if self._channel_conversion:
                x = x[[2, 1, 0], ...]
            if pad_to_square:
                x = self._expand_to_square(x)
            if tuple(x.shape[-2:]) != (size, size):
                x = F.interpolate(x[None], size=(size, size), mode=self.encoder_interpolation,
                                  align_corners=False, antialias=True)[0]
                if quantise:  # PIL resizes uint8 images to uint8
                    x = x.clamp(0, 255).round()
            outputs.append(x)
        batch = torch.stack(outputs)  # (B, 3, S, S)
        return (batch - self.encoder_mean) / self.encoder_std

    def _expand_to_square(self, image: Tensor) -> Tensor:
        """xtuner ``expand2square``: ``(3, H, W)`` -> ``(3, L, L)``, ``L = max(H, W)``, image centred
        (offset ``(L - H) // 2`` or ``(L - W) // 2``), the rest filled with the mean colour."""
        channels, height, width = image.shape
        side = max(height, width)
        if height == width:
            return image
        canvas = self.encoder_fill.to(image.dtype).expand(channels, side, side).clone()
        top, left = (side - height) // 2, (side - width) // 2
        canvas[:, top:top + height, left:left + width] = image
        return canvas
