# Generate the bundled synthetic multi-task "shapes" data set (COCO panoptic/instances, semantic PNGs,
# refer, ReasonSeg, GranD-f GCG, COCO-VGD and LLaVA layouts). See mmxsam/datasets/synthetic/generator.py.
import argparse
import sys

from mmxsam.datasets.synthetic import ShapesConfig, generate_shapes_dataset
from mmxsam.datasets.synthetic.render import render_overview


def parse_args():
    d = ShapesConfig()
    parser = argparse.ArgumentParser(description='Generate the synthetic shapes data set')
    parser.add_argument('out_dir', nargs='?', default='data/shapes', help='output folder (default: data/shapes)')
    parser.add_argument('--num-train', type=int, default=d.num_train, help='training images')
    parser.add_argument('--num-val', type=int, default=d.num_val, help='validation images')
    parser.add_argument('--image-size', type=int, default=d.image_size, help='image side in pixels')
    parser.add_argument('--min-objects', type=int, default=d.min_objects, help='min shapes per image')
    parser.add_argument('--max-objects', type=int, default=d.max_objects, help='max shapes per image')
    parser.add_argument('--seed', type=int, default=d.seed, help='random seed')
    parser.add_argument('--force', action='store_true', help='regenerate even if the same data exists')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--render', type=int, default=0, metavar='N',
                        help='also draw N multi-task overview PNGs of the val split into OUT_DIR/browse')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = ShapesConfig(num_train=args.num_train, num_val=args.num_val, image_size=args.image_size,
                       min_objects=args.min_objects, max_objects=args.max_objects, seed=args.seed)
    try:
        summary = generate_shapes_dataset(args.out_dir, cfg, progress=not args.no_progress, force=args.force)
    except ValueError as e:
        print(f'generate_shapes.py: {e}', file=sys.stderr)
        sys.exit(2)
    state = 'reused existing data' if summary['reused'] else f'generated in {summary["seconds"]} s'
    print(f'{args.out_dir}: {state}: images {summary["num_images"]}, instances {summary["num_instances"]}, '
          f'referring objects {summary["num_refs"]}, skipped {summary["skipped"]}')
    if args.render:
        split = 'val' if cfg.num_val > 0 else 'train'
        for path in render_overview(args.out_dir, f'{args.out_dir}/browse', split=split, num=args.render):
            print(f'wrote {path}')


if __name__ == '__main__':
    main()
