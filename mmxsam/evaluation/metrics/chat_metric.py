"""Exact-match accuracy of generated answers (image conversation, ``imgconv``), plus a VLMEvalKit export.

One *sample* is one conversation whose **last** answer the model generates (``XSAM.predict`` generates the
answer after the last human turn, ``pred_text``; earlier turns are context). The ground truth is, in order
of preference, the metainfo ``answer_key`` (default ``'gt_answer'``) or the value of the last ``gpt`` turn of
the metainfo ``conversations`` (LLaVA turns; ``PackXSAMInputs`` keeps ``conversations`` in the metainfo:
``XSAM_META_KEYS``); the question likewise from ``question_key`` (default ``'question'``) or the last
``human`` turn, with ``<image>`` removed.

Normalisation (both sides, then string equality)::

    1. drop chat-template special tokens: ``<|...|>`` (Phi-3's ``<|end|>``, ...), ``<s>``, ``</s>``
    2. lower case (Unicode ``casefold``)
    3. drop apostrophes (``isn't`` -> ``isnt``); every other punctuation character (and ``_``) -> a space
    4. number words -> digits (``numbers_to_digits``, default True): ``zero`` .. ``twenty`` -> ``0`` .. ``20``
       and ``no`` -> ``0`` when another word follows (the synthetic counting answers say ``"There are no
       shapes."`` for 0 but ``"No."`` to a yes/no question; a lone ``no`` stays ``no``)
    5. collapse whitespace, strip

so ``"There are three circles."`` matches ``"there are 3 circles"`` but not ``"3"``: the metric is strict
exact match of the whole answer (the synthetic answers are short computed sentences; for open-ended
benchmarks use VLMEvalKit on the exported file).

Question types (reported as ``<type>/accuracy``): the metainfo ``question_type_key`` (default
``'question_type'``) if a sample has it, else a rule on the normalised question: ``counting`` (``how many``),
``colour`` (``colour``/``color``), ``background`` (``background``), ``yes_no`` (starts with is/are/does/do/
can/was/were/has/have/will), else ``other``. These cover the synthetic LLaVA-style chats
(``mmxsam.datasets.synthetic.language.conversation_turns`` / ``text_only_turns``).

VLMEvalKit export (``export_file``). VLMEvalKit's ``infer_data_job`` writes ``{model}_{dataset}.xlsx`` (or
``.tsv`` with ``PRED_FORMAT=tsv``): the benchmark's rows without the ``image`` column plus a ``prediction``
column, written with ``pandas`` (``to_csv(sep='\\t', index=False, quoting=csv.QUOTE_ALL)`` for TSV); its
``load`` reads it back by suffix (``pd.read_csv(f, sep='\\t')`` / ``pd.read_excel``). This metric writes the
same layout, one row per unique sample sorted by ``sample_idx``, columns ``index`` (the ``sample_idx``),
``question``, ``answer`` (empty when unknown), ``prediction`` (the raw ``pred_text``, stripped),
``category`` (the question type), ``image_path``, ``source``. ``.tsv`` (all fields quoted, UTF-8, as
VLMEvalKit) and ``.csv`` are written with the standard library; ``.xlsx`` needs ``openpyxl``: when it is not
installed the file is written as ``.tsv`` next to the requested name (same stem) with a warning. Any other
suffix raises ``ValueError`` at construction.

Distributed evaluation: as :class:`~mmxsam.evaluation.metrics.refer_seg_metric.ReferSegMetric` (mmengine
gathers and truncates, repeated ``sample_idx`` dropped and logged); rows are sorted by ``sample_idx``, so
1 and N processes give identical numbers and identical files.
"""
import csv
import logging
import os
import os.path as osp
import re
from collections import Counter, OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from ...models.language.constants import IMAGE_TOKEN
from .metric_utils import drop_duplicate_results, format_table, sample_index, sample_sort_key
from .metric_utils import get_field as _get

NAN = float('nan')
EXPORT_COLUMNS = ('index', 'question', 'answer', 'prediction', 'category', 'image_path', 'source')
EXPORT_SUFFIXES = ('.tsv', '.csv', '.xlsx')

_NUMBER_WORDS = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven',
                 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
                 'twenty')
_WORD_TO_DIGIT = {w: str(i) for i, w in enumerate(_NUMBER_WORDS)}
_SPECIAL_TOKENS = re.compile(r'<\|[^|>]*\|>|</?s>')
_APOSTROPHES = re.compile(r"['\u2019\u2018`]")
_PUNCT = re.compile(r'[^\w\s]|_')
_YES_NO_START = ('is', 'are', 'does', 'do', 'can', 'was', 'were', 'has', 'have', 'will')


