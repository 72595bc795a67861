"""Train the tiny stand-in for Phi-3-mini's tokenizer on a data set's annotation text.

Collects every string in every ``*.json`` under DATA_ROOT (recursively; file names and RLE counts
are skipped, see ``mmxsam.models.language.iter_json_strings``) plus
``mmxsam.models.language.EXTRA_CORPUS``, trains a byte-level BPE and saves it to ``--out`` so
that ``AutoTokenizer.from_pretrained(OUT)`` loads it.

Example::

    python tools/misc/build_tiny_tokenizer.py data/tiny_xsam --out work_dirs/tiny_tokenizer
"""
import argparse
import glob
import os.path as osp
import sys

# Kept equal to mmxsam.models.language.tiny_tokenizer.MIN_VOCAB_SIZE (checked by its test); a copy,
# so that argument errors are reported without importing mmxsam.
MIN_VOCAB_SIZE = 300


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train a tiny byte-level BPE tokenizer (Phi-3-mini special tokens and chat '
        'template) on the text of the JSON files under DATA_ROOT.')
    parser.add_argument('data_root', metavar='DATA_ROOT', help='directory searched recursively for *.json files')
    parser.add_argument('--out', required=True, help='output directory for the tokenizer files')
    parser.add_argument('--vocab-size', type=int, default=1024,
                        help='largest vocabulary size, byte symbols and special tokens included (default: 1024)')
    parser.add_argument('--min-frequency', type=int, default=1,
                        help='least count a pair needs to be merged (default: 1)')
    parser.add_argument('--model-max-length', type=int, default=2048,
                        help='the tokenizer\'s model_max_length (default: 2048)')
    return parser.parse_args(argv)


def _fail(msg):
    raise SystemExit(f'{osp.basename(__file__)}: error: {msg}')


def main(argv=None):
    args = parse_args(argv)
    # Validate before importing mmxsam (which imports torch/mmdet): error paths stay fast.
    if args.vocab_size < MIN_VOCAB_SIZE:
        _fail(f'--vocab-size must be >= {MIN_VOCAB_SIZE} (256 byte symbols + special tokens + merges), '
              f'got {args.vocab_size}')
    if not osp.isdir(args.data_root):
        _fail(f'DATA_ROOT {args.data_root!r} does not exist or is not a directory')
    json_files = sorted(glob.glob(osp.join(args.data_root, '**', '*.json'), recursive=True))
    if not json_files:
        _fail(f'no *.json file found under DATA_ROOT {args.data_root!r} (searched recursively)')

    from mmxsam.models.language.tiny_tokenizer import EXTRA_CORPUS, build_tiny_tokenizer, iter_json_strings
    try:
        corpus = list(iter_json_strings(json_files))
    except (ValueError, UnicodeDecodeError) as e:
        _fail(str(e))
    n_json_strings = len(corpus)
    corpus.extend(EXTRA_CORPUS)
    tokenizer = build_tiny_tokenizer(
        corpus,
        args.out,
        vocab_size=args.vocab_size,
        min_frequency=args.min_frequency,
        model_max_length=args.model_max_length)
    print(f'trained on {n_json_strings} strings from {len(json_files)} JSON files '
          f'+ {len(EXTRA_CORPUS)} built-in strings')
    print(f'vocab size: {len(tokenizer)}')
    print(f'saved to: {osp.abspath(args.out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
