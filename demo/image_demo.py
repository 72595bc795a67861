"""X-SAM on one image from the command line: ask a question or give a segmentation prompt, get the
generated answer and the masks drawn into a picture.

    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task refseg --text "the red circle" --out-file out.png
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task imgconv --text "How many circles are there?"
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task genseg --categories circle square sky
    python demo/image_demo.py IMAGE CONFIG CHECKPOINT --task vgdseg --vprompts prompt0.png prompt1.png
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402


def parse_args(argv=None):
    from mmxsam.apis import TASKS
    parser = argparse.ArgumentParser(description='X-SAM image demo')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='model config (e.g. configs/xsam/tiny_mixed.py)')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--task', required=True, choices=TASKS)
    parser.add_argument('--text', help='question (imgconv), expression (refseg) or query (reaseg)')
    parser.add_argument('--categories', nargs='+', help='class names (genseg / ovseg)')
    parser.add_argument('--vprompts', nargs='+', help='visual-prompt mask images (vgdseg / intseg), non-zero = prompt')
    parser.add_argument('--mode', default='generation', choices=['generation', 'teacher_forcing'])
    parser.add_argument('--answer', help='the answer for --mode teacher_forcing')
    parser.add_argument('--out-file', default='outputs/demo/result.png', help='where to write the picture')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmxsam.apis import build_question, inference_xsam, init_xsam
    from mmxsam.visualization import draw_xsam_result
    image = cv2.imread(args.image)
    if image is None:
        raise SystemExit(f'cannot read image {args.image!r}')
    vprompts = []
    for path in args.vprompts or []:
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise SystemExit(f'cannot read visual prompt {path!r}')
        vprompts.append(mask > 0)
    model = init_xsam(args.config, args.checkpoint, device=args.device)
    result = inference_xsam(model, args.image, args.task, text=args.text, categories=args.categories,
                            vprompt_masks=vprompts, answer=args.answer, mode=args.mode)
    question = build_question(args.task, args.text, args.categories, len(vprompts))
    labels = None
    if args.task in ('genseg', 'ovseg') and 'pred_instances' in result:
        labels = [args.categories[int(i)] for i in result.pred_instances.labels]
    canvas = draw_xsam_result(image, result, question, labels)
    os.makedirs(osp.dirname(osp.abspath(args.out_file)), exist_ok=True)
    cv2.imwrite(args.out_file, canvas)
    print(f'question: {question}')
    print(f"answer:   {result.get('pred_text')}")
    if 'pred_instances' in result:
        print(f'masks:    {len(result.pred_instances)} -> {args.out_file}')
    return result


if __name__ == '__main__':
    main()