def normalize_answer(text: Optional[str], numbers_to_digits: bool = True) -> str:
    """Normalise an answer for exact match (see the module docstring for the steps)."""
    if text is None:
        return ''
    text = _SPECIAL_TOKENS.sub(' ', str(text)).casefold()
    text = _APOSTROPHES.sub('', text)
    words = _PUNCT.sub(' ', text).split()
    if numbers_to_digits:
        words = [_WORD_TO_DIGIT.get(w, '0' if w == 'no' and k + 1 < len(words) else w) for k, w in enumerate(words)]
    return ' '.join(words)


def classify_question(question: Optional[str]) -> str:
    """``counting`` / ``colour`` / ``background`` / ``yes_no`` / ``other`` (rules in the module docstring)."""
    words = normalize_answer(_clean_question(question), numbers_to_digits=False).split()
    text = ' '.join(words)
    if 'how many' in text:
        return 'counting'
    if 'colour' in words or 'color' in words:
        return 'colour'
    if 'background' in words:
        return 'background'
    if words and words[0] in _YES_NO_START:
        return 'yes_no'
    return 'other'


def last_turns(conversations: Any) -> Tuple[Optional[str], Optional[str]]:
    """``(question, answer)`` of LLaVA turns: the last human turn and the gpt turn right after it (None if the
    conversation ends with the question)."""
    if not isinstance(conversations, (list, tuple)):
        return None, None
    question = answer = None
    for turn in conversations:
        if not isinstance(turn, dict):
            continue
        if turn.get('from') == 'human':
            question, answer = turn.get('value'), None
        elif turn.get('from') == 'gpt':
            answer = turn.get('value')
    return question, answer


def _clean_question(question: Optional[str]) -> str:
    return '' if question is None else str(question).replace(IMAGE_TOKEN, '').strip()


