# Generate X-SAM's COCO-VGD annotations (point/scribble/box/mask visual prompts per instance) from a COCO
# instances JSON, in the layout of the released `vgdseg_annotations`. See mmxsam/datasets/utils/coco_vgd.py.
#
#   python tools/dataset_converters/generate_coco_vgd.py data/coco/annotations/instances_val2017.json \
#       data/coco/vgdseg/coco_vgdseg_val.json --workers 8
import argparse
import json
import os
import os.path as osp
import sys
import time

from pycocotools.coco import COCO

from mmxsam.datasets.utils.coco_vgd import SCALE_TO_IMAGE, build_vgd_records


def parse_args():
    parser = argparse.ArgumentParser(description='Generate COCO-VGD visual-prompt annotations')
    parser.add_argument('instances_json', help='COCO instances JSON (e.g. instances_train2017.json)')
    parser.add_argument('out_json', help='output VGD JSON')
    parser.add_argument('--seed', type=int, default=0, help='generation seed (default 0)')
    parser.add_argument('--workers', type=int, default=1, help='processes (default 1); the output does not '
                        'depend on it')
    parser.add_argument('--scale-to-image', action='store_true',
                        help='scale the prompt sizes (10/5 px radii, 10-20 px amplitude, meant for ~640 px COCO '
                        'images) by each image\'s longer side / 640')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.workers < 1:
        print(f'generate_coco_vgd.py: --workers must be >= 1, got {args.workers}', file=sys.stderr)
        sys.exit(2)
    start = time.time()
    coco = COCO(args.instances_json)
    counts = {}
    records = build_vgd_records(coco, seed=args.seed, prompt_params=SCALE_TO_IMAGE if args.scale_to_image else None,
                                workers=args.workers, progress=not args.no_progress, counts=counts)
    if osp.dirname(args.out_json):
        os.makedirs(osp.dirname(args.out_json), exist_ok=True)
    with open(args.out_json, 'w') as f:
        json.dump(records, f)
    print(f'{args.out_json}: {counts["images_written"]} images, {counts["instances"]} instances in '
          f'{time.time() - start:.1f} s; counts {counts}')


if __name__ == '__main__':
    main()
