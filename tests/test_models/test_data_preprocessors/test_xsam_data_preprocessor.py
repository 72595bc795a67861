import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData, PixelData
from PIL import Image

import mmxsam  # noqa: F401  (registration)
from mmxsam.models.data_preprocessors import XSAMDataPreprocessor

SAM_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
SAM_STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)  # BGR, as loaded by mmcv


def _sample(h, w, path='img.png', num_masks=2):
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), img_path=path))
    masks = np.ones((num_masks, h, w), dtype=np.uint8)
    sample.gt_instances = InstanceData(masks=BitmapMasks(masks, h, w), labels=torch.arange(num_masks),
                                       bboxes=torch.zeros(num_masks, 4))
    sample.gt_sem_seg = PixelData(sem_seg=torch.ones(1, h, w, dtype=torch.long))
    return sample


def _data(*sizes):
    return dict(inputs=[_image(h, w, seed=i) for i, (h, w) in enumerate(sizes)],
                data_samples=[_sample(h, w, path=f'img{i}.png') for i, (h, w) in enumerate(sizes)])


def _hand_encoder(img_bgr, mean=127.5, std=127.5):
    return (img_bgr.flip(0).float() - mean) / std


def test_registered_and_sam_input_matches_parent():
    pre = MODELS.build(dict(type='XSAMDataPreprocessor', sam_size=16, encoder_size=8))
    assert isinstance(pre, XSAMDataPreprocessor)
    data = _data((10, 6), (16, 12))
    images = [x.clone() for x in data['inputs']]
    out = pre(data, training=False)
    assert out['inputs'].shape == (2, 3, 16, 16) and out['inputs'].dtype == torch.float32
    # ImageNet normalisation in RGB order, zero padding at the bottom/right
    expected0 = (images[0].flip(0).float() - SAM_MEAN) / SAM_STD
    torch.testing.assert_close(out['inputs'][0, :, :10, :6], expected0)
    assert not out['inputs'][0, :, 10:].any() and not out['inputs'][0, :, :, 6:].any()
    # exactly the parent with pad_size_divisor=sam_size
    parent = DetDataPreprocessor(mean=SAM_MEAN.flatten().tolist(), std=SAM_STD.flatten().tolist(),
                                 pad_size_divisor=16, bgr_to_rgb=True)
    ref = parent(dict(inputs=[x.clone() for x in images], data_samples=_data((10, 6), (16, 12))['data_samples']))
    torch.testing.assert_close(out['inputs'], ref['inputs'])
    for sample, shape in zip(out['data_samples'], [(10, 6), (16, 12)]):
        assert sample.img_shape == shape
        assert sample.batch_input_shape == (16, 16) and sample.pad_shape == (16, 16)


def test_fixed_size_even_for_small_batches():
    out = XSAMDataPreprocessor(sam_size=16, encoder_size=4)(_data((3, 5)))
    assert out['inputs'].shape == (1, 3, 16, 16)
    assert out['encoder_inputs'].shape == (1, 3, 4, 4)


def test_encoder_input_normalisation_by_hand():
    pre = XSAMDataPreprocessor(sam_size=8, encoder_size=4, pad_to_square=False)
    data = _data((4, 4))
    img = data['inputs'][0].clone()
    out = pre(data, training=True)
    assert out['encoder_inputs'].shape == (1, 3, 4, 4) and out['encoder_inputs'].dtype == torch.float32
    torch.testing.assert_close(out['encoder_inputs'][0], _hand_encoder(img))
    assert out['encoder_inputs'].min() >= -1 and out['encoder_inputs'].max() <= 1


