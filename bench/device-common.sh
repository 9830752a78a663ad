# The CPU workloads that bench/device.sh and bench/device-ab.sh time, written
# once; sourced by both. Each function runs the command line in the array
# CMD (a binary, perhaps after `env SETTING=value`) into $RUNS/NAME, prints
# the run's last lines, and leaves its seconds in TAKEN ("nan" if it gave
# none). Needs MNIST, RUNS and THREADS.

# Seconds of epoch N minus epoch N−1 (the second skips start-up) from a
# metrics.csv, by column position of `seconds` (last) and rows `match`.
epoch_secs() { # file, awk filter
    awk -F, -v f="$2" 'NR > 1 && $0 ~ f { t[++n] = $NF } END { if (n >= 2) printf "%.3f\n", t[n] - t[n-1]; else if (n == 1) printf "%.3f\n", t[1]; else print "nan" }' "$1" 2>/dev/null || echo nan
}

# `aekit train` with these arguments; TAKEN: the last epoch's seconds.
# Fails (status 1) when the command does.
train_run() { # name, args...
    local name=$1 log status; shift
    rm -rf "${RUNS:?}/$name"
    log=$(timeout 120 "${CMD[@]}" train --data "$MNIST" --val-size 0 --out "$RUNS/$name" --force "$@" 2>&1)
    status=$?
    echo "$log" | grep -E 'epoch|error' | tail -3
    TAKEN=$(epoch_secs "$RUNS/$name/metrics.csv" .)
    return $status
}

# The sparse exercise (784->196, 10k images, 400 L-BFGS iterations): whole seconds.
sparse_exercise() { # name, args...
    local name=$1 log; shift
    log=$(timeout 200 "${CMD[@]}" train --kind sparse --data "$MNIST" --train-size 10000 --val-size 0 --hidden 196 \
        --sparsity 0.1 --beta 3 --weight-decay 3e-3 --max-iter 400 --out "$RUNS/$name" --force "$@" 2>&1)
    echo "$log" | grep -E 'done in|cost |error' | tail -3
    TAKEN=$(echo "$log" | sed -n 's/.*done in \([0-9.]*\) s.*/\1/p' | tail -1)
    TAKEN=${TAKEN:-nan}
}

# W3: the gradual 784-1000-1000 phase (batch 20, momentum 0.9, masking 0.25)
# on 10,000 images, THREADS threads; seconds per 60k images.
w3_cpu() { # name
    rm -rf "${RUNS:?}/$1"
    timeout 180 "${CMD[@]}" pretrain --data "$MNIST" --train-size 10000 --val-size 0 --out "$RUNS/$1" --force \
        --threads "$THREADS" --layers 1000,1000 --schedule gradual --epochs 1 --layer-epochs 2 --batch 20 \
        --lr 0.01 --momentum 0.9 --noise mask:0.25 2>&1 | grep -E 'error|done' | tail -2
    TAKEN=$(awk "BEGIN{print $(epoch_secs "$RUNS/$1/metrics.csv" '^2,gradual') * 6}")
}

# W4: `cae-mnist` (batch 100, Adam) on 10,000 images, THREADS threads;
# seconds per 60k images.
w4_cpu() { # name
    rm -rf "${RUNS:?}/$1"
    timeout 120 "${CMD[@]}" cae --data "$MNIST" --train-size 10000 --val-size 0 --out "$RUNS/$1" --force \
        --threads "$THREADS" --batch 100 --epochs 2 2>&1 | grep -E 'error' | tail -2
    TAKEN=$(awk "BEGIN{print $(epoch_secs "$RUNS/$1/metrics.csv" .) * 6}")
}
