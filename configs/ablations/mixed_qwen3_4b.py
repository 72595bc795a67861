# LLM ablation: Qwen3-4B-Instruct-2507 (hidden 2560, ChatML template) instead of Phi-3-mini. The projectors
# follow the LLM width, and every data pipeline tokenises with Qwen's tokenizer and template; the text budget
# is the official config's int(40960 - 27.43**2 - 1024) = 39183 tokens.
#   tools/dist_train.sh configs/ablations/mixed_qwen3_4b.py 16
# Needs its own stage 2 (configs/xsam/align_pretrain.py with the same model/tokenizer changes and
# --work-dir work_dirs/align_pretrain_qwen3_4b): the Phi-3 run's projectors are 3072 wide.
_base_ = ['../xsam/mixed.py']
llm_name = 'Qwen/Qwen3-4B-Instruct-2507'
llm_dims = 2560
model = dict(
    llm=dict(name_or_path=llm_name, tokenizer=dict(name_or_path=llm_name), chat_template='qwen'),
    vision_projector=dict(out_channels=llm_dims),
    seg_projector=dict(out_channels=llm_dims),
    llm_projector=dict(in_channels=llm_dims),
    init_cfg=[dict(type='Pretrained', checkpoint=_base_.stage1_checkpoint),
              dict(type='Pretrained', checkpoint='work_dirs/align_pretrain_qwen3_4b/epoch_1.pth')])
# the last step of every source's pipeline is the shared PackXSAMInputs: swap its tokenizer and template
train_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=d.pipeline[:-1] + [dict(d.pipeline[-1], tokenizer=dict(name_or_path=llm_name),
                                             chat_template='qwen', max_length=39183)])
    for d in _base_.train_dataloader.dataset.datasets]))
