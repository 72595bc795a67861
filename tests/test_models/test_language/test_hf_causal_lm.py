import math

import pytest
import torch
from mmdet.registry import MODELS
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from mmxsam.models.language import (EXTRA_CORPUS, HFCausalLM, XSAM_SPECIAL_TOKENS, build_tiny_tokenizer,
                                    encode_conversation)

CORPUS = ['the small red circle on the left', 'a blue square', 'What is in this image?'] + list(EXTRA_CORPUS)


@pytest.fixture(scope='module')
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('llm_tok')
    build_tiny_tokenizer(CORPUS, str(out), vocab_size=512)
    return str(out)


@pytest.fixture(scope='module')
def vocab(tok_dir):
    return len(AutoTokenizer.from_pretrained(tok_dir))


@pytest.fixture(scope='module')
def tiny_cfg(vocab):
    return dict(model_type='phi3', hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, vocab_size=vocab, max_position_embeddings=256,
                bos_token_id=1, eos_token_id=2, pad_token_id=2)


@pytest.fixture(scope='module')
def pretrained_dir(tmp_path_factory, tok_dir, tiny_cfg):
    """A plain tiny Phi-3 + the tiny tokenizer (no X-SAM tokens), as a hub folder would hold."""
    out = str(tmp_path_factory.mktemp('tiny_phi3'))
    cfg = dict(tiny_cfg)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop('model_type'), **cfg))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tok_dir).save_pretrained(out)
    return out


def build(tiny_cfg, tok_dir, **kwargs):
    torch.manual_seed(0)
    return HFCausalLM(config=tiny_cfg, tokenizer=dict(name_or_path=tok_dir), attn_implementation='eager',
                      **kwargs)


def prompt_embeds(llm, turns=(('<image>\nWhat is in this image?', 'Sure, it is <SEG>.'), )):
    enc = encode_conversation(llm.tokenizer, llm.chat_template, list(turns))
    ids = torch.tensor([[max(t, 0) for t in enc['input_ids']]])  # the MLLM would splice images in
    return llm.get_input_embeddings()(ids), torch.tensor([enc['labels']])


def test_special_tokens_and_resize(pretrained_dir, vocab):
    plain = AutoModelForCausalLM.from_pretrained(pretrained_dir)
    llm = HFCausalLM(name_or_path=pretrained_dir, tokenizer=dict(name_or_path=pretrained_dir))
    tok = llm.tokenizer
    assert (llm.seg_token_id, llm.p_start_id, llm.p_end_id) == (vocab, vocab + 1, vocab + 2)
    assert tok.convert_tokens_to_ids(list(XSAM_SPECIAL_TOKENS)) == [vocab, vocab + 1, vocab + 2]
    ids = tok.encode('Sure, <p>a blue square</p> is <SEG>.', add_special_tokens=False)
    assert ids.count(llm.seg_token_id) == ids.count(llm.p_start_id) == ids.count(llm.p_end_id) == 1
    assert tok.decode(ids) == 'Sure, <p>a blue square</p> is <SEG>.'
    emb, head = llm.get_input_embeddings().weight, llm.get_output_embeddings().weight
    assert emb.shape == head.shape == (vocab + 3, 32) and llm.config.vocab_size == vocab + 3
    assert torch.equal(emb[:vocab], plain.get_input_embeddings().weight)  # old rows unchanged
    assert torch.equal(head[:vocab], plain.lm_head.weight)
    assert torch.isfinite(emb[vocab:]).all() and torch.isfinite(head[vocab:]).all()
    assert llm.hidden_size == 32 and llm.stop_token_ids == [tok.convert_tokens_to_ids('<|end|>'), 2]
    # every other weight loaded unchanged, and mmengine's init_weights leaves them alone
    llm.init_weights()
    sd = llm.hf_model.state_dict()
    for k, v in plain.state_dict().items():
        if 'embed_tokens' not in k and 'lm_head' not in k:
            assert torch.equal(sd[k], v), k


