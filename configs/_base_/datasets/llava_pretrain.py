# X-SAM stage-2 data (alignment pre-training, reference §3 and Tab. 10): LLaVA-Pretrain's 558k
# BLIP-captioned LAION/CC/SBU images, one caption turn per image, read as LLaVA conversations
# (XSAMImageConvDataset moves LLaVA-558K's trailing '<image>' to the front of the first turn).
# Official layout (reference §4 "Data layout"), here under data/ instead of datas/:
#   data/imgconv_data/llava/LLaVA-Pretrain/blip_laion_cc_sbu_558k.json
#   data/imgconv_data/llava/LLaVA-Pretrain/images/<folder>/<name>.jpg
# 4 images per GPU, shuffled (DefaultSampler); the global batch of 256 is 16 GPUs x 4 x gradient
# accumulation 4 (configs/_base_/schedules/xsam_align_pretrain_1e.py). The pipeline resizes the longest
# side to 1024; padding to the SAM input and the SigLIP input (padded to a square in this stage:
# pad_to_square=True in configs/xsam/align_pretrain.py) are made by the model's XSAMDataPreprocessor.
_base_ = ['./xsam/llava.py']  # the data set (paths); the pipeline is the model's, below

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='XSAMResize', scale=(1024, 1024), keep_ratio=True),
    # text budget int(4096 - 27.43**2 - 1024) = 2319 tokens: Phi-3's 4k context minus the 729 + 1024
    # visual tokens (reference §1.5)
    dict(type='PackXSAMInputs', tokenizer=dict(name_or_path='microsoft/Phi-3-mini-4k-instruct'),
         chat_template='phi3', max_length=2319),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_base_.llava_pretrain_train, pipeline=train_pipeline))
# no evaluation in the alignment stage (the reference has none either)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
