# Table 1 "Category-conditioned MT" row on the derived tasks: the prompt names
# the task type ('cls', 'tags', 'count') instead of the task, so
# coco_categories and camvid_classes share the prompt 'tags' (Sec. 5.1).
_base_ = ['./lit-decoder_resnet18_1xb16-10e_derived-tasks-64px.py']
model = dict(conditioning='category')
