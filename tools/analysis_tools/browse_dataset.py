# Browse a data set through its config's pipeline and draw the ground truth (mmdet's browse_dataset,
# plus --phase, --show-number and a default visualizer for dataset-only configs).
import argparse
import os
import os.path as osp
import sys

# the repository root, so that configs can import plugins from projects/ (mmdet's convention)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

import mmxsam  # noqa: F401  (registers mmxsam modules)


def parse_args():
    parser = argparse.ArgumentParser(description='Browse a dataset')
    parser.add_argument('config', help='config file path (a model config or a `_base_/datasets` config)')
    parser.add_argument('--output-dir', default=None, type=str, help='save the drawn samples here (PNG)')
    parser.add_argument('--not-show', default=False, action='store_true', help='do not open a window')
    parser.add_argument('--show-interval', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--show-number', type=int, default=None, help='browse only the first N samples')
    parser.add_argument('--phase', default='train', choices=['train', 'val', 'test'],
                        help='which dataloader of the config to browse')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args()


def browse(cfg: Config, phase: str = 'train', output_dir=None, show: bool = False, show_interval: float = 2,
           show_number=None):
    """Draw ``show_number`` samples of ``cfg.<phase>_dataloader.dataset``; returns the written file paths."""
    from mmdet.models.utils import mask2ndarray
    from mmdet.registry import DATASETS, VISUALIZERS
    from mmdet.structures.bbox import BaseBoxes

    init_default_scope(cfg.get('default_scope', 'mmdet'))
    key = f'{phase}_dataloader'
    if key not in cfg:
        raise KeyError(f'config has no `{key}`')
    dataset = DATASETS.build(cfg[key].dataset)
    vis_cfg = cfg.get('visualizer', dict(type='DetLocalVisualizer', name='browse_visualizer'))
    visualizer = VISUALIZERS.build(vis_cfg)
    visualizer.dataset_meta = dataset.metainfo

    total = len(dataset) if show_number is None else min(show_number, len(dataset))
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
    written = []
    progress_bar = ProgressBar(total)
    for idx in range(total):
        item = dataset[idx]
        img = item['inputs'].permute(1, 2, 0).numpy()[..., [2, 1, 0]]  # BGR -> RGB
        data_sample = item['data_samples'].numpy()
        gt_instances = data_sample.gt_instances
        gt_bboxes = gt_instances.get('bboxes', None)
        if gt_bboxes is not None and isinstance(gt_bboxes, BaseBoxes):
            gt_instances.bboxes = gt_bboxes.tensor
        gt_masks = gt_instances.get('masks', None)
        if gt_masks is not None:
            gt_instances.masks = mask2ndarray(gt_masks).astype(bool)
        data_sample.gt_instances = gt_instances
        name = osp.splitext(osp.basename(item['data_samples'].img_path))[0] + '.png'
        out_file = osp.join(output_dir, name) if output_dir is not None else None
        visualizer.add_datasample(name, img, data_sample, draw_pred=False, show=show, wait_time=show_interval,
                                  out_file=out_file)
        if out_file:
            written.append(out_file)
        progress_bar.update()
    return written


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    browse(cfg, args.phase, args.output_dir, not args.not_show, args.show_interval, args.show_number)


if __name__ == '__main__':
    main()
