# Stage-2 data on the bundled synthetic shapes data: LLaVA-Pretrain-style captions (one question, one
# caption answer per image), read by the same XSAMImageConvDataset as blip_laion_cc_sbu_558k.json.
data_root = 'data/shapes/'
img_scale = (128, 128)
tokenizer_path = data_root + 'tokenizer'
max_length = 512

pack = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer_path), chat_template='phi3',
            max_length=max_length)
train_pipeline = [
    dict(type='IfHasImage', transforms=[
        dict(type='LoadImageFromFile'),
        dict(type='XSAMResize', scale=img_scale, keep_ratio=True)]),
    pack,
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='XSAMImageConvDataset', data_root=data_root, ann_file='llava/pretrain_train.json',
                 data_prefix=dict(img_path='images/'), pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
