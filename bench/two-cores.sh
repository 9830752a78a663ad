#!/usr/bin/env bash
# The two-core targets of "fast on every CPU", side by side with PyTorch in
# one run (run by hand; needs python3 with torch and numpy for PyTorch's
# side, set PY to another interpreter if need be).
#
# For each instruction set in ISAS (default: avx512 where the CPU has it,
# avx2, portable: the AEKIT_ISA switch; faer's GEMM picks its own kernels from the CPU whatever
# the switch says), in ROUNDS rounds (default 2), in turns:
#   W1      per-example tied 784→500 DAE, one thread, 60k images, epoch 2
#   W3      784-1000-1000 gradual phase, batch 20, one thread, 10k images ×6
#   W4      cae-mnist, batch 100, Adam, one thread, 10k images ×6
#   sparse  the sparse exercise (784→196, 10k images, 400 L-BFGS
#           iterations), both threads, whole run
#   default `aekit train` as the README runs it, whole run
# then PyTorch's W1 (hand-written steps, 3,000 examples), W3 and W4 (10k) on one thread.
# Writes log.txt and table.md (one `RESULT|name|isa|seconds` line each)
# into $OUT (default ./two-cores-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-two-cores-out}
BIN=${BIN:-target/release/aekit}
MNIST=${MNIST:-../shared/datasets/mnist}
PY=${PY:-python3}
# avx512 only where the CPU has it (elsewhere AEKIT_ISA=avx512 runs the AVX2 code).
if grep -q avx512f /proc/cpuinfo 2>/dev/null; then DEFAULT_ISAS="avx512 avx2 portable"; else DEFAULT_ISAS="avx2 portable"; fi
ISAS=${ISAS:-$DEFAULT_ISAS}
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
RUNS=$(mktemp -d)
trap 'rm -rf "$RUNS"' EXIT

[ -x "$BIN" ] || { echo "$BIN: not built (cargo build --release)"; exit 1; }
[ -f "$MNIST/train-images-idx3-ubyte.gz" ] || { echo "$MNIST: no MNIST files there"; exit 1; }
echo "== machine"
lscpu | grep -E 'Model name|^CPU\(s\)|L2 cache' | sed 's/  */ /g'
grep -q avx512f /proc/cpuinfo && echo "AVX-512: yes" || echo "AVX-512: no"
"$PY" -c 'import torch; print("torch", torch.__version__)' 2>&1 | tail -1

# Seconds of the last epoch of a metrics.csv (its last column), rows matching a filter.
last_epoch() { # file, awk filter
    awk -F, -v f="$2" 'NR > 1 && $0 ~ f { t[++n] = $NF } END { if (n >= 2) printf "%.3f\n", t[n] - t[n-1]; else print "nan" }' "$1"
}
wall() { # seconds a command takes
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >"$RUNS/last.log" 2>&1 || { echo "failed: $*"; tail -3 "$RUNS/last.log"; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }'
}
row() { echo "RESULT|$1|$2|$3"; }

for round in $(seq "$ROUNDS"); do
    for isa in $ISAS; do
        export AEKIT_ISA=$isa
        echo "== round $round, aekit with AEKIT_ISA=$isa"
        "$BIN" train --data "$MNIST" --val-size 0 --out "$RUNS/w1" --force --batch 1 --lr 0.01 --epochs 2 \
            --threads 1 >/dev/null 2>&1
        row W1 "$isa" "$(last_epoch "$RUNS/w1/metrics.csv" .)"
        "$BIN" pretrain --data "$MNIST" --train-size 10000 --val-size 0 --out "$RUNS/w3" --force --threads 1 \
            --layers 1000,1000 --schedule gradual --epochs 1 --layer-epochs 2 --batch 20 --lr 0.01 \
            --momentum 0.9 --noise mask:0.25 >/dev/null 2>&1
        row W3 "$isa" "$(awk "BEGIN{print $(last_epoch "$RUNS/w3/metrics.csv" '^2,gradual') * 6}")"
        "$BIN" cae --data "$MNIST" --train-size 10000 --val-size 0 --out "$RUNS/w4" --force --threads 1 \
            --batch 100 --epochs 2 >/dev/null 2>&1
        row W4 "$isa" "$(awk "BEGIN{print $(last_epoch "$RUNS/w4/metrics.csv" .) * 6}")"
        row sparse "$isa" "$(wall "$BIN" train --kind sparse --data "$MNIST" --train-size 10000 --val-size 0 \
            --hidden 196 --sparsity 0.1 --beta 3 --weight-decay 3e-3 --max-iter 400 --threads 2 \
            --out "$RUNS/sparse" --force)"
        row default "$isa" "$(wall "$BIN" train --out "$RUNS/default" --force)"
    done
    unset AEKIT_ISA
    echo "== round $round, PyTorch, one thread"
    PYTHONUNBUFFERED=1 "$PY" bench/torch_ref.py "$MNIST" --device cpu --threads 1 --examples 10000 \
        --only W1,W3,W4 | sed 's/^/TORCH|/'
done

echo "== table"
grep -E '^(RESULT|TORCH)\|' "$OUT/log.txt" | tee "$OUT/table.md"
