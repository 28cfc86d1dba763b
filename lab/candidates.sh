#!/usr/bin/env bash
# Candidates for the default model, trained on the lab's TRAINING captures (lab/out/train,
# seed 1) and scored on its TEST captures (lab/out/test, seed 2, scale 0.7) and the demo.
# These are the exact commands behind the "Candidates for the default model" section of
# docs/lab.md. Run from the repository root after the lab captures and their flow CSVs
# exist (see docs/lab.md, "How the numbers were made"); needs the train extra, and the
# shared datasets for the mixed candidate. Writes only under runs/ (git-ignored).
set -euo pipefail

EDGE_NIDS=${EDGE_NIDS:-.venv/bin/edge-nids}
PY=${PY:-.venv/bin/python}
DATA=${EDGE_NIDS_DATA:-../shared/datasets}
mkdir -p runs/lab

# 0. The shipped default (CIC-IDS2017 rows, cicids2017 profile): the lab-eval table.
$PY -m lab.evaluate lab/out/test lab/out/train lab/out/demo --write docs/lab.md

# 1. Lab training flows only, corrected profile.
$EDGE_NIDS train --dataset flows --profile corrected --data lab/out/train/flows-corrected \
    --model cnn-lstm-edge --seed 42 --out runs/lab-corrected
$EDGE_NIDS convert runs/lab-corrected --int8 -o runs/lab-corrected-int8

# 2. Lab training flows + the shared CIC-IDS2017 sample, cicids2017 profile (the CIC rows
#    were computed that way, so the lab flows must be too).
$EDGE_NIDS train --dataset flows --profile cicids2017 \
    --data lab/out/train/flows-cicids2017 "$DATA/cic-ids2017/MachineLearningCVE/stratified_sample_12001.csv" \
    --model cnn-lstm-edge --seed 42 --out runs/lab-cic-mixed
$EDGE_NIDS convert runs/lab-cic-mixed --int8 -o runs/lab-cic-mixed-int8

# 3. Lab training flows only, cicids2017 profile (separates the profile from the data).
$EDGE_NIDS train --dataset flows --profile cicids2017 --data lab/out/train/flows-cicids2017 \
    --model cnn-lstm-edge --seed 42 --out runs/lab-cicprofile
$EDGE_NIDS convert runs/lab-cicprofile --int8 -o runs/lab-cicprofile-int8

# Replay every capture through `edge-nids run --pcap` with each candidate bundle.
for b in lab-corrected-int8 lab-cic-mixed-int8 lab-cicprofile-int8; do
    $PY -m lab.evaluate lab/out/test lab/out/train lab/out/demo --model "runs/$b" > "runs/lab/eval-$b.md"
done
