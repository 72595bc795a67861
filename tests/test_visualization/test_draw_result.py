"""draw_xsam_result: masks overlaid, question and answer written below."""
import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from mmxsam.visualization import draw_xsam_result


def test_masks_and_text():
    image = np.full((40, 80, 3), 100, np.uint8)
    sample = DetDataSample()
    masks = torch.zeros(2, 40, 80, dtype=torch.bool)
    masks[0, :10, :10] = True
    masks[1, 20:, 40:] = True
    sample.pred_instances = InstanceData(masks=masks, labels=torch.tensor([0, 1]), scores=torch.ones(2))
    sample.pred_text = 'Sure, <SEG>.'
    canvas = draw_xsam_result(image, sample, 'Segment the <p>circle</p>.', labels=['circle', 'sky'], scale=160)
    assert canvas.dtype == np.uint8 and canvas.shape[1] >= 160
    top = canvas[:80, :160]  # the image, scaled 2x
    assert (top[5, 5] != 100).any() and (top[70, 150] != 100).any() and (top[5, 150] == 100).all()
    assert (canvas[80:] < 255).any()  # text was written


def test_semantic_map_and_no_masks():
    image = np.zeros((20, 20, 3), np.uint8)
    sample = DetDataSample()
    sem = torch.zeros(1, 20, 20, dtype=torch.long)
    sem[0, 10:] = 1
    sample.pred_sem_seg = PixelData(sem_seg=sem)
    assert draw_xsam_result(image, sample).shape[0] > 20
    empty = draw_xsam_result(image, DetDataSample(pred_text='hello'))
    assert empty.shape[1] >= 384
