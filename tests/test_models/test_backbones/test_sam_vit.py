import pytest
import torch
from transformers import SamConfig, SamModel, SamVisionConfig, SamVisionModel

from mmxsam.models.backbones import SAMViTBackbone

TINY = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=64,
            patch_size=8, window_size=3, global_attn_indexes=[1, 3], output_channels=16,
            mlp_dim=64)
# window 3 on an 8x8 grid also exercises the window padding path
SAM_L = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
             global_attn_indexes=[5, 11, 17, 23], window_size=14, image_size=1024,
             patch_size=16, mlp_dim=4096, output_channels=256)


def _random_hf(seed: int = 0, attn: str = 'sdpa') -> SamVisionModel:
    """Tiny HF vision model with all weights random (HF zero-inits pos/rel-pos)."""
    torch.manual_seed(seed)
    model = SamVisionModel._from_config(SamVisionConfig(**TINY), attn_implementation=attn)
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


def _hf_states(model: SamVisionModel, x: torch.Tensor):
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
    return [h.permute(0, 3, 1, 2) for h in out.hidden_states], out.last_hidden_state


@pytest.mark.parametrize('attn', ['eager', 'sdpa'])
def test_matches_transformers(attn):
    hf = _random_hf(attn=attn)
    bb = SAMViTBackbone(config=TINY, out_indices=(0, 2, 4), with_neck=True,
                        attn_implementation=attn).eval()
    assert bb.encoder.config._attn_implementation == attn
    assert set(bb.state_dict()) == {f'encoder.{k[len("vision_encoder."):]}'
                                    for k in hf.state_dict()}
    bb.encoder.load_state_dict(hf.vision_encoder.state_dict())
    x = torch.randn(2, 3, 64, 64)
    states, neck = _hf_states(hf, x)
    with torch.no_grad():
        outs = bb(x)
    assert len(outs) == 4
    for out, i in zip(outs, (0, 2, 4)):
        assert out.shape == (2, 32, 8, 8)
        torch.testing.assert_close(out, states[i], atol=1e-6, rtol=0)
    torch.testing.assert_close(outs[-1], neck, atol=1e-6, rtol=0)
    # negative indices, order kept, no neck by default
    bb.out_indices = SAMViTBackbone(config=TINY, out_indices=(-2, 1, -5)).out_indices
    bb.with_neck = False
    with torch.no_grad():
        outs = bb(x)
    assert len(outs) == 3
    for out, i in zip(outs, (3, 1, 0)):
        torch.testing.assert_close(out, states[i], atol=1e-6, rtol=0)


@pytest.mark.parametrize('full', [False, True])
def test_from_pretrained(tmp_path, full):
    hf = _random_hf(1, attn='eager')
    if full:  # full SamModel checkpoint: config.json has model_type 'sam'
        sam = SamModel(SamConfig(vision_config=SamVisionConfig(**TINY).to_dict()))
        sam.vision_encoder.load_state_dict(hf.vision_encoder.state_dict())
        sam.save_pretrained(tmp_path)
    else:
        hf.save_pretrained(tmp_path)
    bb = SAMViTBackbone(name_or_path=str(tmp_path), out_indices=(1, 4),
                        attn_implementation='eager')
    assert bb.config.hidden_size == 32 and bb.num_layers == 4
    assert bb.encoder.config._attn_implementation == 'eager'
    ref = hf.vision_encoder.state_dict()
    # a transformers version whose init_weights re-initialises must not be reached
    bb.encoder.init_weights = lambda: [p.data.zero_() for p in bb.encoder.parameters()]
    bb.init_weights()
    for k, v in bb.encoder.state_dict().items():
        assert torch.equal(v, ref[k]), k
    x = torch.randn(1, 3, 64, 64)
    states, _ = _hf_states(hf, x)
    with torch.no_grad():
        outs = bb.eval()(x)
    torch.testing.assert_close(outs[0], states[1], atol=1e-6, rtol=0)
    torch.testing.assert_close(outs[1], states[4], atol=1e-6, rtol=0)


def test_registry_and_dtype(tmp_path):
    import mmxsam  # noqa: F401
    from mmdet.registry import MODELS
    _random_hf(2).save_pretrained(tmp_path)
    bb = MODELS.build(dict(type='SAMViTBackbone', name_or_path=str(tmp_path),
                           out_indices=(-1, ), torch_dtype='bfloat16'))
    assert isinstance(bb, SAMViTBackbone)
    assert all(p.dtype == torch.bfloat16 for p in bb.parameters())
    out, = bb(torch.randn(1, 3, 64, 64))  # float32 input is cast to the weights' dtype
    assert out.dtype == torch.bfloat16 and out.shape == (1, 32, 8, 8)
    bb = MODELS.build(dict(type='SAMViTBackbone', config=SamVisionConfig(**TINY)))
    assert bb.out_indices == (4, )


