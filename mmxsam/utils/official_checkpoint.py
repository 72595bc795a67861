"""Convert released X-SAM checkpoints (official key layout) to mmxsam's module names and back.

The released files (``hao9610/X-SAM``: ``s1_seg_finetune``, ``s2_align_pretrain``, ``s3_mixed_finetune``)
are flat state dicts of the official ``XSamModel`` (reference §6). Its segmentation decoder is a vendored
copy of HF transformers' Mask2Former (``Mask2FormerPixelDecoder`` as ``segmentor.pixel_decoder`` and
``Mask2FormerTransformerModule`` as ``segmentor.decoder``); mmxsam uses mmdet's
``MSDeformAttnPixelDecoder`` (via :class:`~mmxsam.models.layers.XSAMPixelDecoder`) and
``Mask2FormerTransformerDecoder`` inside ``panoptic_head``. The conversion is driven by the data tables
below:

* :data:`RENAME_RULES` -- one official key <-> one mmxsam key. Templates use ``{name}`` placeholders:
  ``{rest}`` matches any suffix, ``{p}`` matches ``weight`` or ``bias``, any other name an integer index.
  An optional affine map ``{name: (a, b)}`` gives ``mmxsam_index = a * official_index + b`` (e.g. HF's
  ``adapter_1`` is mmdet's ``lateral_convs.0``; HF's MLP block ``mask_embedder.1.0`` is mmdet's
  ``mask_embed.2``, the ReLUs taking the odd ``nn.Sequential`` slots).
* :data:`FUSED_RULES` -- several official keys <-> one mmxsam key, concatenated along dim 0 (HF's
  ``Mask2FormerAttention`` has separate ``q_proj``/``k_proj``/``v_proj``; mmdet's self-attention is an
  ``nn.MultiheadAttention`` whose packed ``in_proj_weight`` is ``cat([Wq, Wk, Wv])``).
* :data:`TRANSFORMS` -- tensor layout changes of one-to-one keys (``segmentor.logit_scale`` is a
  ``[1]`` parameter officially, a 0-d one in mmxsam).

Layouts that need no tensor change (checked by instantiating the HF modules in the tests):
HF's multi-scale deformable attention (``sampling_offsets``/``attention_weights``/``value_proj``/
``output_proj``, offsets viewed as ``(heads, levels, points, 2)``) has the same parameters and layout
as mmcv's ``MultiScaleDeformableAttention``; HF's decoder cross-attention is already an
``nn.MultiheadAttention``; HF's ``input_projections.i`` and mmdet's ``input_convs.i`` both start with the
coarsest level, as do the level embeddings. Post-norm layer order: mmdet ``norms.0/1/2`` of a decoder
layer follow cross-attention / self-attention / FFN (HF ``cross_attn_layer_norm`` /
``self_attn_layer_norm`` / ``final_layer_norm``); in a pixel-decoder encoder layer ``norms.0/1`` follow
attention / FFN (HF ``self_attn_layer_norm`` / ``final_layer_norm``).

Every input key is either converted or listed in ``report['unmatched']`` (with a reason in
``report['reasons']``); nothing is dropped silently.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import torch

__all__ = ['official_to_mmxsam', 'mmxsam_to_official', 'detect_official_stage', 'RENAME_RULES', 'FUSED_RULES',
           'TRANSFORMS', 'STAGE_LAYOUTS']

_PD_O, _PD_M = 'segmentor.pixel_decoder.', 'panoptic_head.pixel_decoder.'
_DE_O, _DE_M = 'segmentor.decoder.', 'panoptic_head.'
_PDL_O, _PDL_M = _PD_O + 'encoder.layers.{n}.', _PD_M + 'encoder.layers.{n}.'
_DEL_O, _DEL_M = _DE_O + 'decoder.layers.{n}.', _DE_M + 'transformer_decoder.layers.{n}.'

# (official template, mmxsam template, affine index maps {name: (a, b)}: mmxsam = a * official + b)
RENAME_RULES: List[Tuple[str, str, Dict[str, Tuple[int, int]]]] = [
    # LLM (HF causal LM: official ``llm`` is the HF model; mmxsam wraps it in ``llm.model``)
    ('llm.{rest}', 'llm.model.{rest}', {}),
    # image encoder (HF SigLIP vision model, same inner names)
    ('visual_encoder.{rest}', 'vision_encoder.{rest}', {}),
    # projectors: Linear / GELU / Linear (indices 0 and 2)
    ('visual_projector.model.{i}.{p}', 'vision_projector.model.{i}.{p}', {}),
    ('seg_projector.model.{i}.{p}', 'seg_projector.model.{i}.{p}', {}),
    ('llm_projector.model.{i}.{p}', 'llm_projector.model.{i}.{p}', {}),
    # segmentation connector: branch i, (conv, LN2d, conv, LN2d, conv, LN2d) index j
    ('seg_connector.model.{i}.model.{j}.{p}', 'neck.branches.{i}.{j}.{p}', {}),
    # SAM encoder (HF SamVisionEncoder, same inner names)
    ('segmentor.encoder.{rest}', 'backbone.encoder.{rest}', {}),
    # pixel decoder: HF Mask2FormerPixelDecoder <-> mmdet MSDeformAttnPixelDecoder
    (_PD_O + 'input_projections.{i}.0.{p}', _PD_M + 'input_convs.{i}.conv.{p}', {}),
    (_PD_O + 'input_projections.{i}.1.{p}', _PD_M + 'input_convs.{i}.gn.{p}', {}),
    (_PD_O + 'level_embed', _PD_M + 'level_encoding.weight', {}),
    (_PDL_O + 'self_attn.sampling_offsets.{p}', _PDL_M + 'self_attn.sampling_offsets.{p}', {}),
    (_PDL_O + 'self_attn.attention_weights.{p}', _PDL_M + 'self_attn.attention_weights.{p}', {}),
    (_PDL_O + 'self_attn.value_proj.{p}', _PDL_M + 'self_attn.value_proj.{p}', {}),
    (_PDL_O + 'self_attn.output_proj.{p}', _PDL_M + 'self_attn.output_proj.{p}', {}),
    (_PDL_O + 'self_attn_layer_norm.{p}', _PDL_M + 'norms.0.{p}', {}),
    (_PDL_O + 'fc1.{p}', _PDL_M + 'ffn.layers.0.0.{p}', {}),
    (_PDL_O + 'fc2.{p}', _PDL_M + 'ffn.layers.1.{p}', {}),
    (_PDL_O + 'final_layer_norm.{p}', _PDL_M + 'norms.1.{p}', {}),
    # FPN level(s): HF ``adapter_{k+1}``/``layer_{k+1}`` act on input map k (finest first), as mmdet's
    # ``lateral_convs[k]``/``output_convs[k]`` do in forward
    (_PD_O + 'adapter_{k}.0.weight', _PD_M + 'lateral_convs.{k}.conv.weight', {'k': (1, -1)}),
    (_PD_O + 'adapter_{k}.1.{p}', _PD_M + 'lateral_convs.{k}.gn.{p}', {'k': (1, -1)}),
    (_PD_O + 'layer_{k}.0.weight', _PD_M + 'output_convs.{k}.conv.weight', {'k': (1, -1)}),
    (_PD_O + 'layer_{k}.1.{p}', _PD_M + 'output_convs.{k}.gn.{p}', {'k': (1, -1)}),
    (_PD_O + 'mask_projection.{p}', _PD_M + 'mask_feature.{p}', {}),
    # transformer decoder: HF Mask2FormerTransformerModule <-> mmdet Mask2FormerHead pieces
    (_DE_O + 'queries_embedder.weight', _DE_M + 'query_embed.weight', {}),
    (_DE_O + 'queries_features.weight', _DE_M + 'query_feat.weight', {}),
    (_DE_O + 'level_embed.weight', _DE_M + 'level_embed.weight', {}),
    (_DEL_O + 'self_attn.out_proj.{p}', _DEL_M + 'self_attn.attn.out_proj.{p}', {}),
    (_DEL_O + 'cross_attn.in_proj_{p}', _DEL_M + 'cross_attn.attn.in_proj_{p}', {}),
    (_DEL_O + 'cross_attn.out_proj.{p}', _DEL_M + 'cross_attn.attn.out_proj.{p}', {}),
    (_DEL_O + 'cross_attn_layer_norm.{p}', _DEL_M + 'norms.0.{p}', {}),
    (_DEL_O + 'self_attn_layer_norm.{p}', _DEL_M + 'norms.1.{p}', {}),
    (_DEL_O + 'final_layer_norm.{p}', _DEL_M + 'norms.2.{p}', {}),
    (_DEL_O + 'fc1.{p}', _DEL_M + 'ffn.layers.0.0.{p}', {}),
    (_DEL_O + 'fc2.{p}', _DEL_M + 'ffn.layers.1.{p}', {}),
    (_DE_O + 'decoder.layernorm.{p}', _DE_M + 'transformer_decoder.post_norm.{p}', {}),
    (_DE_O + 'decoder.mask_predictor.mask_embedder.{m}.0.{p}', _DE_M + 'mask_embed.{m}.{p}', {'m': (2, 0)}),
    # class heads
    ('segmentor.logit_scale', 'panoptic_head.logit_scale', {}),  # stage 3 (open_cls)
    ('bg_embeds.weight', 'panoptic_head.bg_embed.weight', {}),  # stage 3 latent background
    ('segmentor.class_predictor.{p}', 'panoptic_head.cls_embed.{p}', {}),  # stage 1 (close_cls)
]

# (official templates, concatenated along dim 0 in this order, mmxsam template)
FUSED_RULES: List[Tuple[Tuple[str, ...], str]] = [
    ((_DEL_O + 'self_attn.q_proj.{p}', _DEL_O + 'self_attn.k_proj.{p}', _DEL_O + 'self_attn.v_proj.{p}'),
     _DEL_M + 'self_attn.attn.in_proj_{p}'),
]

# official key -> (to mmxsam, to official) tensor transforms
TRANSFORMS = {
    'segmentor.logit_scale': (lambda t: t.reshape(()), lambda t: t.reshape(1)),
}

# the official top-level groups each released stage holds (reference §6)
STAGE_LAYOUTS: Dict[int, Tuple[str, ...]] = {
    1: ('segmentor.encoder.', 'segmentor.pixel_decoder.', 'segmentor.decoder.', 'segmentor.class_predictor.',
        'seg_connector.'),
    2: ('visual_projector.', 'seg_projector.'),
    3: ('llm.', 'visual_encoder.', 'visual_projector.', 'seg_projector.', 'llm_projector.', 'seg_connector.',
        'segmentor.encoder.', 'segmentor.pixel_decoder.', 'segmentor.decoder.', 'segmentor.logit_scale',
        'bg_embeds.'),
}


class _Template:
    """A key template with ``{name}`` placeholders, matched in full."""

    def __init__(self, template: str, affine: Optional[Dict[str, Tuple[int, int]]] = None, side: str = 'o'):
        self.template = template
        self.affine = affine or {}
        self.side = side  # 'o' official (indices as written) or 'm' mmxsam (affine applied)
        self.names = re.findall(r'\{(\w+)\}', template)
        parts, pos = [], 0
        for m in re.finditer(r'\{(\w+)\}', template):
            parts.append(re.escape(template[pos:m.start()]))
            name = m.group(1)
            pat = r'.+' if name == 'rest' else r'weight|bias' if name == 'p' else r'\d+'
            parts.append(f'(?P<{name}>{pat})')
            pos = m.end()
        parts.append(re.escape(template[pos:]))
        self.regex = re.compile(''.join(parts) + r'\Z')

    def match(self, key: str) -> Optional[Dict[str, object]]:
        """Return the placeholder values in *official* numbering, or None."""
        m = self.regex.match(key)
        if m is None:
            return None
        values: Dict[str, object] = {}
        for name, val in m.groupdict().items():
            if name in ('rest', 'p'):
                values[name] = val
                continue
            if val != str(int(val)):  # no leading zeros: the index must format back identically
                return None
            val = int(val)
            if self.side == 'm' and name in self.affine:
                a, b = self.affine[name]
                if (val - b) % a:
                    return None
                val = (val - b) // a
            if val < 0 or (name in self.affine and self.affine[name][0] * val + self.affine[name][1] < 0):
                return None  # e.g. HF ``adapter_0`` (HF counts from 1)
            values[name] = val
        return values

    def format(self, values: Dict[str, object]) -> str:
        out = {}
        for name in self.names:
            val = values[name]
            if self.side == 'm' and name in self.affine:
                a, b = self.affine[name]
                val = a * val + b
            out[name] = val
        return self.template.format(**out)


def _compile():
    renames = [(_Template(o, aff, 'o'), _Template(m, aff, 'm'), o) for o, m, aff in RENAME_RULES]
    fused = [([_Template(o, None, 'o') for o in os_], _Template(m, None, 'm')) for os_, m in FUSED_RULES]
    return renames, fused


_RENAMES, _FUSED = _compile()


def detect_official_stage(keys: Sequence[str]) -> Optional[int]:
    """Guess the stage of an official state dict from its groups: 3 (has the LLM), 1 (linear class head),
    2 (projectors only); None for anything else."""
    keys = list(keys)
    if any(k.startswith('llm.') for k in keys):
        return 3
    if any(k.startswith('segmentor.class_predictor.') for k in keys):
        return 1
    if keys and all(k.startswith(STAGE_LAYOUTS[2]) for k in keys):
        return 2
    return None


def _new_report(num_input: int, direction: str) -> dict:
    return dict(unmatched=[], reasons={}, converted=0, num_input=num_input, num_output=0, direction=direction)


def _unmatched(report: dict, key: str, reason: str) -> None:
    report['unmatched'].append(key)
    report['reasons'][key] = reason


def _put(out: dict, key: str, value, source: str) -> None:
    if key in out:
        raise KeyError(f'two input keys map to {key!r} (the second is {source!r})')
    out[key] = value


def official_to_mmxsam(state_dict: Dict[str, torch.Tensor], stage: Optional[int] = None
                       ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """Official X-SAM key names -> mmxsam ones.

    Args:
        state_dict: a flat official state dict (e.g. a released ``pytorch_model.bin``).
        stage: 1, 2 or 3 to only accept that stage's groups (:data:`STAGE_LAYOUTS`; other keys are reported,
            e.g. the stage-1 ``segmentor.class_predictor`` when converting for a stage-3 model), None to accept
            every group (the detected stage is reported).

    Returns:
        ``(new_state_dict, report)``; ``report['unmatched']`` lists the input keys that were not converted
        (``report['reasons'][key]`` says why), ``report['converted']`` counts the converted input keys.
    """
    if stage not in (None, 1, 2, 3):
        raise ValueError(f'stage must be 1, 2, 3 or None, got {stage!r}')
    report = _new_report(len(state_dict), 'official->mmxsam')
    report['stage'] = stage
    report['detected_stage'] = detect_official_stage(state_dict.keys())
    out: Dict[str, torch.Tensor] = {}
    fused_groups: Dict[Tuple[int, str], Dict[int, Tuple[str, torch.Tensor]]] = {}
    for key, value in state_dict.items():
        if stage is not None and not key.startswith(STAGE_LAYOUTS[stage]):
            _unmatched(report, key, f'not part of the stage-{stage} layout {STAGE_LAYOUTS[stage]}')
            continue
        done = False
        for o_tpl, m_tpl, name in _RENAMES:
            values = o_tpl.match(key)
            if values is None:
                continue
            fwd = TRANSFORMS.get(name, (None, None))[0]
            _put(out, m_tpl.format(values), fwd(value) if fwd else value, key)
            report['converted'] += 1
            done = True
            break
        if done:
            continue
        for rule_idx, (o_tpls, m_tpl) in enumerate(_FUSED):
            for part, o_tpl in enumerate(o_tpls):
                values = o_tpl.match(key)
                if values is not None:
                    target = m_tpl.format(values)
                    fused_groups.setdefault((rule_idx, target), {})[part] = (key, value)
                    done = True
                    break
            if done:
                break
        if not done:
            _unmatched(report, key, 'no rule for this official key')
    for (rule_idx, target), parts in fused_groups.items():
        n = len(_FUSED[rule_idx][0])
        if sorted(parts) != list(range(n)):
            for _, (key, _v) in sorted(parts.items()):
                _unmatched(report, key, f'incomplete group for {target!r}: has parts {sorted(parts)} of {n}')
            continue
        tensors = [parts[i][1] for i in range(n)]
        _put(out, target, torch.cat(tensors, dim=0), parts[0][0])
        report['converted'] += n
    report['num_output'] = len(out)
    return out, report


def mmxsam_to_official(state_dict: Dict[str, torch.Tensor], stage: Optional[int] = None
                       ) -> Tuple[Dict[str, torch.Tensor], dict]:
    """mmxsam key names -> official X-SAM ones (inverse of :func:`official_to_mmxsam`).

    Args:
        state_dict: an mmxsam ``XSAM``/``XSAMSegmentor`` state dict (``model.state_dict()`` or the
            ``state_dict`` of an mmengine checkpoint).
        stage: 1, 2 or 3 to keep only the official groups of that released stage (the rest is reported in
            ``unmatched``); None keeps everything.

    Returns:
        ``(new_state_dict, report)`` as in :func:`official_to_mmxsam`.
    """
    if stage not in (None, 1, 2, 3):
        raise ValueError(f'stage must be 1, 2, 3 or None, got {stage!r}')
    report = _new_report(len(state_dict), 'mmxsam->official')
    report['stage'] = stage
    out: Dict[str, torch.Tensor] = {}

    def emit(official_key, tensor, source):
        if stage is not None and not official_key.startswith(STAGE_LAYOUTS[stage]):
            _unmatched(report, source, f'maps to {official_key!r}, not part of the stage-{stage} layout')
            return
        _put(out, official_key, tensor, source)
        report['converted'] += 1

    for key, value in state_dict.items():
        done = False
        for o_tpl, m_tpl, name in _RENAMES:
            values = m_tpl.match(key)
            if values is None:
                continue
            bwd = TRANSFORMS.get(name, (None, None))[1]
            emit(o_tpl.format(values), bwd(value) if bwd else value, key)
            done = True
            break
        if done:
            continue
        for o_tpls, m_tpl in _FUSED:
            values = m_tpl.match(key)
            if values is None:
                continue
            n = len(o_tpls)
            if value.shape[0] % n:
                _unmatched(report, key, f'dim 0 ({value.shape[0]}) does not split into {n} parts')
            else:
                chunks = value.chunk(n, dim=0)
                official = [o.format(values) for o in o_tpls]
                if stage is not None and not official[0].startswith(STAGE_LAYOUTS[stage]):
                    _unmatched(report, key, f'maps to {official[0]!r}..., not part of the stage-{stage} layout')
                else:
                    for off_key, chunk in zip(official, chunks):
                        _put(out, off_key, chunk.clone(), key)
                    report['converted'] += 1
            done = True
            break
        if not done:
            _unmatched(report, key, 'no rule for this mmxsam key')
    report['num_output'] = len(out)
    return out, report


def format_report(report: dict) -> str:
    """A short human-readable summary of a conversion report."""
    lines = [f"{report['direction']}: {report['num_input']} input keys, {report['converted']} converted, "
             f"{report['num_output']} output keys, {len(report['unmatched'])} unmatched"]
    if report.get('stage') is not None or report.get('detected_stage') is not None:
        lines.append(f"stage: {report.get('stage')} (detected: {report.get('detected_stage')})")
    for key in report['unmatched']:
        lines.append(f"  unmatched: {key} ({report['reasons'][key]})")
    return '\n'.join(lines)
