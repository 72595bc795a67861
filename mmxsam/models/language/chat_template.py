"""Chat templates as data.

A :class:`ChatTemplate` is a handful of strings; :func:`~.conversation.encode_conversation` turns a
conversation into ``input_ids``/``labels`` with it, and :class:`~.hf_causal_lm.HFCausalLM` takes its
stop words for generation. A conversation renders as::

    [BOS] system.replace('{system}', s)                 (first turn only, when s != '')
          user.replace('{input}', q1) + assistant       (the prompt: never supervised)
          a1 + suffix                                   (supervised)
          sep                                           (not supervised)
          user.replace('{input}', q2) + assistant ...

The fields are the xtuner ``PROMPT_TEMPLATE`` ones with the assistant prefix split out of
``INSTRUCTION``: X-SAM's ``phi3_chat`` is ``INSTRUCTION='<|user|>\\n{input}<|end|>\\n<|assistant|>\\n'``,
``SUFFIX='<|end|>'``, ``SUFFIX_AS_EOS=True``, ``SEP='\\n'``, ``STOP_WORDS=['<|end|>']``. Like
``SUFFIX_AS_EOS=True`` in xtuner, the suffix always ends a turn: no tokenizer EOS is appended, and BOS
appears only at the very start.

Built-ins (:func:`list_chat_templates`): ``phi3`` (X-SAM), ``qwen`` (ChatML) and ``vicuna``
(LLaVA-v1 style). Select one by name, or give a template in a config:

* ``'phi3'``: a registered template;
* ``dict(name='mine', user='...{input}...', assistant='...', suffix='...', ...)``: a new template
  (the :class:`ChatTemplate` fields);
* ``dict(base='phi3', default_system='You are ...')``: a registered template with some fields
  replaced (``name`` defaults to the base's).

:func:`register_chat_template` adds a template under its name, so plugins can ship their own. The
placeholders ``{input}``/``{system}`` are substituted with ``str.replace`` (not ``str.format``), so
templates and messages may contain literal braces.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

INPUT_FIELD = '{input}'
SYSTEM_FIELD = '{system}'

#: One exchange: (user text, assistant text or ``None`` for "the model answers next").
Turn = Tuple[str, Optional[str]]


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template (immutable).

    Args:
        name (str): registry name, e.g. ``'phi3'``.
        user (str): the user turn with exactly one ``'{input}'``, e.g. ``'<|user|>\\n{input}<|end|>\\n'``.
        assistant (str): the assistant prefix that follows every user turn, e.g.
            ``'<|assistant|>\\n'``. The prompt (user turn + assistant prefix) is never supervised.
        suffix (str): appended to every assistant output and supervised with it, e.g. ``'<|end|>'``.
        sep (str): follows the suffix, not supervised, e.g. ``'\\n'``.
        system (str): the system block with exactly one ``'{system}'`` (or ``''``: the template has
            no system role); prepended to the first user turn when the system text is not empty.
        default_system (str): the system text used when the caller gives none.
        stop_words (tuple[str, ...]): strings that end generation; each must be a single token
            of the tokenizer used with the template (checked by ``HFCausalLM``).
        add_bos (bool): start the conversation with the tokenizer's ``bos_token_id`` (skipped when
            the tokenizer has none).
    """

    name: str
    user: str
    assistant: str = ''
    suffix: str = ''
    sep: str = ''
    system: str = ''
    default_system: str = ''
    stop_words: Tuple[str, ...] = field(default=())
    add_bos: bool = True

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == 'stop_words':
                if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(
                        isinstance(w, str) and w for w in value):
                    raise TypeError(f'ChatTemplate.stop_words must be a sequence of non-empty '
                                    f'strings, got {value!r}')
                object.__setattr__(self, 'stop_words', tuple(value))  # configs turn tuples into lists
            elif f.name == 'add_bos':
                if not isinstance(value, bool):
                    raise TypeError(f'ChatTemplate.add_bos must be a bool, got {value!r}')
            elif not isinstance(value, str):
                raise TypeError(f'ChatTemplate.{f.name} must be a str, got {type(value).__name__}')
        if not self.name:
            raise ValueError('ChatTemplate.name must not be empty')
        if self.user.count(INPUT_FIELD) != 1:
            raise ValueError(f"ChatTemplate.user must contain '{INPUT_FIELD}' exactly once, "
                             f'got {self.user!r}')
        if self.system and self.system.count(SYSTEM_FIELD) != 1:
            raise ValueError(f"ChatTemplate.system must be '' or contain '{SYSTEM_FIELD}' exactly "
                             f'once, got {self.system!r}')
        if self.default_system and not self.system:
            raise ValueError('ChatTemplate.default_system needs a system block (ChatTemplate.system)')

    # ------------------------------------------------------------------ rendering
    def system_block(self, system: Optional[str] = None) -> str:
        """The system block for ``system`` (``None``: :attr:`default_system`); ``''`` when empty."""
        text = self.default_system if system is None else system
        if not text:
            return ''
        if not self.system:
            raise ValueError(f'chat template {self.name!r} has no system role, got system={text!r}')
        return self.system.replace(SYSTEM_FIELD, text)

    def user_parts(self) -> Tuple[str, str]:
        """``(before, after)``: the prompt is ``before + question + after`` (``after`` includes the
        assistant prefix)."""
        before, after = self.user.split(INPUT_FIELD)
        return before, after + self.assistant

    def render(self, turns: Sequence[Turn], system: Optional[str] = None) -> str:
        """The conversation as text, exactly as :func:`encode_conversation` tokenizes it (without
        BOS). The last turn's answer may be ``None`` (the text then ends with the assistant prefix).
        """
        turns = check_turns(turns)
        before, after = self.user_parts()
        out: List[str] = [self.system_block(system)]
        for question, answer in turns:
            out.append(before + question + after)
            if answer is not None:
                out.append(answer + self.suffix + self.sep)
        return ''.join(out)


