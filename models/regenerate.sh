#!/usr/bin/env bash
# Regenerate the shipped model bundles. Run from the repository root with the train extra:
#   models/regenerate.sh cic     # cnn-lstm-edge-cic-int8 from the shared CIC-IDS2017 rows
#                                # (EDGE_NIDS_DATA=/path/to/shared/datasets, default ../shared/datasets)
#   sudo models/regenerate.sh lab   # cnn-lstm-edge-lab-int8 (the default) and -dynamic from lab captures:
#                                # records them first unless lab/out/<set>/labels.csv exist
#                                # (root, Debian/Ubuntu, ~35 min on 2 cores; see docs/lab.md)
# Training is seeded (seed 42) but TensorFlow on another CPU/version, and the lab's traffic
# (timings differ run to run), give slightly different weights; the convert step re-verifies
# the int8 model against Keras, and docs/lab.md says how to re-score it.
set -euo pipefail
EDGE_NIDS=${EDGE_NIDS:-.venv/bin/edge-nids}
PY=${PY:-.venv/bin/python}

keep_training_record() {  # RUN OUT: the training output a bundle came from (no test.npz / plots)
    mkdir -p "$2/training"
    cp "$1"/model.keras "$1"/preprocess.json "$1"/train.json "$1"/metrics.json "$1"/report.md "$2/training/"
}

cic() {
    local run=runs/cnn-lstm-edge-cic out=models/cnn-lstm-edge-cic-int8
    $EDGE_NIDS train --dataset cic-ids2017 --model cnn-lstm-edge --seed 42 --out "$run"
    rm -rf "$out"
    # one graph with a dynamic batch dimension, LSTM as hand-written steps, per-tensor int8
    $EDGE_NIDS convert "$run" --int8 -o "$out"
    keep_training_record "$run" "$out"
}

# The lab's training sets: name, then run_lab options. Test captures (seed 2) are never trained on.
LAB_TRAIN_SETS=(
    "train|--seed 1 --scenarios all,busy"
    "train3|--seed 3 --scenarios all,busy"
    "train5|--seed 5 --scale 2 --scenarios benign"
    "train6|--seed 6 --scale 3 --scenarios ssh_bruteforce,nmap_version,nmap_udp"
    "train8|--seed 8 --scale 2 --scenarios iperf,scp"
    "train9|--seed 9 --scale 2 --scenarios iperf,scp"
)

lab() {
    local run=runs/cnn-lstm-edge-lab out=models/cnn-lstm-edge-lab-int8 data=() entry name opts
    for entry in "${LAB_TRAIN_SETS[@]}"; do
        name=${entry%%|*}
        opts=${entry#*|}
        if [[ ! -f lab/out/$name/labels.csv && ! -f lab/out/$name/summary.json ]]; then
            # shellcheck disable=SC2086
            $PY -m lab.run_lab $opts --out "lab/out/$name"
        fi
        $PY -c "from pathlib import Path; from lab.report import extract_run; extract_run(Path('lab/out/$name'), 'corrected')"
        data+=("lab/out/$name/flows-corrected")
    done
    $EDGE_NIDS train --dataset flows --profile corrected --data "${data[@]}" --model cnn-lstm-edge \
        --seed 42 --max-per-class 3000 --class-weight 1 --epochs 300 --patience 25 \
        --exclude-feature "Destination Port" --out "$run"
    rm -rf "$out" models/cnn-lstm-edge-lab-dynamic
    $EDGE_NIDS convert "$run" --int8 -o "$out"
    keep_training_record "$run" "$out"
    # the same model with dynamic-range quantization (HTTP floods: see models/README.md)
    $EDGE_NIDS convert "$run" --dynamic -o models/cnn-lstm-edge-lab-dynamic
}

case "${1:-}" in
    cic) cic ;;
    lab) lab ;;
    all) cic; lab ;;
    *) echo "usage: models/regenerate.sh cic|lab|all" >&2; exit 2 ;;
esac
