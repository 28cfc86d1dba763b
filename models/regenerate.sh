#!/usr/bin/env bash
# Regenerate the shipped default bundle models/cnn-lstm-edge-cic-int8/ from the shared
# CIC-IDS2017 rows. Run from the repository root with the train extra installed:
#   EDGE_NIDS_DATA=/path/to/shared/datasets models/regenerate.sh
# Training is seeded (seed 42) but TensorFlow on another CPU/version may give slightly
# different weights; the convert step re-verifies the int8 model against Keras.
set -euo pipefail
NAME=cnn-lstm-edge-cic-int8
RUN=${RUN:-runs/cnn-lstm-edge-cic}
OUT=models/$NAME
EDGE_NIDS=${EDGE_NIDS:-edge-nids}

$EDGE_NIDS train --dataset cic-ids2017 --model cnn-lstm-edge --seed 42 --out "$RUN"
rm -rf "$OUT"
# one graph with a dynamic batch dimension, LSTM as hand-written steps, per-tensor int8
$EDGE_NIDS convert "$RUN" --int8 -o "$OUT"
# Keep the training output it came from (not test.npz / calibration.npz / plots).
mkdir -p "$OUT/training"
cp "$RUN"/model.keras "$RUN"/preprocess.json "$RUN"/train.json "$RUN"/metrics.json "$RUN"/report.md "$OUT/training/"
