# X-SAM stage 3 at a middle size, for benchmarking a training step on the CPU
# (tools/analysis_tools/benchmark_train_step.py): the tiny_mixed.py recipe and synthetic data with wider and
# deeper modules (LLM 512 wide x 4 layers, SigLIP 256 x 4 at 64 px, SAM 256 x 6 at 128 px, decoder 128 wide
# with 50 queries). Not a trained model: weights are random (no stage-1/2 checkpoints at this size).
#   python tools/analysis_tools/benchmark_train_step.py configs/xsam/benchmarks/mid_mixed.py --iters 6
_base_ = ['../tiny_mixed.py']
llm_dims = 512
vision_dims = 256
sam_dims = 256
decoder_dims = 128

model = dict(
    init_cfg=None,
    data_preprocessor=dict(encoder_size=64),
    llm=dict(config=dict(hidden_size=llm_dims, num_hidden_layers=4, num_attention_heads=8,
                         intermediate_size=3 * llm_dims)),
    vision_encoder=dict(config=dict(hidden_size=vision_dims, num_hidden_layers=4, num_attention_heads=4,
                                    intermediate_size=4 * vision_dims, image_size=64, patch_size=8)),
    vision_projector=dict(in_channels=vision_dims, out_channels=llm_dims),
    seg_projector=dict(in_channels=sam_dims, out_channels=llm_dims),
    llm_projector=dict(in_channels=llm_dims, out_channels=decoder_dims),
    backbone=dict(config=dict(hidden_size=sam_dims, num_attention_heads=8, mlp_dim=4 * sam_dims)),
    neck=dict(in_channels=sam_dims, hidden_channels=64, out_channels=[64, 128, 256]),
    panoptic_head=dict(
        in_channels=[64, 128, 256],
        feat_channels=decoder_dims,
        out_channels=decoder_dims,
        num_queries=50,
        pixel_decoder=dict(
            encoder=dict(
                num_layers=3,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8),
                    ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=4 * decoder_dims))),
            positional_encoding=dict(num_feats=decoder_dims // 2)),
        positional_encoding=dict(num_feats=decoder_dims // 2),
        transformer_decoder=dict(
            num_layers=6,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8),
                cross_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8),
                ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=8 * decoder_dims)))))
