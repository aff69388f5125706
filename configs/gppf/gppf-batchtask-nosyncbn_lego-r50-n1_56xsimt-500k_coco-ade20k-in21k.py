# GPPF Table 1, first "GPPF-R50" row (no SIMT, no SyncBN, no DyNet; the
# paper: "not converge"): all 56 processes run one shared task per
# iteration (drawn with the App. D.1 weights: per-batch task sampling), the
# backbone is static (N = 1 unit per layer) and normalised by plain BN.
#   NNODES=7 NODE_RANK=<i> MASTER_ADDR=<host> bash tools/dist_train.sh \
# configs/gppf/gppf-batchtask-nosyncbn_lego-r50-n1_56xsimt-500k_coco-
# ade20k-in21k.py 8
_base_ = './gppf-nosyncbn_lego-r50-n1_56xsimt-500k_coco-ade20k-in21k.py'

train_cfg = dict(task_sampling='per_iteration')