@METRICS.register_module()
class ChatMetric(BaseMetric):
    """Exact-match accuracy (percent) of ``pred_text`` against the GT answer, overall and per question type.

    Input contract: each element of ``data_samples`` (dict or data element) has ``pred_text`` (str; a sample
    without it counts as a wrong, empty answer and is logged), metainfo ``sample_idx`` (unique per sample),
    and the GT answer/question as described in the module docstring (``conversations`` or ``answer_key`` /
    ``question_key``). Samples without a GT answer are left out of the accuracy (counted, logged) but are
    exported. ``img_path`` and ``source`` metainfo, when present, go to the export.

    Output (before mmengine adds ``prefix + '/'``): ``accuracy`` and ``<type>/accuracy`` per question type
    (sorted), in percent. No sample with a GT answer gives a warning and ``accuracy`` NaN.

    Args:
        numbers_to_digits (bool): map number words to digits when normalising. Defaults to True.
        answer_key (str): metainfo key of an explicit GT answer. Defaults to ``'gt_answer'``.
        question_key (str): metainfo key of an explicit question. Defaults to ``'question'``.
        question_type_key (str): metainfo key of an explicit question type. Defaults to ``'question_type'``.
        export_file (str, optional): write the VLMEvalKit prediction file (``.tsv``, ``.csv`` or ``.xlsx``)
            there at every evaluation (rank 0). Defaults to None.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        collect_dir (str, optional): shared directory for CPU gathering. Defaults to None.
        prefix (str, optional): metric-name prefix; None: ``'chat'``.
    """

    default_prefix: Optional[str] = 'chat'

    def __init__(self,
                 numbers_to_digits: bool = True,
                 answer_key: str = 'gt_answer',
                 question_key: str = 'question',
                 question_type_key: str = 'question_type',
                 export_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if export_file is not None and osp.splitext(export_file)[1].lower() not in EXPORT_SUFFIXES:
            raise ValueError(f'export_file must end with one of {EXPORT_SUFFIXES}, got {export_file!r}')
        self.numbers_to_digits = numbers_to_digits
        self.answer_key = answer_key
        self.question_key = question_key
        self.question_type_key = question_type_key
        self.export_file = export_file

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append one dict (ids, question, answer, prediction, type; strings only) per sample."""
        for data_sample in data_samples:
            sample_idx = sample_index(data_sample, type(self).__name__)
            question, answer = last_turns(_get(data_sample, 'conversations'))
            explicit_answer = _get(data_sample, self.answer_key)
            explicit_question = _get(data_sample, self.question_key)
            answer = explicit_answer if explicit_answer is not None else answer
            question = explicit_question if explicit_question is not None else question
            qtype = _get(data_sample, self.question_type_key)
            prediction = _get(data_sample, 'pred_text')
            self.results.append(dict(
                sample_idx=sample_idx,
                question=_clean_question(question),
                answer=None if answer is None else str(answer),
                prediction=None if prediction is None else str(prediction),
                category=str(qtype) if qtype is not None else classify_question(question),
                image_path=str(_get(data_sample, 'img_path') or ''),
                source=str(_get(data_sample, 'source') or '')))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Accuracy overall and per question type; optionally write the export file."""
        unique = sorted(drop_duplicate_results(results, type(self).__name__),
                        key=lambda r: sample_sort_key(r['sample_idx']))
        if self.export_file is not None:
            self.export(unique, self.export_file)
        scored = [r for r in unique if r['answer'] is not None]
        no_answer = len(unique) - len(scored)
        no_prediction = sum(r['prediction'] is None for r in scored)
        if not scored:
            print_log(f'{type(self).__name__}: no results with a ground-truth answer to evaluate ({len(unique)} '
                      'samples in all); accuracy is NaN.', logger='current', level=logging.WARNING)
            return OrderedDict(accuracy=NAN)
        if no_answer or no_prediction:
            print_log(f'{type(self).__name__}: {no_answer} sample(s) without a ground-truth answer left out; '
                      f'{no_prediction} sample(s) without pred_text scored as wrong.', logger='current',
                      level=logging.WARNING)
        hits, totals = Counter(), Counter()
        for r in scored:
            hit = int(r['prediction'] is not None and normalize_answer(r['prediction'], self.numbers_to_digits)
                      == normalize_answer(r['answer'], self.numbers_to_digits))
            hits[r['category']] += hit
            totals[r['category']] += 1
        metrics: Dict[str, float] = OrderedDict(accuracy=100.0 * sum(hits.values()) / len(scored))
        rows = []
        for qtype in sorted(totals):
            metrics[f'{qtype}/accuracy'] = 100.0 * hits[qtype] / totals[qtype]
            rows.append((qtype, totals[qtype], hits[qtype], f'{metrics[f"{qtype}/accuracy"]:.2f}'))
        rows.append(('overall', len(scored), sum(hits.values()), f'{metrics["accuracy"]:.2f}'))
        print_log(f'{type(self).__name__} (prefix {self.prefix!r}):\n'
                  f'{format_table(("question type", "samples", "correct", "accuracy"), rows)}', logger='current')
        return metrics

    # ------------------------------------------------------------------------------------------------ export
    @staticmethod
    def export_rows(results: Sequence[dict]) -> List[List[Any]]:
        """Rows in :data:`EXPORT_COLUMNS` order."""
        return [[r['sample_idx'], r['question'], '' if r['answer'] is None else r['answer'],
                 '' if r['prediction'] is None else r['prediction'].strip(), r['category'], r['image_path'],
                 r['source']] for r in results]

    def export(self, results: Sequence[dict], path: str) -> str:
        """Write the VLMEvalKit prediction file; returns the path written (``.tsv`` if ``.xlsx`` was not
        possible)."""
        rows = self.export_rows(results)
        stem, suffix = osp.splitext(path)
        suffix = suffix.lower()
        if osp.dirname(path):
            os.makedirs(osp.dirname(path), exist_ok=True)
        if suffix == '.xlsx':
            try:
                import openpyxl
            except ImportError:
                path, suffix = stem + '.tsv', '.tsv'
                print_log(f'{type(self).__name__}: openpyxl is not installed; writing {path} (TSV) instead of '
                          'the requested .xlsx (VLMEvalKit reads both; PRED_FORMAT=tsv).', logger='current',
                          level=logging.WARNING)
            else:
                book = openpyxl.Workbook()
                sheet = book.active
                sheet.append(list(EXPORT_COLUMNS))
                for row in rows:
                    sheet.append(row)
                book.save(path)
        if suffix in ('.tsv', '.csv'):
            with open(path, 'w', encoding='utf-8', newline='') as f:
                writer = csv.writer(f, delimiter='\t' if suffix == '.tsv' else ',', quoting=csv.QUOTE_ALL)
                writer.writerow(EXPORT_COLUMNS)
                writer.writerows(rows)
        print_log(f'{type(self).__name__}: wrote {len(rows)} predictions to {path}', logger='current')
        return path
