# GPPF Table 1 row "SIMT + SyncBN" (no DyNet): the GPPF-R50 config with a
# static backbone, 1 unit per lego layer, so every task shares every layer
# (the paper's default DyNet has N = 2).
#   NNODES=7 NODE_RANK=<i> MASTER_ADDR=<host> bash tools/dist_train.sh \
#       configs/gppf/gppf_lego-r50-n1_56xsimt-500k_coco-ade20k-in21k.py 8
_base_ = './gppf_lego-r50-n2_56xsimt-500k_coco-ade20k-in21k.py'

model = dict(backbone=dict(num_units=1))
