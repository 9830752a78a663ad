#!/usr/bin/env bash
# aekit on a GPU machine: the GPU tests, then seconds per 60k-image epoch of
# the reference workloads with aekit's CUDA backend and with PyTorch on the
# same GPU, then the many-core CPU runs (aekit and PyTorch, 16 threads).
#
# Nothing is built here (such a machine may have no Rust): build elsewhere
# with `bench/device-build.sh`, which puts into .device/ the stripped aekit
# binary (--features cuda), the GPU test binary and MNIST's files. Needs
# python3 with torch and numpy for the PyTorch side. Writes log.txt and
# table.md into $OUT (default ./device-out). PARTS picks the sections
# (default: tests,gpu,torch,cpu,protocol); `scaling` times W1, W2 and the
# sparse exercise at other thread counts; `tests` also times the short
# GEMMs on THREADS threads (the lib's ignored speed test; `gemm` alone); `profile` runs
# W2 under perf when the machine has it; `python` times aekit's DAE from
# Python against PyTorch on the CPU; `protocol` times one split and
# one fraction of the gradual-vs-stacked protocol on the GPU (a fifteenth
# of the whole).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device-out}
D=${D:-.device}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
BIN=$D/aekit
MNIST=$D/mnist
RUNS=$(mktemp -d)
THREADS=${THREADS:-16}
PARTS=${PARTS:-tests,gpu,torch,cpu,protocol}
part() { [[ ",$PARTS," == *",$1,"* ]]; }

