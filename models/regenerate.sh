#!/usr/bin/env bash
# Regenerate the shipped model bundles. Run from the repository root with the train extra:
#   models/regenerate.sh cic     # cnn-lstm-edge-cic-int8 from the shared CIC-IDS2017 rows
#                                # (EDGE_NIDS_DATA=/path/to/shared/datasets, default ../shared/datasets)
#   sudo models/regenerate.sh default   # cnn-lstm-ctx-int8 (the default): records the lab runs it
#                                # needs unless lab/out/<run>/labels.csv exist (root, ~45 min), then
#                                # `edge-nids detection` (grouped cross-validation over the shared
#                                # real captures, ~14 min on 2 cores) writes docs/detection.md and the bundle;
#                                # COMPARE=1 adds its run-to-run section (COMPARE_RUNS, ~2 h)
# Training is seeded (seed 42) but TensorFlow on another CPU/version, and the lab's traffic
# (timings differ run to run), give slightly different weights; the convert step re-verifies
# the int8 model against Keras, and docs/lab.md says how to re-score it.
# A retrain is not always shippable. On the lab runs re-recorded at stop 22, seeds 42 and 43
# picked 0.9609, above the attack scores' plateau (~0.95), and their final models flagged 0 %
# of the lab test runs' UDP flood. The threshold guard (--keep-recall 0.9, docs/detection.md
# "Threshold guard") now lowers such a pick to where the agent with the final model still
# catches the lab training attacks (those two runs: 0.9297 and 0.7852), but then flags more
# benign flows (held out: 2.65 % and 9.13 %). Check the report's false-alarm and "Lab test runs" tables
# before shipping; the shipped weights are judged on a run's results with
#   edge-nids detection --work runs/detection --report-only --judge-bundle models/cnn-lstm-ctx-int8 \
#       --check runs/third_party --write docs/detection.md
set -euo pipefail
EDGE_NIDS=${EDGE_NIDS:-.venv/bin/edge-nids}
PY=${PY:-.venv/bin/python}

keep_training_record() {  # RUN OUT: the training output a bundle came from (no test.npz / plots)
    mkdir -p "$2/training"
    for f in model.keras preprocess.json train.json metrics.json report.md; do
        if [[ -f $1/$f ]]; then cp "$1/$f" "$2/training/"; fi
    done
}

cic() {
    local run=runs/cnn-lstm-edge-cic out=models/cnn-lstm-edge-cic-int8
    $EDGE_NIDS train --dataset cic-ids2017 --model cnn-lstm-edge --seed 42 --out "$run"
    rm -rf "$out"
    # one graph with a dynamic batch dimension, LSTM as hand-written steps, per-tensor int8
    $EDGE_NIDS convert "$run" --int8 -o "$out"
    keep_training_record "$run" "$out"
}

# The lab runs the default is trained on (name, then run_lab options) and the test runs it is
# judged on (never trained on). train21 and train27 were recorded before mqtt_bruteforce gained
# its slow second run; recorded again now they hold both.
LAB_RUNS=(
    "train11|--seed 11 --scenarios all,busy"
    "train13|--seed 13 --scale 1.5 --scenarios ssh_bruteforce,slowloris,http_flood,nmap_connect,nmap_version,udp_flood,poll,web,browse,ssh,dns"
    "train21|--seed 21 --scale 1.5 --scenarios mqtt,ssh,poll,browse,http_bruteforce,mqtt_bruteforce,ssh_bruteforce"
    "train23|--seed 23 --scenarios nmap_sweep,web,dns"
    "train25|--seed 25 --scenarios nmap_sweep,nmap_syn,mqtt"
    "train27|--seed 27 --scale 2 --scenarios http_bruteforce,mqtt_bruteforce,ssh_bruteforce,mqtt,poll"
    "train29|--seed 29 --scenarios syn_flood_spoofed,udp_flood,web"
    "test|--seed 2 --scale 0.7 --scenarios all,busy"
    "test22|--seed 22 --scenarios mqtt,ssh,poll,browse,http_bruteforce,mqtt_bruteforce,ssh_bruteforce"
    "test24|--seed 24 --scale 0.7 --scenarios nmap_sweep,mqtt,web"
    "test30|--seed 30 --scale 0.7 --scenarios syn_flood_spoofed,dns"
)
# The run-to-run comparisons of docs/detection.md (work folder under runs/, then options):
# other folds and rows with other networks' seeds, the same folds and rows as other seeds with
# the shipped networks' seed 42, and ensembles of three networks (seeds 42, 1042, 2042 and
# 43, 1043, 2043).
COMPARE_RUNS=(
    "det-s43|--seed 43"
    "det-s44|--seed 44"
    "i42-s43|--seed 43 --init-seed 42"
    "i42-s44|--seed 44 --init-seed 42"
    "ens3-s42|--ensemble 3"
    "ens3-s43|--seed 43 --ensemble 3"
)
TRAIN_RUNS=(train11 train13 train21 train23 train25 train27 train29)
TEST_RUNS=(test test22 test24 test30)

default() {
    local out=models/cnn-lstm-ctx-int8 work=runs/detection entry name opts
    for entry in "${LAB_RUNS[@]}"; do
        name=${entry%%|*}
        opts=${entry#*|}
        if [[ ! -f lab/out/$name/labels.csv ]]; then
            # shellcheck disable=SC2086
            $PY -m lab.run_lab $opts --out "lab/out/$name"
        fi
    done
    # benign captures of other packages' test suites, judged with the shipped bundle only
    # (docs/detection.md, "Benign captures from other sources"; ~57 MB from the registries,
    # most of it Wireshark's source package)
    [[ -f runs/third_party/MANIFEST.tsv ]] || $PY -m lab.third_party --out runs/third_party
    rm -rf "$out"
    local args=() run
    for run in "${TRAIN_RUNS[@]}"; do args+=(--lab "lab/out/$run"); done
    for run in "${TEST_RUNS[@]}"; do args+=(--test-lab "lab/out/$run"); done
    $EDGE_NIDS detection "${args[@]}" --check runs/third_party --work "$work" -o "$out" --write docs/detection.md
    keep_training_record "$work/final/model" "$out"
    # COMPARE=1: the same command with other seeds and an ensemble (COMPARE_RUNS; ~12 min
    # each, an ensemble ~40; bundles not shipped), then the report's run-to-run section
    # judges them at the shipped decision
    local compare=()
    if [[ ${COMPARE:-} == 1 ]]; then
        for entry in "${COMPARE_RUNS[@]}"; do
            name=${entry%%|*}
            opts=${entry#*|}
            # shellcheck disable=SC2086
            $EDGE_NIDS detection "${args[@]}" $opts --work "runs/$name" \
                -o "runs/$name/bundle" --write "runs/$name/detection.md"
            compare+=(--compare-work "runs/$name")
        done
    fi
    if ((${#compare[@]})); then
        $EDGE_NIDS detection --work "$work" --report-only "${compare[@]}" --write docs/detection.md
    fi
}

case "${1:-}" in
    cic) cic ;;
    default) default ;;
    all) cic; default ;;
    *) echo "usage: models/regenerate.sh cic|default|all" >&2; exit 2 ;;
esac
