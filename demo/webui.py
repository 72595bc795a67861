"""The X-SAM web demo (Gradio) on http://127.0.0.1:7860:

    python demo/webui.py                                        # the tiny model of `make demo` (work_dirs/tiny_mixed)
    python demo/webui.py configs/xsam/mixed.py xsam_stage3.pth --device cuda --port 7860
    python demo/webui.py WORK_DIR                               # a training work dir: config + last checkpoint

Without a checkpoint the model is randomly initialised (a warning says so): useful only to try the page.
"""
import argparse
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # no network calls from the server


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='X-SAM web demo (Gradio)')
    parser.add_argument('config', nargs='?', default='work_dirs/tiny_mixed',
                        help='config file or training work dir (default: the tiny model trained by `make demo`)')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint (default with a work dir: its last one)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=7860)
    parser.add_argument('--examples', default='data/shapes/images/shapes_val_00000[0-3].jpg',
                        help='glob of example images shown under the form')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='config overrides, e.g. model.test_cfg.max_new_tokens=32')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import DictAction

    from mmxsam.apis import XSAMInferencer
    from mmxsam.apis.webui import build_demo, launch_options
    if not osp.exists(args.config):
        raise SystemExit(f'{args.config!r} does not exist; run `make demo` first (trains the tiny model into '
                         'work_dirs/tiny_mixed) or pass a config and checkpoint')
    options = {}
    for item in args.cfg_options:
        action = DictAction(option_strings=[], dest='x')
        namespace = argparse.Namespace()
        action(None, namespace, [item])
        options.update(namespace.x)
    inferencer = XSAMInferencer(args.config, args.checkpoint, device=args.device, cfg_options=options or None)
    demo = build_demo(inferencer, examples=sorted(glob.glob(args.examples)) or None)
    print(f'X-SAM web demo on http://{args.host}:{args.port}', flush=True)
    demo.queue().launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False,
                        **launch_options())


if __name__ == '__main__':
    main()