# CUDA's libraries: the driver's folder, the toolkit's, and pip's wheels.
for d in /usr/local/nvidia/lib64 /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    $(python3 -c 'import nvidia, os; p = list(nvidia.__path__)[0]; print(" ".join(os.path.join(p, s, "lib") for s in os.listdir(p)))' 2>/dev/null); do
    [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$d"
done
export LD_LIBRARY_PATH

echo "== machine"
nvidia-smi -L 2>&1 | head -2
lscpu | grep -E 'Model name|^CPU\(s\)|L2 cache' | sed 's/  */ /g'
python3 -c 'import torch; print("torch", torch.__version__)'

if part tests; then
echo "== GPU tests"
"$D/gpu-tests" --nocapture --test-threads 1 2>&1 | tail -40
fi
if part tests || part gemm; then
echo "== the short products on $THREADS threads: faer's threading against the split over columns"
RAYON_NUM_THREADS=$THREADS "$D/lib-tests" --ignored --nocapture --test-threads 1 small_m 2>&1 | grep 'm='
fi

CMD=("$BIN")
. bench/device-common.sh
row() { echo "RESULT|$1|$2|$3"; }
run_sparse() { # name, args...
    sparse_exercise "$@"
    row "$1" aekit "$TAKEN"
}
run_train() { # name, args...
    train_run "$@"
    row "$1" aekit "$TAKEN"
}
if part gpu; then
echo "== aekit on the GPU"
run_train gpu-W1 --device cuda --batch 1 --lr 0.01 --epochs 3
run_train gpu-W2 --device cuda --batch 100 --lr 0.1 --epochs 3
run_train gpu-W2b1000 --device cuda --batch 1000 --lr 0.1 --epochs 3
timeout 180 "$BIN" pretrain --data "$MNIST" --val-size 0 --out "$RUNS/gpu-W3" --force --device cuda \
    --layers 1000,1000 --schedule gradual --epochs 1 --layer-epochs 3 --batch 20 --lr 0.01 --momentum 0.9 \
    --noise mask:0.25 2>&1 | grep -E 'epoch|error|done' | tail -4
row gpu-W3 aekit "$(epoch_secs "$RUNS/gpu-W3/metrics.csv" '^2,gradual')"
timeout 120 "$BIN" cae --data "$MNIST" --val-size 0 --out "$RUNS/gpu-W4" --force --device cuda \
    --batch 100 --epochs 3 2>&1 | grep -E 'epoch|error' | tail -3
row gpu-W4 aekit "$(epoch_secs "$RUNS/gpu-W4/metrics.csv" .)"
run_sparse gpu-sparse-400 --device cuda
fi

if part torch; then
echo "== PyTorch on the GPU"
PYTHONUNBUFFERED=1 timeout 240 python3 bench/torch_ref.py "$MNIST" --device cuda | sed 's/^/TORCH|/'
fi

if part cpu; then
echo "== many cores: aekit"
run_train cpu-W1-1 --batch 1 --lr 0.01 --epochs 2 --threads 1
run_train cpu-W1-8 --batch 1 --lr 0.01 --epochs 2 --threads 8 --parallel rows
run_train cpu-W1-$THREADS --batch 1 --lr 0.01 --epochs 2 --threads "$THREADS" --parallel rows
AEKIT_PIN=0 run_train "cpu-W1-$THREADS-unpinned" --batch 1 --lr 0.01 --epochs 2 --threads "$THREADS" --parallel rows
run_train cpu-W2-1 --batch 100 --lr 0.1 --epochs 2 --threads 1
run_train cpu-W2-$THREADS --batch 100 --lr 0.1 --epochs 2 --threads "$THREADS"
w4_cpu cpu-W4
row "cpu-W4-$THREADS (10k, per 60k)" aekit "$TAKEN"
w3_cpu cpu-W3
row "cpu-W3-$THREADS (10k, per 60k)" aekit "$TAKEN"
run_sparse "cpu-sparse-400-$THREADS" --threads "$THREADS"

echo "== many cores: PyTorch"
PYTHONUNBUFFERED=1 timeout 120 python3 bench/torch_ref.py "$MNIST" --device cpu --threads "$THREADS" \
    --examples 10000 --only W1,W2,W3,W4 | sed 's/^/TORCH|/'
fi

if part scaling; then
echo "== how each CPU path scales with threads (aekit)"
for t in 2 4 12; do
    run_train "cpu-W1-$t" --batch 1 --lr 0.01 --epochs 2 --threads "$t" --parallel rows
done
echo "-- where the $THREADS rows workers' time goes (one epoch; waits for peers)"
AEKIT_PROBE_ROWS=1 timeout 60 "$BIN" train --data "$MNIST" --val-size 0 --out "$RUNS/probe" --force \
    --batch 1 --lr 0.01 --epochs 1 --threads "$THREADS" --parallel rows 2>&1 | grep -E 'probe|error'
for t in 4 8; do
    run_train "cpu-W2-$t" --batch 100 --lr 0.1 --epochs 2 --threads "$t"
done
run_train "cpu-W2b1000-$THREADS" --batch 1000 --lr 0.1 --epochs 2 --threads "$THREADS"
run_sparse cpu-sparse-400-8 --threads 8
fi

if part python; then
echo "== aekit from Python against PyTorch on the CPU, $THREADS threads"
for t in 1 "$THREADS"; do
    PYTHONUNBUFFERED=1 timeout 150 python3 bench/python_vs_torch.py "$MNIST" --threads "$t" \
        --core "$D/_aekit.abi3.so" | sed 's/^/PYTHON|/'
done
fi

if part profile; then
echo "== where W2 spends its time on $THREADS threads (perf, if installed)"
if command -v perf >/dev/null; then
    perf record -q -o "$RUNS/perf.data" -- "$BIN" train --data "$MNIST" --train-size 20000 --val-size 0 \
        --out "$RUNS/prof-W2" --force --batch 100 --lr 0.1 --epochs 2 --threads "$THREADS" >/dev/null 2>&1
    perf report -i "$RUNS/perf.data" --no-children --percent-limit 1 --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -30
else
    echo "no perf on this machine"
fi
fi

if part protocol; then
echo "== one fifteenth of the gradual-vs-stacked protocol on the GPU (split 1, f = 0.5)"
t0=$(date +%s.%N)
timeout 400 "$BIN" experiment gradual-vs-stacked --data "$MNIST" --device cuda --threads "$THREADS" \
    --splits 1 --fractions 0.5 --out "$RUNS/protocol" 2>&1 | tail -8
row "protocol, 1 split x 1 fraction (x15 for the whole)" aekit "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
fi

echo "== table"
grep -E '^(RESULT|TORCH|PYTHON)\|' "$OUT/log.txt" | tee "$OUT/table.md"
rm -rf "$RUNS"
