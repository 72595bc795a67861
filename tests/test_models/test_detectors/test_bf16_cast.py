"""A model cast to bf16 as DeepSpeed's bf16 mode does (``model.to(torch.bfloat16)``, no autocast) trains and
predicts: mmdet's fp32 positional encodings and reference points are cast to the layers' dtype, and mask
points are scored in fp32."""
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope

import mmxsam  # noqa: F401  (registration)
from mmdet.registry import DATASETS, MODELS


def test_bf16_segmentor_loss_backward_and_predict(repo_root, shapes_root):
    init_default_scope('mmdet')
    cfg = Config.fromfile(f'{repo_root}/configs/xsam/tiny_seg_finetune.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model = model.to(torch.bfloat16)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = shapes_root
    dataset = DATASETS.build(dataset_cfg)
    data = model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), True)
    data['inputs'] = data['inputs'].to(torch.bfloat16)
    model.train()
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.panoptic_head.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.bfloat16 and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert results[0].pred_panoptic_seg.sem_seg.shape[-2:] == results[0].metainfo['ori_shape']
