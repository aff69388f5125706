# Table 1 "Unconditioned MT" row on the derived tasks: the same model and data
# as the task-conditioned config, but no prompt: the decoder has to guess the
# task from the image (Sec. 5.1). Compare with the task-conditioned config at
# the same budget and seed.
_base_ = ['./lit-decoder_resnet18_1xb16-10e_derived-tasks-64px.py']
model = dict(conditioning='none')
