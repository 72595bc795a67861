"""Train a toy model with FlexibleRunner + DeepSpeedStrategy on the CPU (gloo) and save a DeepSpeed checkpoint.

    python -m torch.distributed.run --nproc_per_node N tests/test_tools/deepspeed_toy_train.py WORK_DIR STAGE

Used by test_deepspeed_checkpoint.py (a subprocess: DeepSpeed's engine and process group stay out of the test
session). The model has trainable layers, a frozen layer and a buffer, like XSAM's stages.
"""
import os
import sys

import torch
import torch.distributed as torch_dist

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import mmxsam  # noqa: E402,F401
from mmengine.config import Config  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.registry import DATASETS, MODELS  # noqa: E402
from mmxsam.utils.cli import build_runner  # noqa: E402


@MODELS.register_module(force=True)
class DeepSpeedToy(BaseModel):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(4, 16)
        self.frozen = torch.nn.Linear(16, 16)
        self.frozen.requires_grad_(False)
        self.b = torch.nn.Linear(16, 3)  # 16 * 4 + 16 + 3 * 16 + 3 = 131 trainable elements: odd-sized partitions
        self.register_buffer('steps', torch.arange(3.0))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.b(torch.relu(self.frozen(self.a(inputs)))).pow(2).mean())


@DATASETS.register_module(force=True)
class DeepSpeedToyData(torch.utils.data.Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        return dict(inputs=torch.linspace(-1, 1, 4) * (i + 1) / 32)


def main(work_dir, stage):
    cfg = Config(dict(
        model=dict(type='DeepSpeedToy'), work_dir=work_dir, launcher='pytorch', runner_type='FlexibleRunner',
        strategy=dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=stage), gradient_clipping=1.0),
        optim_wrapper=dict(type='DeepSpeedOptimWrapper', optimizer=dict(type='AdamW', lr=1e-2)),
        train_dataloader=dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                              dataset=dict(type='DeepSpeedToyData'), collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=3),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3),
                           logger=dict(type='LoggerHook', interval=1)),
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0)))
    runner = build_runner(cfg)  # as tools/train.py: gloo process group, DeepSpeed gathers waited for
    runner.train()
    # the trained weights as every rank sees them after the last step (ZeRO-3: gathered), for the test
    model = runner.model.module
    if stage == 3:
        import deepspeed
        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if torch_dist.get_rank() == 0:
        torch.save(weights, os.path.join(work_dir, 'final_weights.pt'))


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]))
