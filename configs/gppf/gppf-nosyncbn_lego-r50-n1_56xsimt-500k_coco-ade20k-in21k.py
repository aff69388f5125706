# GPPF Table 1 row "SIMT" without SyncBN and DyNet (the paper: "not
# converge"): SIMT task sampling, a static backbone (N = 1) normalised by
# each process's own batch (plain BN; its running statistics are averaged
# over the processes after each step by SIMTDistributedWrapper).
#   NNODES=7 NODE_RANK=<i> MASTER_ADDR=<host> bash tools/dist_train.sh \
# configs/gppf/gppf-nosyncbn_lego-r50-n1_56xsimt-500k_coco-ade20k-in21k.py 8
_base_ = './gppf_lego-r50-n1_56xsimt-500k_coco-ade20k-in21k.py'

model = dict(backbone=dict(norm_cfg=dict(type='BN', requires_grad=True)))
