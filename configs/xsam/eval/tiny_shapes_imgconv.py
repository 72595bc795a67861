# Image conversation of the tiny X-SAM (stage 3) on the synthetic val chats (counting / colour questions,
# pure-text samples included), in generation mode: exact-match accuracy after normalisation, overall and per
# question type; the answers are also written in VLMEvalKit's prediction layout (TSV).
#   python tools/test.py configs/xsam/eval/tiny_shapes_imgconv.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
test_dataloader = dict(
    dataset=dict(_delete_=True, type='XSAMImageConvDataset', data_root='data/shapes/',
                 ann_file='llava/conversations_val.json', data_prefix=dict(img_path='images/'), test_mode=True,
                 pipeline=[dict(type='IfHasImage', transforms=[
                     dict(type='LoadImageFromFile'), dict(type='XSAMResize', scale=_base_.img_scale, keep_ratio=True)]),
                     _base_.pack]))
test_evaluator = dict(_delete_=True, type='ChatMetric', export_file='work_dirs/tiny_mixed_chat_predictions.tsv')
