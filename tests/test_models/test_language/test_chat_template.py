import dataclasses

import pytest
from mmengine.config import Config

from mmxsam.models.language import (ChatTemplate, get_chat_template, list_chat_templates,
                                    register_chat_template)
from mmxsam.models.language import chat_template as ct

TURNS = [('<image>\nq1', 'a1'), ('q2', 'a2')]


def test_builtins_registered():
    assert {'phi3', 'qwen', 'vicuna'} <= set(list_chat_templates())
    assert get_chat_template('phi3') is ct.PHI3


def test_phi3_matches_reference():
    t = get_chat_template('phi3')
    # reference §4: "<|user|>\n{input}<|end|>\n<|assistant|>\n" + output + "<|end|>", sep "\n"
    assert t.user + t.assistant == '<|user|>\n{input}<|end|>\n<|assistant|>\n'
    assert (t.suffix, t.sep, t.stop_words, t.add_bos) == ('<|end|>', '\n', ('<|end|>', ), True)
    assert t.render(TURNS) == ('<|user|>\n<image>\nq1<|end|>\n<|assistant|>\na1<|end|>\n'
                               '<|user|>\nq2<|end|>\n<|assistant|>\na2<|end|>\n')
    assert t.render([('q', None)]) == '<|user|>\nq<|end|>\n<|assistant|>\n'
    assert t.render([('q', 'a')], system='S') == '<|system|>\nS<|end|>\n<|user|>\nq<|end|>\n<|assistant|>\na<|end|>\n'


def test_qwen_chatml():
    t = get_chat_template('qwen')
    assert t.render(TURNS, system='You are helpful.') == (
        '<|im_start|>system\nYou are helpful.<|im_end|>\n'
        '<|im_start|>user\n<image>\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n'
        '<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\na2<|im_end|>\n')
    assert t.render([('q', None)]) == '<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n'
    assert t.stop_words == ('<|im_end|>', ) and not t.add_bos


def test_vicuna():
    t = get_chat_template('vicuna')
    assert t.render(TURNS, system='SYS') == ('SYS USER: <image>\nq1 ASSISTANT: a1</s>'
                                             'USER: q2 ASSISTANT: a2</s>')
    assert t.render([('q', None)]).endswith('USER: q ASSISTANT: ')
    assert t.render([('q', None)]).startswith('A chat between')  # default system
    assert t.render([('q', None)], system='') == 'USER: q ASSISTANT: '


def test_config_dict_template():
    cfg = Config(dict(chat_template=dict(name='mine', user='[U]{input}[/U]', assistant='[A]',
                                         suffix='[E]', sep='|', stop_words=('[E]', ))))
    t = get_chat_template(cfg.chat_template)  # mmengine ConfigDict, tuple -> list
    assert isinstance(t, ChatTemplate) and t.stop_words == ('[E]', )
    assert t.render([('q', 'a'), ('r', None)]) == '[U]q[/U][A]a[E]|[U]r[/U][A]'
    assert 'mine' not in list_chat_templates()  # dict templates are not registered
    based = get_chat_template(dict(base='phi3', default_system='Be brief.'))
    assert based.name == 'phi3' and based.render([('q', None)]).startswith('<|system|>\nBe brief.<|end|>\n')
    assert ct.PHI3.default_system == ''  # the registered one is unchanged


def test_register_and_errors():
    t = register_chat_template(dict(name='_test_tpl', user='{input}'))
    try:
        assert get_chat_template('_test_tpl') is t
        with pytest.raises(KeyError, match='already registered'):
            register_chat_template(dict(name='_test_tpl', user='x{input}'))
        register_chat_template(dict(name='_test_tpl', user='x{input}'), force=True)
        assert get_chat_template('_test_tpl').user == 'x{input}'
    finally:
        ct._CHAT_TEMPLATES.pop('_test_tpl')
    with pytest.raises(KeyError, match='unknown chat template'):
        get_chat_template('nope')
    with pytest.raises(ValueError, match="'{input}' exactly once"):
        ChatTemplate(name='x', user='no field')
    with pytest.raises(ValueError, match="'{system}'"):
        ChatTemplate(name='x', user='{input}', system='sys')
    with pytest.raises(TypeError, match='unknown chat template field'):
        get_chat_template(dict(base='phi3', sufix='typo'))
    with pytest.raises(TypeError, match='stop_words'):
        ChatTemplate(name='x', user='{input}', stop_words='<|end|>')
    with pytest.raises(ValueError, match='no system role'):
        ChatTemplate(name='x', user='{input}').render([('q', None)], system='S')
    with pytest.raises(ValueError, match='only the last turn'):
        ct.PHI3.render([('q', None), ('r', 'a')])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ct.PHI3.suffix = ''


def test_literal_braces():
    t = ChatTemplate(name='json', user='{"q": "{input}"}')
    assert t.render([('{x}', None)]) == '{"q": "{x}"}'