def check_turns(turns: Sequence[Turn]) -> List[Turn]:
    """Validate a LLaVA-style list of (user, assistant) pairs; only the last answer may be None."""
    if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence) or len(turns) == 0:
        raise ValueError(f'turns must be a non-empty list of (user_text, assistant_text) pairs, '
                         f'got {turns!r}')
    out = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, (list, tuple)) or len(turn) != 2:
            raise ValueError(f'turns[{i}] must be a (user_text, assistant_text) pair, got {turn!r}')
        question, answer = turn
        if not isinstance(question, str):
            raise TypeError(f'turns[{i}][0] (user text) must be a str, got {type(question).__name__}')
        if answer is None and i != len(turns) - 1:
            raise ValueError(f'turns[{i}][1] is None: only the last turn may lack an answer')
        if answer is not None and not isinstance(answer, str):
            raise TypeError(f'turns[{i}][1] (assistant text) must be a str or None, '
                            f'got {type(answer).__name__}')
        out.append((question, answer))
    return out


PHI3 = ChatTemplate(
    name='phi3',
    system='<|system|>\n{system}<|end|>\n',
    user='<|user|>\n{input}<|end|>\n',
    assistant='<|assistant|>\n',
    suffix='<|end|>',
    sep='\n',
    stop_words=('<|end|>', ),
    add_bos=True)

QWEN = ChatTemplate(
    name='qwen',
    system='<|im_start|>system\n{system}<|im_end|>\n',
    user='<|im_start|>user\n{input}<|im_end|>\n',
    assistant='<|im_start|>assistant\n',
    suffix='<|im_end|>',
    sep='\n',
    stop_words=('<|im_end|>', ),
    add_bos=False)  # Qwen tokenizers have no BOS

VICUNA = ChatTemplate(
    name='vicuna',
    system='{system} ',
    default_system=('A chat between a curious human and an artificial intelligence assistant. '
                    "The assistant gives helpful, detailed, and polite answers to the human's "
                    'questions.'),
    user='USER: {input} ',
    assistant='ASSISTANT: ',
    suffix='</s>',
    sep='',
    stop_words=('</s>', ),
    add_bos=True)

_CHAT_TEMPLATES: Dict[str, ChatTemplate] = {}

ChatTemplateLike = Union[str, Mapping, ChatTemplate]


def register_chat_template(template: Union[ChatTemplate, Mapping],
                           force: bool = False) -> ChatTemplate:
    """Register ``template`` (a :class:`ChatTemplate` or a dict of its fields) under its name.

    Raises:
        KeyError: the name is taken and ``force`` is False.
    """
    if isinstance(template, Mapping):
        template = ChatTemplate(**template)
    if not isinstance(template, ChatTemplate):
        raise TypeError(f'template must be a ChatTemplate or dict, got {type(template).__name__}')
    if template.name in _CHAT_TEMPLATES and not force:
        raise KeyError(f'chat template {template.name!r} is already registered '
                       f'(pass force=True to replace it)')
    _CHAT_TEMPLATES[template.name] = template
    return template


def list_chat_templates() -> List[str]:
    """Names of the registered templates, sorted."""
    return sorted(_CHAT_TEMPLATES)


def get_chat_template(spec: ChatTemplateLike) -> ChatTemplate:
    """Resolve a template given by name, by config dict or as a :class:`ChatTemplate`.

    A dict either defines a new template (the :class:`ChatTemplate` fields) or, with a ``base`` key,
    replaces some fields of a registered one: ``dict(base='phi3', default_system='...')``. A dict
    template is not registered.
    """
    if isinstance(spec, ChatTemplate):
        return spec
    if isinstance(spec, str):
        if spec not in _CHAT_TEMPLATES:
            raise KeyError(f'unknown chat template {spec!r}; registered: {list_chat_templates()} '
                           f'(or pass a dict of ChatTemplate fields)')
        return _CHAT_TEMPLATES[spec]
    if isinstance(spec, Mapping):
        fields = dict(spec)
        base = fields.pop('base', None)
        names = {f.name for f in dataclasses.fields(ChatTemplate)}
        unknown = sorted(set(fields) - names)
        if unknown:
            raise TypeError(f'unknown chat template field(s) {unknown}; valid: {sorted(names)} '
                            f"and 'base'")
        if base is None:
            return ChatTemplate(**fields)
        return dataclasses.replace(get_chat_template(base), **fields)
    raise TypeError(f'chat template must be a name, a dict or a ChatTemplate, '
                    f'got {type(spec).__name__}')


for _t in (PHI3, QWEN, VICUNA):
    register_chat_template(_t)
del _t
