# The X-SAM model at tiny size: the same modules as xsam_phi3_siglip2_sam_l.py with small numbers, on top
# of the tiny stage-1 segmentor (xsam_segmentor_tiny.py), so a tiny stage-1 checkpoint loads into it.
# LLM: a 2-layer Phi-3 (64 wide) with the tiny tokenizer (tools/misc/build_tiny_tokenizer.py); image
# encoder: a 2-layer SigLIP (32 wide, 32 px, patch 8: 16 tokens); SAM: 128 px, patch 8 (16x16 grid) ->
# 64 SAM tokens. Every HF model is built from a config (no hub here).
_base_ = ['./xsam_segmentor_tiny.py']
llm_dims = 64
vision_dims = 32
sam_dims = 96
decoder_dims = 64

model = dict(
    type='XSAM',
    data_preprocessor=dict(
        _delete_=True, type='XSAMDataPreprocessor', sam_size=128, encoder_size=32, pad_to_square=False,
        test_pad_to_square=True),
    llm=dict(
        type='HFCausalLM',
        config=dict(model_type='phi3', hidden_size=llm_dims, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=4 * llm_dims, vocab_size=1024, max_position_embeddings=1024,
                    bos_token_id=1, eos_token_id=2, pad_token_id=2),
        tokenizer=dict(name_or_path='data/shapes/tokenizer'),
        chat_template='phi3',
        attn_implementation='eager'),
    vision_encoder=dict(
        type='HFVisionEncoder',
        config=dict(model_type='siglip_vision_model', hidden_size=vision_dims, num_hidden_layers=2,
                    num_attention_heads=2, intermediate_size=2 * vision_dims, image_size=32, patch_size=8),
        select_layer=-2, frozen=False),
    vision_projector=dict(type='XSAMMLPProjector', in_channels=vision_dims, out_channels=llm_dims),
    seg_projector=dict(
        type='XSAMPixelShuffleProjector', in_channels=sam_dims, out_channels=llm_dims, scale=0.5,
        channel_order='xsam'),
    region_sampler=dict(type='XSAMRegionSampler', num_points=32, pool='max'),
    llm_projector=dict(type='XSAMMLPProjector', in_channels=llm_dims, out_channels=decoder_dims),
    # blocks 2/4/6 feed the connector, block 5 (index -2) the seg projector
    backbone=dict(out_indices=(2, 4, 6, 5)),
    neck_in_indices=(0, 1, 2),
    seg_projector_in_index=3,
    panoptic_head=dict(cls_mode='conditioned', bg_cls_weight=0.1, loss_cls=dict(class_weight=None)),
    llm_loss_weight=1.0,
    seg_loss_weight=1.0,
    # referring items classify against the whole batch; VGD slots take prompts from any image of the batch
    train_cfg=dict(contrastive=True, vgd_prompt_source='batch'),
    test_cfg=dict(object_mask_thr=0.0, mode='teacher_forcing', generation_tasks=('imgconv', ),
                  max_new_tokens=64, region_seed=0))
