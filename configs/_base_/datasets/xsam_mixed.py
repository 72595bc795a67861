# X-SAM stage-3 data (mixed fine-tuning, reference §3 "S3 dataset mix", Tab. 10): 11 sources, in the
# reference's order, concatenated with X-SAM's square-root balance (r_d = max(1, sqrt(0.1 / f_d)), computed
# once at build time) and drawn so that every global batch (16 GPUs x 4) comes from one source.
# Add or drop a source by editing the `train_datasets` list (its `source_names` follow).
#
# Official layout (reference §4 "Data layout"), here under data/ instead of datas/:
#   imgconv_data/llava/LLaVA-Instruct-150K/llava_v1_5_mix665k.json, imgconv_data/llava/llava_images/
#   genseg_data/coco2017/{annotations/panoptic_train2017.json, train2017/, panoptic_train2017/}
#   refseg_data/{refcoco,refcoco+}/{refs(unc).p, instances.json}, refseg_data/refcocog/{refs(umd).p,
#       instances.json}, refseg_data/images/train2014/
#   reaseg_data/lisa/{train/, explanatory/train.json}
#   gcgseg_data/grand_f/annotations/train/{GranDf_HA_GCG,RefCOCOg_GCG,OpenPsgGCG,flickr_mergedGT_GCG}_train.json,
#       gcgseg_data/grand_f/images/{GranDf_HA_images/train, coco2014/train2014, coco2017, flickr30k/images/train}/
#   vgdseg_data/coco_vgd/annotations/coco_vgdseg_train.json (tools/dataset_converters/generate_coco_vgd.py
#       or the released vgdseg_annotations), vgdseg_data/coco_vgd/coco2017/train2017/
#
# Differences from the reference, on purpose:
# * image conversation: only the image steps run (inside IfHasImage); there is no LoadXSAMAnnotations
#   because LLaVA has no targets, and an empty `gt_masks` on image samples next to pure-text samples
#   (which get none) would break mmdet's mask padding of a mixed batch. Pure-text samples are kept, as
#   in the archive.
# * COCO-VGD: use_negative_sample=False. Negative categories need prompts from other images of the
#   batch, which the model does not implement yet (XSAMVGDSegDataset's docstring); the reference uses
#   True with at most 5 negatives.
data_root = 'data/'
imgconv_root = data_root + 'imgconv_data/'
genseg_root = data_root + 'genseg_data/'
refseg_root = data_root + 'refseg_data/'
reaseg_root = data_root + 'reaseg_data/'
gcgseg_root = data_root + 'gcgseg_data/'
vgdseg_root = data_root + 'vgdseg_data/'

# one packing step shared by every source: Phi-3's tokenizer and chat template, 2319 text tokens
# (int(4096 - 27.43**2 - 1024): the 4k context minus the 729 + 1024 visual tokens, reference §1.5)
pack = dict(type='PackXSAMInputs', tokenizer=dict(name_or_path='microsoft/Phi-3-mini-4k-instruct'),
            chat_template='phi3', max_length=2319)
resize = dict(type='XSAMResize', scale=(1024, 1024), keep_ratio=True)  # longest side 1024, no augmentation
imgconv_pipeline = [dict(type='IfHasImage', transforms=[dict(type='LoadImageFromFile'), resize]), pack]
genseg_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadPanopticSegments'), resize, pack]
seg_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadXSAMAnnotations'), resize, pack]

# 1. LLaVA-1.5 instruction data (665k)
llava_665k_dataset = dict(
    type='XSAMImageConvDataset', source_name='llava_665k', data_root=imgconv_root + 'llava/',
    ann_file='LLaVA-Instruct-150K/llava_v1_5_mix665k.json', data_prefix=dict(img_path='llava_images/'),
    pipeline=imgconv_pipeline)
# 2. COCO panoptic train2017 (118k): every category (p 0.5) or positives + random negatives, shuffled
coco_panoptic_dataset = dict(
    type='XSAMGenericSegDataset', source_name='coco_panoptic', data_root=genseg_root + 'coco2017/',
    ann_file='annotations/panoptic_train2017.json',
    data_prefix=dict(img='train2017/', seg='panoptic_train2017/'), pipeline=genseg_pipeline)
# 3-5. RefCOCO / RefCOCO+ (unc) and RefCOCOg (umd) train. expand_combinations=True: one sample per
# sentence combination, the official epoch length (Tab. 10: 301K referring samples, not 56K images),
# which is what the balance factors must see.
refcoco_dataset = dict(
    type='XSAMReferSegDataset', source_name='refcoco', data_root=refseg_root, refer_file='refcoco/refs(unc).p',
    ann_file='refcoco/instances.json', split='train', data_prefix=dict(img='images/train2014/'),
    expand_combinations=True, pipeline=seg_pipeline)
