"""Run a metric evaluation on N CPU processes (gloo), each on its DefaultSampler shard, as mmengine's test
loop would: the shared scaffolding of the metrics' "1 process == 2 processes" tests."""
import os.path as osp
import pickle
import socket
from datetime import timedelta
from typing import Callable, List

import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.dataset import DefaultSampler


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, tmp_dir: str, evaluate: Callable, num_samples: int,
            timeout: int) -> None:
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                  world_size=world_size, timeout=timedelta(seconds=timeout))
    try:
        indices = list(DefaultSampler(list(range(num_samples)), shuffle=False))
        metrics = evaluate(indices, osp.join(tmp_dir, 'collect'))
        with open(osp.join(tmp_dir, f'rank{rank}.pkl'), 'wb') as f:
            pickle.dump(dict(indices=indices, metrics=metrics), f)
    finally:
        torch_dist.destroy_process_group()


def run_distributed(evaluate: Callable, num_samples: int, tmp_dir: str, world_size: int = 2,
                    timeout: int = 60) -> List[dict]:
    """``evaluate(indices, collect_dir) -> metrics`` (a picklable, module-level callable or a partial of one)
    on ``world_size`` processes; returns per rank ``dict(indices=<its shard>, metrics=<its result>)``."""
    mp.spawn(_worker, args=(world_size, free_port(), str(tmp_dir), evaluate, num_samples, timeout),
             nprocs=world_size, join=True)
    parts = []
    for rank in range(world_size):
        with open(osp.join(str(tmp_dir), f'rank{rank}.pkl'), 'rb') as f:
            parts.append(pickle.load(f))
    return parts
