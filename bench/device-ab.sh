#!/usr/bin/env bash
# Two aekit builds timed in turns on the device machine's CPUs (no Rust
# there): $A and $B are stripped binaries carried in .device/ (build them here
# with `cargo build --release -p aekit-cli` before and after a change), with
# MNIST's files in .device/mnist as bench/device-build.sh leaves them.
# Seconds per 60k-image epoch (the second epoch's, which skips start-up),
# ROUNDS rounds, A then B in each, of the workloads in WORK (default w1,w2):
# w1 (per-example, `rows`, at THREADS and 8 workers), w2 (batch 100, the
# sparse first layer on and off), w3 (the gradual 784-1000-1000 phase,
# batch 20), w4 (cae-mnist), sparse (the 400-iteration exercise, whole
# seconds), gpu (the GPU test binary .device/gpu-tests, once, first); with w1, one probed epoch of B (each worker's waits); then
# PyTorch's workloads TORCH_ONLY (default W2) on the same threads for the
# ratio (TORCH=0: none). Writes $OUT/log.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
D=${D:-.device}
A=${A:-$D/aekit-a}
B=${B:-$D/aekit-b}
# Settings for one side only, e.g. B_ENV="AEKIT_SPIN=0" (A and B may then be
# one binary).
A_ENV=${A_ENV:-}
B_ENV=${B_ENV:-}
# CMD: the command line of variant A or B (its settings, then its binary).
use() { if [ "$1" = A ]; then CMD=(env $A_ENV "$A"); else CMD=(env $B_ENV "$B"); fi; }
THREADS=${THREADS:-16}
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-w1,w2}
part() { [[ ",$WORK," == *",$1,"* ]]; }
MNIST=$D/mnist
RUNS=$(mktemp -d)
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
lscpu | grep -E 'Model name|^CPU\(s\)|L2 cache' | sed 's/  */ /g'
. bench/device-common.sh
# A RESULT row: the label and the figure in TAKEN, or why the run failed.
train() { # label, variant, args...
    local label=$1; use "$2"; shift 2
    if train_run r --epochs 2 "$@" >"$RUNS/log"; then
        echo "RESULT|$label|$TAKEN"
    else
        echo "RESULT|$label|failed: $(grep -m1 -i error "$RUNS/log")"
    fi
}
w3() { use "$2"; w3_cpu w3 >/dev/null; echo "RESULT|$1|$TAKEN"; } # label, variant
w4() { use "$2"; w4_cpu w4 >/dev/null; echo "RESULT|$1|$TAKEN"; } # label, variant
sparse() { use "$2"; sparse_exercise sp >/dev/null --threads "$THREADS"; echo "RESULT|$1|$TAKEN"; } # label, variant
if part gpu; then
    echo "-- B's GPU tests"
    for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
        [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
    done
    "$D/gpu-tests" --test-threads 1 2>&1 | grep -E '^test |test result'
fi
if part w1; then train "W1 1 thread (A)" A --batch 1 --lr 0.01 --threads 1; fi
for r in $(seq "$ROUNDS"); do
    for v in A B; do
        if part w1; then
            train "W1 rows $THREADS ($v)" "$v" --batch 1 --lr 0.01 --threads "$THREADS" --parallel rows
            train "W1 rows 8 ($v)" "$v" --batch 1 --lr 0.01 --threads 8 --parallel rows
        fi
        if part w2; then
            train "W2 $THREADS ($v)" "$v" --batch 100 --lr 0.1 --threads "$THREADS"
            AEKIT_SPARSE=off train "W2 $THREADS dense ($v)" "$v" --batch 100 --lr 0.1 --threads "$THREADS"
        fi
        if part w3; then w3 "W3 $THREADS (10k, per 60k) ($v)" "$v"; fi
        if part w4; then w4 "W4 $THREADS (10k, per 60k) ($v)" "$v"; fi
        if part sparse; then sparse "sparse 400 it $THREADS ($v)" "$v"; fi
    done
done
if part w1; then
echo "-- B's $THREADS rows workers over one epoch"
use B
AEKIT_PROBE_ROWS=1 timeout 60 "${CMD[@]}" train --data "$MNIST" --val-size 0 --out "$RUNS/p" --force \
    --batch 1 --lr 0.01 --epochs 1 --threads "$THREADS" --parallel rows 2>&1 | grep probe
fi
if [ -n "${TORCH:-1}" ] && [ "${TORCH:-1}" != 0 ]; then
PYTHONUNBUFFERED=1 timeout 90 python3 bench/torch_ref.py "$MNIST" --device cpu --threads "$THREADS" \
    --examples 10000 --only "${TORCH_ONLY:-W2}" | sed 's/^/TORCH|/'
fi
echo "== table"
grep -E '^(RESULT|TORCH)\|' "$OUT/log.txt" | sort
rm -rf "$RUNS"