def test_save_and_reload_round_trip(pretrained_dir, tmp_path):
    llm = HFCausalLM(name_or_path=pretrained_dir, tokenizer=dict(name_or_path=pretrained_dir))
    llm.hf_model.save_pretrained(str(tmp_path))
    llm.tokenizer.save_pretrained(str(tmp_path))
    again = MODELS.build(dict(type='HFCausalLM', name_or_path=str(tmp_path),
                              tokenizer=dict(name_or_path=str(tmp_path))))
    assert again.seg_token_id == llm.seg_token_id and len(again.tokenizer) == len(llm.tokenizer)
    for (k, v), (k2, v2) in zip(llm.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k


def test_pad_to_multiple_of_and_vocab_size(tiny_cfg, tok_dir, vocab):
    llm = build(tiny_cfg, tok_dir, pad_to_multiple_of=64)
    assert llm.get_input_embeddings().weight.shape[0] == math.ceil((vocab + 3) / 64) * 64
    no_tok = HFCausalLM(config=tiny_cfg, vocab_size=vocab + 10)
    assert no_tok.config.vocab_size == vocab + 10 and no_tok.seg_token_id is None
    assert HFCausalLM(config=tiny_cfg).config.vocab_size == vocab  # no tokenizer: no resize
    with pytest.raises(RuntimeError, match='needs a tokenizer'):
        no_tok.generate(torch.zeros(1, 2, 32))


def test_forward_loss_and_hidden_states(tiny_cfg, tok_dir):
    llm = build(tiny_cfg, tok_dir)
    embeds, labels = prompt_embeds(llm)
    out = llm(embeds, torch.ones(labels.shape, dtype=torch.long), labels=labels)
    L = labels.shape[1]
    assert out.logits.shape == (1, L, llm.config.vocab_size)
    assert len(out.hidden_states) == 3 and out.hidden_states[-1].shape == (1, L, 32)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert llm.get_input_embeddings().weight.grad is not None
    assert llm.config.use_cache is False


def test_gradient_checkpointing_and_freeze(tiny_cfg, tok_dir):
    llm = build(tiny_cfg, tok_dir, gradient_checkpointing=True)
    assert llm.hf_model.is_gradient_checkpointing
    llm.train()
    embeds, labels = prompt_embeds(llm)
    llm(embeds.detach(), labels=labels).loss.backward()
    assert llm.hf_model.model.layers[0].self_attn.qkv_proj.weight.grad is not None
    frozen = build(tiny_cfg, tok_dir, freeze=True)
    assert not any(p.requires_grad for p in frozen.parameters())
    frozen.train()
    assert frozen.training and not frozen.model.training


def test_bf16(tiny_cfg, tok_dir):
    llm = build(tiny_cfg, tok_dir, torch_dtype='bfloat16')
    assert llm.dtype == torch.bfloat16
    out = llm(torch.randn(1, 4, 32), labels=torch.tensor([[-100, 5, 6, 7]]))
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)


def test_lora_trainable_params_and_merge(tiny_cfg, tok_dir):
    llm = build(tiny_cfg, tok_dir, lora=dict(r=4, alpha=8, dropout=0.0))
    assert llm.has_lora
    trainable = {n: p for n, p in llm.named_parameters() if p.requires_grad}
    deltas = {n: p for n, p in trainable.items() if 'trainable_tokens_delta' in n}
    assert all('lora_' in n or 'trainable_tokens_delta' in n for n in trainable)
    assert sum('lora_A' in n for n in trainable) == 2 * 4  # 4 linear layers per block, 2 blocks
    # the new rows of the input embedding and of the (untied) LM head: 3 tokens each
    assert sorted(p.shape for p in deltas.values()) == [(3, 32), (3, 32)]
    assert any('embed_tokens' in n for n in deltas) and any('lm_head' in n for n in deltas)

    llm.train()
    embeds, labels = prompt_embeds(llm)
    llm(embeds, labels=labels).loss.backward()
    for n, p in trainable.items():
        if 'lora_B' in n or 'trainable_tokens_delta' in n:
            assert p.grad is not None, n

    # non-trivial adapters, then merging must not change the outputs
    old_ids = torch.tensor([[5, llm.seg_token_id]])
    emb0 = llm.get_input_embeddings()(old_ids).detach()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in trainable.values():
            p.normal_(0, 0.3)
    llm.eval()
    ids = torch.tensor([[5, llm.seg_token_id, 7, llm.p_start_id, llm.p_end_id]])
    emb = llm.get_input_embeddings()(ids)
    before = llm(emb).logits
    emb1 = llm.get_input_embeddings()(old_ids)
    assert torch.equal(emb1[0, 0], emb0[0, 0]) and not torch.equal(emb1[0, 1], emb0[0, 1])  # new rows only
    merged = llm.merge_lora()
    assert isinstance(merged, PreTrainedModel) and llm.model is merged and not llm.has_lora
    assert not any('lora_' in n or 'token_adapter' in n for n, _ in merged.named_modules())
    assert torch.allclose(llm.get_input_embeddings()(ids), emb, atol=1e-6)
    assert torch.allclose(llm(emb).logits, before, atol=1e-5)
    with pytest.raises(RuntimeError, match='merge_lora'):
        llm.merge_lora()


