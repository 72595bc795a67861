# The X-SAM model (stage 3, Fig. 2; reference §1): Phi-3-mini + SigLIP2-so400m + SAM-L + dual projectors
# + the stage-1 segmentation decoder with LLM-conditioned classes. Stage 2 drops the decoder
# (configs/xsam/align_pretrain.py). The decoder definition is the stage-1 one, inherited.
_base_ = ['./xsam_segmentor_sam_l.py']
llm_name = 'microsoft/Phi-3-mini-4k-instruct'
vision_name = 'google/siglip2-so400m-patch14-384'
llm_dims = 3072  # Phi-3-mini hidden size
vision_dims = 1152  # SigLIP2-so400m width
sam_dims = 1024  # SAM-L width
decoder_dims = 256

model = dict(
    type='XSAM',
    data_preprocessor=dict(
        _delete_=True,
        type='XSAMDataPreprocessor',
        sam_size=1024,  # SAM input: ImageNet mean/std, zero padding bottom/right to 1024x1024
        encoder_size=384,  # SigLIP2 input: 384x384, mean/std 0.5
        pad_to_square=False,  # stage 3 trains on the plain resize ...
        test_pad_to_square=True),  # ... and evaluates padded to a square, as the reference
    llm=dict(
        type='HFCausalLM',
        name_or_path=llm_name,
        tokenizer=dict(name_or_path=llm_name),
        chat_template='phi3',
        attn_implementation='flash_attention_2_or_sdpa',
        gradient_checkpointing=True),
    vision_encoder=dict(
        type='HFVisionEncoder', name_or_path=vision_name, select_layer=-2, frozen=False, with_cp=True),
    vision_projector=dict(type='XSAMMLPProjector', in_channels=vision_dims, out_channels=llm_dims),
    # SAM block 23 (index -2 of SAM-L's 24 blocks) -> pixel shuffle 0.5 -> 1024 tokens
    seg_projector=dict(
        type='XSAMPixelShuffleProjector', in_channels=sam_dims, out_channels=llm_dims, scale=0.5,
        channel_order='xsam'),
    region_sampler=dict(type='XSAMRegionSampler', num_points=256, pool='max'),
    llm_projector=dict(type='XSAMMLPProjector', in_channels=llm_dims, out_channels=decoder_dims),
    # blocks 12/18/24 feed the connector, block 23 the seg projector
    backbone=dict(out_indices=(12, 18, 24, 23)),
    neck_in_indices=(0, 1, 2),
    seg_projector_in_index=3,
    panoptic_head=dict(cls_mode='conditioned', bg_cls_weight=0.1, loss_cls=dict(class_weight=None)),
    llm_loss_weight=1.0,
    seg_loss_weight=1.0,
    # referring items classify against the whole batch; VGD slots take prompts from any image of the batch
    train_cfg=dict(contrastive=True, vgd_prompt_source='batch'),
    # stage-3 evaluation: threshold 0.0 (reference §5); teacher forcing except chat / GCG
    test_cfg=dict(object_mask_thr=0.0, mode='teacher_forcing', generation_tasks=('imgconv', ),
                  max_new_tokens=512, region_seed=0))
