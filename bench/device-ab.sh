#!/usr/bin/env bash
# Two aekit builds timed in turns on the device machine's CPUs (no Rust
# there): $A and $B are stripped binaries carried in .device/ (build them here
# with `cargo build --release -p aekit-cli` before and after a change), with
# MNIST's files in .device/mnist as bench/device-build.sh leaves them.
# Seconds per 60k-image epoch (the second epoch's, which skips start-up) of
# W1 (per-example, `rows`) at THREADS and 8 workers and of W2 (batch 100)
# at THREADS threads with the sparse first layer on and off, ROUNDS rounds,
# A then B in each; then one probed W1 epoch of B (each worker's waits) and
# PyTorch's W2 on the same threads for the ratio. Writes $OUT/log.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
D=${D:-.device}
A=${A:-$D/aekit-a}
B=${B:-$D/aekit-b}
THREADS=${THREADS:-16}
ROUNDS=${ROUNDS:-3}
MNIST=$D/mnist
RUNS=$(mktemp -d)
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
lscpu | grep -E 'Model name|^CPU\(s\)|L2 cache' | sed 's/  */ /g'
second_epoch() { awk -F, 'NR == 2 { a = $NF } NR == 3 { printf "%.3f\n", $NF - a }' "$1"; }
train() { # label, binary, args...
    local label=$1 bin=$2; shift 2
    rm -rf "$RUNS/r"
    if timeout 120 "$bin" train --data "$MNIST" --val-size 0 --out "$RUNS/r" --force --epochs 2 "$@" >"$RUNS/log" 2>&1; then
        echo "RESULT|$label|$(second_epoch "$RUNS/r/metrics.csv")"
    else
        echo "RESULT|$label|failed: $(grep -m1 -i error "$RUNS/log")"
    fi
}
train "W1 1 thread (A)" "$A" --batch 1 --lr 0.01 --threads 1
for r in $(seq "$ROUNDS"); do
    for v in A B; do
        bin=${!v}
        train "W1 rows $THREADS ($v)" "$bin" --batch 1 --lr 0.01 --threads "$THREADS" --parallel rows
        train "W1 rows 8 ($v)" "$bin" --batch 1 --lr 0.01 --threads 8 --parallel rows
        train "W2 $THREADS ($v)" "$bin" --batch 100 --lr 0.1 --threads "$THREADS"
        AEKIT_SPARSE=off train "W2 $THREADS dense ($v)" "$bin" --batch 100 --lr 0.1 --threads "$THREADS"
    done
done
echo "-- B's $THREADS rows workers over one epoch"
AEKIT_PROBE_ROWS=1 timeout 60 "$B" train --data "$MNIST" --val-size 0 --out "$RUNS/p" --force \
    --batch 1 --lr 0.01 --epochs 1 --threads "$THREADS" --parallel rows 2>&1 | grep probe
PYTHONUNBUFFERED=1 timeout 90 python3 bench/torch_ref.py "$MNIST" --device cpu --threads "$THREADS" \
    --examples 10000 --only W2 | sed 's/^/TORCH|/'
echo "== table"
grep -E '^(RESULT|TORCH)\|' "$OUT/log.txt" | sort
rm -rf "$RUNS"
