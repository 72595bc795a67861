# LLM ablation: Vicuna-7B-v1.5 (LLaMA-2, hidden 4096, 4k context, Vicuna v1 template) instead of Phi-3-mini.
# The projectors follow the LLM width, and every data pipeline tokenises with Vicuna's tokenizer and
# template; the text budget stays int(4096 - 27.43**2 - 1024) = 2319 tokens (same 4k context).
#   tools/dist_train.sh configs/ablations/mixed_vicuna_7b.py 16
# Needs its own stage 2 (configs/xsam/align_pretrain.py with the same model/tokenizer changes and
# --work-dir work_dirs/align_pretrain_vicuna_7b): the Phi-3 run's projectors are 3072 wide.
_base_ = ['../xsam/mixed.py']
llm_name = 'lmsys/vicuna-7b-v1.5'
llm_dims = 4096
model = dict(
    llm=dict(name_or_path=llm_name, tokenizer=dict(name_or_path=llm_name), chat_template='vicuna'),
    vision_projector=dict(out_channels=llm_dims),
    seg_projector=dict(out_channels=llm_dims),
    llm_projector=dict(in_channels=llm_dims),
    init_cfg=[dict(type='Pretrained', checkpoint=_base_.stage1_checkpoint),
              dict(type='Pretrained', checkpoint='work_dirs/align_pretrain_vicuna_7b/epoch_1.pth')])
# the last step of every source's pipeline is the shared PackXSAMInputs: swap its tokenizer and template
train_dataloader = dict(dataset=dict(datasets=[
    dict(d, pipeline=d.pipeline[:-1] + [dict(d.pipeline[-1], tokenizer=dict(name_or_path=llm_name),
                                             chat_template='vicuna')])
    for d in _base_.train_dataloader.dataset.datasets]))
