import pytest
import torch
from transformers import (CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel, Siglip2Config,
                          Siglip2Model, Siglip2VisionConfig, Siglip2VisionModel, SiglipConfig,
                          SiglipModel, SiglipVisionConfig, SiglipVisionModel)

from mmxsam.models.backbones import HFVisionEncoder

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
            patch_size=8)
TOWERS = {  # family: (vision config, vision model, full config, full model, tiny kwargs)
    'siglip': (SiglipVisionConfig, SiglipVisionModel, SiglipConfig, SiglipModel,
               dict(TINY, image_size=32)),
    'siglip2': (Siglip2VisionConfig, Siglip2VisionModel, Siglip2Config, Siglip2Model,
                dict(TINY, num_patches=16)),
    'clip': (CLIPVisionConfig, CLIPVisionModel, CLIPConfig, CLIPModel, dict(TINY, image_size=32)),
}
TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            vocab_size=99)
# google/siglip2-so400m-patch14-384: a fixed-resolution 'siglip' checkpoint
SO400M = dict(model_type='siglip_vision_model', hidden_size=1152, num_hidden_layers=27,
              num_attention_heads=16, intermediate_size=4304, image_size=384, patch_size=14)


def _tiny_config(family):
    cfg_cls, _, _, _, kwargs = TOWERS[family]
    return cfg_cls(**kwargs)


def _random_hf(family, seed=0, attn='sdpa'):
    """Tiny HF vision model with every weight random (HF zero-inits biases, LN = 1/0)."""
    torch.manual_seed(seed)
    model = TOWERS[family][1]._from_config(_tiny_config(family), attn_implementation=attn).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def _hf_states(model, family, x):
    """HF ``hidden_states`` for a (B, 3, S, S) image."""
    with torch.no_grad():
        if family != 'siglip2':
            return model(x, output_hidden_states=True).hidden_states
        b, c, s, _ = x.shape
        p, g = 8, s // 8  # the Siglip2 processor layout: (gh, gw) patches of (p, p, C)
        patches = x.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(b, g * g, -1)
        return model(patches, pixel_attention_mask=torch.ones(b, g * g, dtype=torch.long),
                     spatial_shapes=torch.tensor([[g, g]] * b),
                     output_hidden_states=True).hidden_states