def test_freezing():
    bb = SAMViTBackbone(config=TINY, frozen_stages=2, with_neck=True)
    bb.train()
    frozen = ['encoder.pos_embed', 'encoder.patch_embed.', 'encoder.layers.0.',
              'encoder.layers.1.']
    for name, p in bb.named_parameters():
        assert p.requires_grad != any(name.startswith(f) for f in frozen), name
    assert not bb.encoder.patch_embed.training and not bb.encoder.layers[1].training
    assert bb.encoder.layers[2].training and bb.encoder.neck.training

    bb = SAMViTBackbone(config=TINY, frozen=True, with_neck=True)
    bb.train()
    assert not any(p.requires_grad for p in bb.parameters())
    assert not any(m.training for m in bb.encoder.modules())
    assert bb.training

    bb = SAMViTBackbone(config=TINY, with_neck=True)
    assert all(p.requires_grad for p in bb.parameters())
    bb = SAMViTBackbone(config=TINY)  # the neck never runs, so it is frozen
    assert not any(p.requires_grad for p in bb.encoder.neck.parameters())
    assert all(p.requires_grad for n, p in bb.named_parameters() if not n.startswith('encoder.neck'))


def test_checkpointing_same_grads(monkeypatch):
    import mmxsam.models.backbones.sam_vit as sam_vit
    calls = []

    def counting_checkpoint(*args, **kwargs):
        calls.append(kwargs)
        return torch.utils.checkpoint.checkpoint(*args, **kwargs)

    monkeypatch.setattr(sam_vit, 'checkpoint', counting_checkpoint)
    hf = _random_hf(3)
    grads = []
    for with_cp in (False, True):
        bb = SAMViTBackbone(config=TINY, out_indices=(2, 4), with_cp=with_cp).train()
        bb.encoder.load_state_dict(hf.vision_encoder.state_dict())
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        loss = sum(o.square().mean() for o in bb(x))
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in bb.named_parameters()
                      if p.grad is not None})
    assert calls == [dict(use_reentrant=False)] * 4  # one per block, only with with_cp
    # the neck is skipped without with_neck, so it gets no gradient
    assert not any(n.startswith('encoder.neck') for n in grads[0])
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-5)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match='exactly one'):
        SAMViTBackbone()
    with pytest.raises(ValueError, match='exactly one'):
        SAMViTBackbone(name_or_path='x', config=TINY)
    with pytest.raises(ValueError, match=r'\[-5, 4\]'):
        SAMViTBackbone(config=TINY, out_indices=(5, ))
    with pytest.raises(ValueError, match=r'\[-5, 4\]'):
        SAMViTBackbone(config=TINY, out_indices=(-6, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        SAMViTBackbone(config=TINY, frozen_stages=5)
    with pytest.raises(ValueError, match='attn_implementation'):
        SAMViTBackbone(config=TINY, attn_implementation='flash')
    bb = SAMViTBackbone(config=TINY)
    for bad in (torch.randn(1, 4, 64, 64), torch.randn(3, 64, 64), torch.randn(1, 3, 96, 96)):
        with pytest.raises(ValueError, match=r'\(B, 3, 64, 64\)'):
            bb(bad)


def _expected_vit_params(c: dict, in_ch: int = 3) -> int:
    d, p, L, m, o = (c['hidden_size'], c['patch_size'], c['num_hidden_layers'], c['mlp_dim'],
                     c['output_channels'])
    grid, head = c['image_size'] // p, d // c['num_attention_heads']
    patch_embed = in_ch * p * p * d + d
    pos_embed = grid * grid * d
    block = (2 * d  # layer_norm1
             + d * 3 * d + 3 * d  # qkv
             + d * d + d  # proj
             + 2 * d  # layer_norm2
             + d * m + m + m * d + d)  # mlp
    rel_pos = sum(2 * (2 * (grid if i in c['global_attn_indexes'] else c['window_size']) - 1)
                  * head for i in range(L))
    neck = d * o + 2 * o + o * o * 9 + 2 * o
    return patch_embed + pos_embed + L * block + rel_pos + neck


def test_sam_large_on_meta():
    with torch.device('meta'):
        bb = SAMViTBackbone(config=SAM_L, out_indices=(12, 18, 24, -2))
    n = sum(p.numel() for p in bb.parameters())
    assert n == _expected_vit_params(SAM_L) == 308_278_272
    n_blocks = sum(p.numel() for p in bb.encoder.layers.parameters())
    print(f'SAM-L image encoder: {n:,} params ({n_blocks:,} in the 24 blocks)')
    with torch.device('meta'), torch.no_grad():
        outs = bb(torch.empty(2, 3, 1024, 1024))
    assert [tuple(o.shape) for o in outs] == [(2, 1024, 64, 64)] * 4


def test_modules_that_never_run_are_frozen():
    """Without the neck, and with outputs up to block 2 of 4, the neck and blocks 3-4 get no gradient."""
    from mmdet.registry import MODELS
    cfg = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=64, patch_size=8,
               window_size=3, global_attn_indexes=[1, 3], output_channels=16, mlp_dim=64)
    bb = MODELS.build(dict(type='SAMViTBackbone', config=cfg, out_indices=(1, 2)))
    frozen = {n.split('.')[1] + ('.' + n.split('.')[2] if n.startswith('encoder.layers') else '')
              for n, p in bb.named_parameters() if not p.requires_grad}
    assert frozen == {'neck', 'layers.2', 'layers.3'}
    out = bb(torch.randn(1, 3, 64, 64))
    sum(o.sum() for o in out).backward()
    assert all(p.grad is not None for p in bb.parameters() if p.requires_grad)
    with_neck = MODELS.build(dict(type='SAMViTBackbone', config=cfg, out_indices=(1, 2), with_neck=True))
    assert all(p.requires_grad for p in with_neck.parameters())