refcoco_plus_dataset = dict(
    type='XSAMReferSegDataset', source_name='refcoco+', data_root=refseg_root,
    refer_file='refcoco+/refs(unc).p', ann_file='refcoco+/instances.json', split='train',
    data_prefix=dict(img='images/train2014/'), expand_combinations=True, pipeline=seg_pipeline)
refcocog_dataset = dict(
    type='XSAMReferSegDataset', source_name='refcocog', data_root=refseg_root,
    refer_file='refcocog/refs(umd).p', ann_file='refcocog/instances.json', split='train',
    data_prefix=dict(img='images/train2014/'), expand_combinations=True, pipeline=seg_pipeline)
# 6. LISA ReasonSeg train (239 images) + explanatory/train.json
lisa_reasonseg_dataset = dict(
    type='XSAMReasonSegDataset', source_name='lisa_reasonseg', data_root=reaseg_root + 'lisa/',
    data_prefix=dict(img='train/'), explain_file='explanatory/train.json', pipeline=seg_pipeline)
# 7-10. GCG: GranD-f (human annotated), RefCOCOg-GCG, PSG-GCG, Flickr30k-GCG (GLaMM's files)
grandf_gcg_dataset = dict(
    type='XSAMGCGSegDataset', source_name='grandf_gcg', ann_format='grandf', data_root=gcgseg_root + 'grand_f/',
    ann_file='annotations/train/GranDf_HA_GCG_train.json',
    data_prefix=dict(img_path='images/GranDf_HA_images/train/'), pipeline=seg_pipeline)
refcocog_gcg_dataset = dict(
    type='XSAMGCGSegDataset', source_name='refcocog_gcg', ann_format='refcocog',
    data_root=gcgseg_root + 'grand_f/', ann_file='annotations/train/RefCOCOg_GCG_train.json',
    data_prefix=dict(img_path='images/coco2014/train2014/'), pipeline=seg_pipeline)
psg_gcg_dataset = dict(
    type='XSAMGCGSegDataset', source_name='psg_gcg', ann_format='psg', data_root=gcgseg_root + 'grand_f/',
    ann_file='annotations/train/OpenPsgGCG_train.json', data_prefix=dict(img_path='images/coco2017/'),
    pipeline=seg_pipeline)
flickr_gcg_dataset = dict(
    type='XSAMGCGSegDataset', source_name='flickr_gcg', ann_format='flickr', data_root=gcgseg_root + 'grand_f/',
    ann_file='annotations/train/flickr_mergedGT_GCG_train.json',
    data_prefix=dict(img_path='images/flickr30k/images/train/'), pipeline=seg_pipeline)
# 11. COCO-VGD train (from instances_train2017): a random prompt type per prompted instance
coco_vgd_dataset = dict(
    type='XSAMVGDSegDataset', source_name='coco_vgd', data_root=vgdseg_root + 'coco_vgd/',
    ann_file='annotations/coco_vgdseg_train.json', data_prefix=dict(img='coco2017/train2017/'),
    use_negative_sample=False, pipeline=seg_pipeline)

# the mix, in the reference's order (no open-vocabulary and no COCO-Interactive training set)
train_datasets = [
    llava_665k_dataset,
    coco_panoptic_dataset,
    refcoco_dataset,
    refcoco_plus_dataset,
    refcocog_dataset,
    lisa_reasonseg_dataset,
    grandf_gcg_dataset,
    refcocog_gcg_dataset,
    psg_gcg_dataset,
    flickr_gcg_dataset,
    coco_vgd_dataset,
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    pin_memory=True,
    # every global batch from one source: groups of world_size x 4 indices (mega_batch_mult 1, as the
    # reference: accumulation is 1 in this stage); seeded by randomness.seed (1024) + epoch
    sampler=dict(type='SourceGroupedSampler', batch_size=4, mega_batch_mult=1),
    batch_sampler=None,  # a batch sampler would regroup the indices across sources
    dataset=dict(
        type='BalancedConcatDataset',
        oversample_thr=0.1,
        source_names=[d['source_name'] for d in train_datasets],
        datasets=train_datasets))

# Evaluation is left out: ReferSegMetric (cIoU/gIoU) reads `gt_sem_seg` binary maps per expression,
# and no transform produces them yet (the refer data set keeps its targets as `gt_instances`). Once one
# does, evaluate on RefCOCO val with:
#   val_dataloader = dict(batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
#       sampler=dict(type='DefaultSampler', shuffle=False),
#       dataset=dict(type='XSAMReferSegDataset', data_root=refseg_root, refer_file='refcoco/refs(unc).p',
#                    ann_file='refcoco/instances.json', split='val', data_prefix=dict(img='images/train2014/'),
#                    test_mode=True, pipeline=seg_pipeline))
#   val_cfg = dict(type='ValLoop'); val_evaluator = dict(type='ReferSegMetric')  (and test_* alike)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
