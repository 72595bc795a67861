# LLaVA image conversations (task imgconv): LLaVA-Pretrain 558k captions (stage 2) and LLaVA-1.5 mix665k
# instructions (stage 3). Format: a JSON list of {id, image (relative path, absent for pure-text samples),
# conversations: [{from: human|gpt, value}]}; '<image>' may be anywhere in the first human turn (moved to the
# front). Data sets only: the pipeline (tokenizer, image size) is the model's, added by the mix configs.
llava_pretrain_train = dict(
    type='XSAMImageConvDataset', source_name='llava_pretrain_558k',
    data_root='data/imgconv_data/llava/LLaVA-Pretrain/', ann_file='blip_laion_cc_sbu_558k.json',
    data_prefix=dict(img_path='images/'))
llava_665k_train = dict(
    type='XSAMImageConvDataset', source_name='llava_665k', data_root='data/imgconv_data/llava/',
    ann_file='LLaVA-Instruct-150K/llava_v1_5_mix665k.json', data_prefix=dict(img_path='llava_images/'))