@pytest.mark.parametrize('attn', ['eager', 'sdpa'])
@pytest.mark.parametrize('family', list(TOWERS))
def test_matches_transformers(family, attn):
    hf = _random_hf(family, attn=attn)
    enc = HFVisionEncoder(config=_tiny_config(family), attn_implementation=attn).eval()
    assert enc.family == family and enc.config._attn_implementation == attn
    assert set(enc.state_dict()) == set(hf.state_dict())  # vision_model.* both
    enc.vision_model.load_state_dict(hf.vision_model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    states = _hf_states(hf, family, x)
    assert len(states) == 4
    cls = 1 if family == 'clip' else 0
    for layer in range(-4, 4):
        enc.select_layer = layer % 4
        with torch.no_grad():
            out = enc(x)
        assert out.shape == (2, 16, 32)  # CLS dropped for CLIP by default
        torch.testing.assert_close(out, states[layer][:, cls:], atol=1e-5, rtol=1e-5)
    if family == 'clip':
        enc = HFVisionEncoder(config=_tiny_config(family), select_feature='all').eval()
        enc.vision_model.load_state_dict(hf.vision_model.state_dict())
        with torch.no_grad():
            out = enc(x)
        torch.testing.assert_close(out, states[-2], atol=1e-5, rtol=1e-5)
        assert out.shape == (2, 17, 32)


@pytest.mark.parametrize('full', [False, True])
@pytest.mark.parametrize('family', list(TOWERS))
def test_from_pretrained(tmp_path, family, full):
    hf = _random_hf(family, seed=1, attn='eager')
    if full:  # full vision + text checkpoint (model_type 'siglip' / 'siglip2' / 'clip')
        _, _, full_cfg, full_cls, kwargs = TOWERS[family]
        model = full_cls(full_cfg(vision_config=kwargs, text_config=TEXT))
        model.vision_model.load_state_dict(hf.vision_model.state_dict())
        model.save_pretrained(tmp_path)
    else:
        hf.save_pretrained(tmp_path)
    enc = HFVisionEncoder(name_or_path=str(tmp_path), select_layer=-2, attn_implementation='eager')
    assert enc.family == family and enc.num_layers == 3 and enc.embed_dims == 32
    assert enc.config._attn_implementation == 'eager'
    assert enc.select_feature == ('patch' if family == 'clip' else 'all')
    ref = hf.vision_model.state_dict()
    # a transformers version whose init_weights re-initialises must not be reached
    enc.vision_model.init_weights = lambda: [p.data.zero_() for p in enc.vision_model.parameters()]
    enc.init_weights()
    for k, v in enc.vision_model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = enc(x)
    cls = 1 if family == 'clip' else 0
    torch.testing.assert_close(out, _hf_states(hf, family, x)[-2][:, cls:], atol=1e-5, rtol=1e-5)


def test_registry_dtype_and_config_forms():
    from mmdet.registry import MODELS
    enc = MODELS.build(dict(type='HFVisionEncoder', torch_dtype='bfloat16',
                            config=dict(model_type='siglip_vision_model', image_size=32, **TINY)))
    assert isinstance(enc, HFVisionEncoder)
    assert all(p.dtype == torch.bfloat16 for p in enc.parameters())
    out = enc(torch.randn(1, 3, 32, 32))  # float32 input is cast to the weights' dtype
    assert out.dtype == torch.bfloat16 and out.shape == (1, 16, 32)
    # a full config dict resolves to its vision tower
    enc = HFVisionEncoder(config=dict(model_type='clip', vision_config=dict(image_size=32, **TINY)))
    assert enc.family == 'clip' and enc.embed_dims == 32


def test_freezing():
    enc = HFVisionEncoder(config=_tiny_config('siglip'))  # frozen by default
    enc.train()
    assert enc.training and not any(m.training for m in enc.vision_model.modules())
    assert not any(p.requires_grad for p in enc.parameters())

    enc = HFVisionEncoder(config=_tiny_config('siglip'), frozen=False, select_layer=-2).train()
    never_run = ('vision_model.encoder.layers.2.', 'vision_model.post_layernorm.',
                 'vision_model.head.')
    for name, p in enc.named_parameters():
        assert p.requires_grad != name.startswith(never_run), name
    assert enc.layers[1].training and not enc.layers[2].training
    enc(torch.randn(1, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in enc.parameters() if p.requires_grad)


@pytest.mark.parametrize('family', ['siglip', 'clip'])
def test_checkpointing_same_grads(monkeypatch, family):
    import mmxsam.models.backbones.hf_vision_encoder as module
    calls = []

    def counting_checkpoint(*args, **kwargs):
        calls.append(kwargs)
        return torch.utils.checkpoint.checkpoint(*args, **kwargs)

    monkeypatch.setattr(module, 'checkpoint', counting_checkpoint)
    hf = _random_hf(family, seed=3)
    grads = []
    for with_cp in (False, True):
        enc = HFVisionEncoder(config=_tiny_config(family), frozen=False, with_cp=with_cp).train()
        enc.vision_model.load_state_dict(hf.vision_model.state_dict())
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        enc(x).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
    assert calls == [dict(use_reentrant=False)] * 2  # layers 1-2 of 3, only with with_cp
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-5)


def test_bad_arguments_and_inputs():
    cfg = _tiny_config('siglip')
    with pytest.raises(ValueError, match='exactly one'):
        HFVisionEncoder()
    with pytest.raises(ValueError, match='exactly one'):
        HFVisionEncoder(name_or_path='x', config=cfg)
    with pytest.raises(ValueError, match=r'\[-4, 3\]'):
        HFVisionEncoder(config=cfg, select_layer=4)
    with pytest.raises(ValueError, match='select_feature'):
        HFVisionEncoder(config=cfg, select_feature='cls')
    with pytest.raises(ValueError, match='attn_implementation'):
        HFVisionEncoder(config=cfg, attn_implementation='flash')
    with pytest.raises(ValueError, match='model_type'):
        HFVisionEncoder(config=dict(TINY))
    with pytest.raises(ValueError, match='supports vision towers'):
        HFVisionEncoder(config=dict(model_type='sam_vision_model'))
    enc = HFVisionEncoder(config=cfg)
    for bad in (torch.randn(1, 4, 32, 32), torch.randn(3, 32, 32), torch.randn(1, 3, 48, 48)):
        with pytest.raises(ValueError, match=r'\(B, 3, 32, 32\)'):
            enc(bad)
    # other sizes with an interpolated position embedding (SigLIP / CLIP) or SigLIP2
    enc = HFVisionEncoder(config=cfg, interpolate_pos_encoding=True)
    assert enc(torch.randn(1, 3, 48, 40)).shape == (1, 30, 32)
    enc = HFVisionEncoder(config=_tiny_config('siglip2'))
    assert enc(torch.randn(1, 3, 48, 40)).shape == (1, 30, 32)
    with pytest.raises(ValueError, match="multiples of the patch size 8"):
        enc(torch.randn(1, 3, 36, 32))


def test_siglip2_so400m_on_meta():
    with torch.device('meta'):
        enc = HFVisionEncoder(config=SO400M, torch_dtype='bfloat16')
    assert enc.family == 'siglip' and enc.select_layer == 26
    n = sum(p.numel() for p in enc.parameters())
    d, m, L, p = 1152, 4304, 27, 14
    layer = 4 * (d * d + d) + (d * m + m + m * d + d) + 4 * d
    embed = 3 * p * p * d + d + 729 * d
    head = d + 3 * d * d + 3 * d + d * d + d + 2 * d + (d * m + m + m * d + d)
    assert n == embed + L * layer + 2 * d + head == 428_225_600
    used = sum(p.numel() for p in enc.vision_model.embeddings.parameters()) + \
        sum(p.numel() for p in enc.layers[:26].parameters())
    assert used == embed + 26 * layer
    print(f'SigLIP2-so400m-patch14-384 vision tower: {n:,} params, {used:,} run up to layer 26')
    with torch.device('meta'), torch.no_grad():
        out = enc(torch.empty(2, 3, 384, 384))
    assert out.shape == (2, 729, 1152) and out.dtype == torch.bfloat16