def test_generate_stops_at_end(tiny_cfg, tok_dir):
    llm = build(tiny_cfg, tok_dir).eval()
    end = llm.tokenizer.convert_tokens_to_ids('<|end|>')
    calls = []

    def steer(module, args, out):  # step 0, 1: token 9; step 2 on: <|end|>
        out = out.clone()
        out[..., 9 if len(calls) < 2 else end] += 1e4
        calls.append(1)
        return out

    handle = llm.get_output_embeddings().register_forward_hook(steer)
    try:
        embeds, _ = prompt_embeds(llm, [('What is in this image?', None)])
        out = llm.generate(embeds, max_new_tokens=10, output_hidden_states=True)
        assert out.sequences.tolist() == [[9, 9, end]]  # only new tokens, stopped at <|end|>
        assert len(out.hidden_states) == 3
        calls.clear()
        batch = torch.cat([embeds, embeds])
        assert llm.generate(batch, torch.ones(batch.shape[:2], dtype=torch.long),
                            max_new_tokens=10).sequences.tolist() == [[9, 9, end]] * 2
    finally:
        handle.remove()


def test_full_size_phi3_mini_on_meta():
    phi3_mini = dict(model_type='phi3', hidden_size=3072, num_hidden_layers=32, num_attention_heads=32,
                     intermediate_size=8192, vocab_size=32064)
    with torch.device('meta'):
        full = HFCausalLM(config=phi3_mini)
        resized = HFCausalLM(config=phi3_mini, vocab_size=32014)  # len(Phi-3 tokenizer) + 3
    n_full = sum(p.numel() for p in full.parameters())
    n_resized = sum(p.numel() for p in resized.parameters())
    assert n_full == 3_821_079_552  # Phi-3-mini: 3.82B
    assert n_full - n_resized == 50 * 3072 * 2  # 50 rows fewer in embed_tokens and lm_head
    assert resized.get_input_embeddings().weight.shape == (32014, 3072)
    assert resized.get_input_embeddings().weight.is_meta


def test_errors(tiny_cfg, tok_dir):
    with pytest.raises(ValueError, match='exactly one of name_or_path'):
        HFCausalLM()
    with pytest.raises(ValueError, match="needs 'model_type'"):
        HFCausalLM(config=dict(hidden_size=32))
    with pytest.raises(ValueError, match='vocab_size is only for tokenizer=None'):
        HFCausalLM(config=tiny_cfg, tokenizer=dict(name_or_path=tok_dir), vocab_size=600)
    with pytest.raises(ValueError, match='exclusive'):
        HFCausalLM(config=tiny_cfg, freeze=True, lora=dict())
    with pytest.raises(ValueError, match="unknown lora key"):
        HFCausalLM(config=tiny_cfg, lora=dict(rank=4))
    with pytest.raises(ValueError, match="'name_or_path'"):
        HFCausalLM(config=tiny_cfg, tokenizer=dict(path=tok_dir))
    with pytest.raises(ValueError, match='stop word'):
        HFCausalLM(config=tiny_cfg, tokenizer=dict(name_or_path=tok_dir), chat_template='qwen')
    with pytest.raises(ValueError, match='torch_dtype'):
        HFCausalLM(config=tiny_cfg, torch_dtype='float99')
