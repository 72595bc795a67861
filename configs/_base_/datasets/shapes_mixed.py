# Stage-3 data on the bundled synthetic shapes data: every task of the mix (image conversation, generic,
# referring, reasoning, GCG and VGD segmentation) in the public formats the real data sets use, balanced
# with r = max(1, sqrt(t / f)) and batched one source per global batch. Add or drop a source by editing
# `train_sources` (and `source_names`).
data_root = 'data/shapes/'
img_scale = (128, 128)
tokenizer_path = data_root + 'tokenizer'
max_length = 512

image_steps = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadXSAMAnnotations'),
    dict(type='XSAMResize', scale=img_scale, keep_ratio=True),
]
panoptic_steps = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticSegments'),
    dict(type='XSAMResize', scale=img_scale, keep_ratio=True),
]
pack = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path=tokenizer_path), chat_template='phi3',
            max_length=max_length)
seg_pipeline = image_steps + [pack]
chat_pipeline = [dict(type='IfHasImage', transforms=[image_steps[0], image_steps[2]]), pack]

imgconv = dict(type='XSAMImageConvDataset', data_root=data_root, ann_file='llava/conversations_train.json',
               data_prefix=dict(img_path='images/'), pipeline=chat_pipeline)
genseg = dict(type='XSAMGenericSegDataset', data_root=data_root, ann_file='annotations/panoptic_train.json',
              data_prefix=dict(img='images/', seg='annotations/panoptic_train/'),
              pipeline=panoptic_steps + [pack])
refseg = dict(type='XSAMReferSegDataset', data_root=data_root, refer_file='refshapes/refs(unc).p',
              ann_file='refshapes/instances.json', split='train', data_prefix=dict(img='images/'),
              pipeline=seg_pipeline)
reaseg = dict(type='XSAMReasonSegDataset', data_root=data_root, data_prefix=dict(img='reason_seg/train'),
              explain_file='reason_seg/explanatory/train.json', pipeline=seg_pipeline)
gcgseg = dict(type='XSAMGCGSegDataset', data_root=data_root, ann_file='gcg/grandf_gcg_train.json',
              data_prefix=dict(img_path='images/'), pipeline=seg_pipeline)
vgdseg = dict(type='XSAMVGDSegDataset', data_root=data_root, ann_file='vgd/vgd_train.json',
              data_prefix=dict(img='images/'), pipeline=seg_pipeline)
train_sources = [imgconv, genseg, refseg, reaseg, gcgseg, vgdseg]
source_names = ['shapes_imgconv', 'shapes_genseg', 'shapes_refseg', 'shapes_reaseg', 'shapes_gcgseg',
                'shapes_vgdseg']

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    batch_sampler=None,
    sampler=dict(type='SourceGroupedSampler', batch_size=4),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='BalancedConcatDataset', datasets=train_sources, oversample_thr=0.1,
                 source_names=source_names))

# evaluation: referring segmentation on the val split, one sample per expression, the fixed (first) prompt
# template, targets at the original image size (loaded after the resize, as mmdet's test pipelines do)
refer_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='XSAMResize', scale=img_scale, keep_ratio=True),
    dict(type='LoadXSAMAnnotations'),
    dict(type='BinarySegTarget'),
    pack,
]
val_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='XSAMReferSegDataset', data_root=data_root, refer_file='refshapes/refs(unc).p',
                 ann_file='refshapes/instances.json', split='val', test_mode=True,
                 data_prefix=dict(img='images/'), pipeline=refer_test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ReferSegMetric')
test_evaluator = val_evaluator
