"""X-SAM on one image from the command line (``mmxsam.apis.XSAMInferencer``): ask a question or give a
segmentation prompt, get the answer printed and the masks drawn into a picture.

    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task refseg --text "the red circle" --out-file out.png
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task imgconv --text "How many circles are there?"
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task genseg --categories circle square sky --stuff sky
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task vgdseg --point 40 52 --box 10 10 60 48
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task vgdseg --point 40 52 --prompt-img OTHER.jpg
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task intseg --scribble 10 10 30 40 50 20
    python demo/image_demo.py IMAGE WORK_DIR --task refseg --text "the red circle"   # config + last checkpoint

Each ``--point``/``--box``/``--scribble``/``--vprompts`` mask is one visual prompt (one ``<region>``), in
pixels of the image it is drawn on (``--prompt-img`` if given: cross-image VGD).
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402

TASKS = ('imgconv', 'genseg', 'ovseg', 'refseg', 'reaseg', 'gcgseg', 'vgdseg', 'intseg')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='X-SAM image demo')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='model config (e.g. configs/xsam/tiny_mixed.py) or a training work dir')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (default with a work dir: its last one)')
    parser.add_argument('--task', required=True, choices=TASKS)
    parser.add_argument('--text', help='question (imgconv), expression (refseg) or query (reaseg)')
    parser.add_argument('--categories', nargs='+', help='class names (genseg / ovseg)')
    parser.add_argument('--stuff', nargs='+', help='those of --categories that are stuff classes')
    parser.add_argument('--point', nargs=2, type=float, action='append', metavar=('X', 'Y'), default=[],
                        help='a point prompt (repeat for more regions)')
    parser.add_argument('--box', nargs=4, type=float, action='append', metavar=('X1', 'Y1', 'X2', 'Y2'), default=[],
                        help='a box prompt')
    parser.add_argument('--scribble', nargs='+', type=float, action='append', metavar='XY', default=[],
                        help='a scribble prompt: x0 y0 x1 y1 ... (two points or more)')
    parser.add_argument('--vprompts', nargs='+', default=[], help='mask prompt images, non-zero = prompt')
    parser.add_argument('--prompt-img', help='the image the visual prompts are drawn on (cross-image vgdseg)')
    parser.add_argument('--answer', help='give the answer (teacher forcing) instead of generating it')
    parser.add_argument('--force-seg', action='store_true',
                        help='if the generated answer has no <SEG>, answer with the segmentation answer instead')
    parser.add_argument('--out-file', default='outputs/demo/result.png', help='where to write the picture')
    parser.add_argument('--pred-file', help='also write the prediction (JSON: answer, labels, scores, RLE masks)')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def visual_prompts(args) -> list:
    specs = [dict(type='point', xy=p) for p in args.point]
    specs += [dict(type='box', xyxy=b) for b in args.box]
    for values in args.scribble:
        if len(values) % 2 or len(values) < 4:
            raise SystemExit(f'--scribble needs x y pairs, two points or more; got {values}')
        specs.append(dict(type='scribble', points=list(zip(values[::2], values[1::2]))))
    specs += [dict(type='mask', mask=path) for path in args.vprompts]
    return specs


def main(argv=None):
    args = parse_args(argv)
    from mmxsam.apis import XSAMInferencer
    inferencer = XSAMInferencer(args.config, args.checkpoint, device=args.device)
    request = dict(img=args.image, task=args.task, text=args.text, categories=args.categories, stuff=args.stuff,
                   vprompts=visual_prompts(args), prompt_img=args.prompt_img, answer=args.answer)
    out = inferencer({k: v for k, v in request.items() if v}, return_vis=True, force_seg=args.force_seg)
    result, canvas = out['predictions'][0], out['visualization'][0]
    os.makedirs(osp.dirname(osp.abspath(args.out_file)), exist_ok=True)
    cv2.imwrite(args.out_file, canvas)
    print(f"question: {result['question']}")
    print(f"answer:   {result['answer']}")
    if args.task != 'imgconv':
        found = ', '.join(f'{n} ({s:.2f})' for n, s in zip(result['names'], result['scores'])) or 'none'
        print(f'masks:    {len(result["masks"])} [{found}] -> {args.out_file}')
    for message in result['warnings']:
        print(f'note:     {message}')
    if args.pred_file:
        os.makedirs(osp.dirname(osp.abspath(args.pred_file)), exist_ok=True)
        with open(args.pred_file, 'w') as f:
            json.dump(result, f)
    return result


if __name__ == '__main__':
    main()
