#!/usr/bin/env bash
# Rebuild the models shipped with the app: FM, then AFM from FM's embeddings (as the paper does), on the
# synthetic default. The synthetic data is our own, so these may be committed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m afm train --data synthetic --model fm --out assets/models/synthetic-fm --seed 0 --quiet --overwrite
python -m afm train --data synthetic --model afm --out assets/models/synthetic-afm \
    --pretrain assets/models/synthetic-fm --seed 0 --quiet --overwrite
