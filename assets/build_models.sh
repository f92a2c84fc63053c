#!/usr/bin/env bash
# Rebuild the models shipped with the app, all on data of our own making, so they may be committed:
# FM, then AFM from FM's embeddings (as the paper does), on the synthetic default; and a 3-seed FM set and
# AFM set on the wide synthetic data (24 fields, long-tailed values), for comparing datasets and seeds; and
# null sets of both (below).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1  # small models: one thread is fastest, and identical bits on every machine
python -m afm train --data synthetic --model fm --out assets/models/synthetic-fm --seed 0 --quiet --overwrite
python -m afm train --data synthetic --model afm --out assets/models/synthetic-afm \
    --pretrain assets/models/synthetic-fm --seed 0 --quiet --overwrite
rm -rf assets/models/wide-fm-set assets/models/wide-afm-set
python -m afm train --data wide --model fm --seeds 3 --out assets/models/wide-fm-set --quiet
python -m afm train --data wide --model afm --seeds 3 --pretrain assets/models/wide-fm-set \
    --out assets/models/wide-afm-set --quiet
# Null sets: the same settings trained on permuted labels (--permute-labels), the baseline every
# interaction answer on these models is shown against.
rm -rf assets/models/synthetic-fm-null-set assets/models/synthetic-afm-null-set \
    assets/models/wide-fm-null-set assets/models/wide-afm-null-set
python -m afm train --data synthetic --model fm --seeds 3 --permute-labels --out assets/models/synthetic-fm-null-set --quiet
python -m afm train --data synthetic --model afm --seeds 3 --permute-labels --pretrain assets/models/synthetic-fm-null-set \
    --out assets/models/synthetic-afm-null-set --quiet
python -m afm train --data wide --model fm --seeds 3 --permute-labels --out assets/models/wide-fm-null-set --quiet
python -m afm train --data wide --model afm --seeds 3 --permute-labels --pretrain assets/models/wide-fm-null-set \
    --out assets/models/wide-afm-null-set --quiet