@pytest.mark.parametrize('interpolation, resample', [('bilinear', Image.BILINEAR), ('bicubic', Image.BICUBIC)])
def test_encoder_resize_matches_pil(interpolation, resample):
    """HF's SiglipImageProcessor resizes with PIL; the antialiased torch resize agrees within 1 level of 255
    (Pillow >= 13; Pillow 11/12's bicubic, which Gradio pins, is up to 4 levels from Pillow 13's)."""
    pre = XSAMDataPreprocessor(sam_size=32, encoder_size=12, pad_to_square=False,
                               encoder_interpolation=interpolation)
    data = _data((30, 20))
    img = data['inputs'][0].clone()
    out = pre(data, training=True)['encoder_inputs'][0]  # (3, 12, 12)
    rgb = img.flip(0).permute(1, 2, 0).numpy()
    pil = np.array(Image.fromarray(rgb).resize((12, 12), resample=resample))  # (12, 12, 3) uint8
    expected = (torch.from_numpy(pil).permute(2, 0, 1).float() - 127.5) / 127.5
    import PIL
    levels = 4 if interpolation == 'bicubic' and int(PIL.__version__.split('.')[0]) < 13 else 1
    assert (out - expected).abs().max() <= levels / 127.5 + 1e-6


def test_pad_to_square_geometry():
    pre = XSAMDataPreprocessor(sam_size=8, encoder_size=8, pad_to_square=True)
    data = _data((4, 8), (8, 4))  # wide 2:1, tall 1:2
    wide, tall = (x.clone() for x in data['inputs'])
    enc = pre(data, training=True)['encoder_inputs']
    fill = (127 - 127.5) / 127.5  # xtuner fills with int(0.5 * 255)
    # wide: image rows 2..5, mean colour above and below
    torch.testing.assert_close(enc[0, :, 2:6], _hand_encoder(wide))
    assert torch.allclose(enc[0, :, :2], torch.tensor(fill)) and torch.allclose(enc[0, :, 6:], torch.tensor(fill))
    # tall: image columns 2..5, mean colour left and right
    torch.testing.assert_close(enc[1, :, :, 2:6], _hand_encoder(tall))
    assert torch.allclose(enc[1, :, :, :2], torch.tensor(fill)) and torch.allclose(enc[1, :, :, 6:], torch.tensor(fill))


def test_pad_to_square_train_and_test_modes():
    pre = XSAMDataPreprocessor(sam_size=8, encoder_size=8, pad_to_square=False, test_pad_to_square=True)
    train = pre(_data((4, 8)), training=True)['encoder_inputs']
    test = pre(_data((4, 8)), training=False)['encoder_inputs']
    fill = torch.tensor((127 - 127.5) / 127.5)
    assert torch.allclose(test[0, :, :2], fill)  # padded at test time
    assert not torch.allclose(train[0, :, :2], fill)  # plain resize in training (stretched image)


def test_too_large_image_raises():
    pre = XSAMDataPreprocessor(sam_size=16, encoder_size=8)
    with pytest.raises(ValueError, match=r'sample 1 \(img1.png\): image 17x10 does not fit .* 16x16'):
        pre(_data((16, 16), (17, 10)))


def test_masks_and_seg_padded_in_training():
    pre = XSAMDataPreprocessor(sam_size=16, encoder_size=8)
    out = pre(_data((10, 6)), training=True)
    sample = out['data_samples'][0]
    masks = sample.gt_instances.masks
    assert masks.masks.shape == (2, 16, 16)
    assert masks.masks[:, :10, :6].all() and not masks.masks[:, 10:].any() and not masks.masks[:, :, 6:].any()
    sem = sample.gt_sem_seg.sem_seg
    assert sem.shape == (1, 16, 16)
    assert (sem[:, :10, :6] == 1).all() and (sem[:, 10:] == 255).all() and (sem[:, :, 6:] == 255).all()


def test_stacked_inputs_and_no_encoder():
    pre = XSAMDataPreprocessor(sam_size=8, encoder_size=None)
    data = _data((8, 8), (8, 8))
    data['inputs'] = torch.stack(data['inputs'])
    out = pre(data)
    assert out['inputs'].shape == (2, 3, 8, 8)
    assert 'encoder_inputs' not in out


def test_bad_arguments():
    with pytest.raises(ValueError, match='encoder_interpolation'):
        XSAMDataPreprocessor(encoder_interpolation='nearest')
    with pytest.raises(ValueError, match='sam_size'):
        XSAMDataPreprocessor(sam_size=0)
