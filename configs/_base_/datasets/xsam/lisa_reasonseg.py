# LISA ReasonSeg (task reaseg): one labelme JSON per image next to it ({text: [queries], is_sentence,
# shapes: [{label: target|ignore|flag, points}]}), plus explanatory/train.json ([{image, query, outputs}]).
# "ignore" shapes become evaluation ignore regions. Test subsets: all / long (sentence) / short (phrase).
_lisa = dict(type='XSAMReasonSegDataset', data_root='data/reaseg_data/lisa/')
lisa_reasonseg_train = dict(_lisa, source_name='lisa_reasonseg', data_prefix=dict(img='train/'),
                            explain_file='explanatory/train.json')
lisa_reasonseg_val = dict(_lisa, source_name='lisa_reasonseg_val', data_prefix=dict(img='val/'), test_mode=True)
lisa_reasonseg_test, lisa_reasonseg_test_long, lisa_reasonseg_test_short = (
    dict(_lisa, source_name=f'lisa_reasonseg_test_{q}', data_prefix=dict(img='test/'), query_type=q, test_mode=True)
    for q in ('all', 'sentence', 'phrase'))
