#!/usr/bin/env python3
"""What calling aekit from Python costs over the `aekit` command, for the
same training run, timed in turns (run by hand; needs the `aekit` Python
package and a release build of the command).

Workloads, on MNIST's 60k training images: W2, the tied 784→500 DAE at
batch 100 (lr 0.1), and W1, the same model trained per example (batch 1,
lr 0.01), one epoch each, masking noise 0.25, cross-entropy, the same seed
and thread count on both sides. For each pair it prints the command's
training seconds (its metrics.csv) and whole wall time, Python's training
seconds (`history_`) and the wall time of `fit` (which adds converting and
checking the array), their final losses (close, not equal: the command
shuffles its pool with the seed before it trains, so its batches hold other
rows), and the ratio Python / command. Usage:

  bench/python_overhead.py MNIST_DIR [--aekit target/release/aekit]
                           [--threads 2] [--repeats 3] [--only W1,W2]
"""

import argparse
import csv
import gzip
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import aekit

WORKLOADS = {"W2": {"batch": 100, "lr": 0.1}, "W1": {"batch": 1, "lr": 0.01}}


def load_mnist(folder):
    with gzip.open(Path(folder) / "train-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0


def command(binary, mnist, w, threads, seed):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = [
            binary, "train", "--data", str(mnist), "--val-size", "0", "--epochs", "1",
            "--batch", str(w["batch"]), "--lr", str(w["lr"]), "--noise", "mask:0.25",
            "--threads", str(threads), "--seed", str(seed), "--out", str(out), "--force",
        ]
        t = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        wall = time.perf_counter() - t
        rows = list(csv.DictReader(open(out / "metrics.csv")))
        return float(rows[-1]["seconds"]), wall, float(rows[-1]["train_loss"])


def python(x, w, threads, seed):
    m = aekit.DenoisingAutoencoder(
        500, noise="mask:0.25", batch_size=w["batch"], learning_rate=w["lr"],
        max_iter=1, n_jobs=threads, random_state=seed,
    )
    t = time.perf_counter()
    m.fit(x)
    wall = time.perf_counter() - t
    epoch, loss, _, seconds = m.history_[-1]
    return seconds, wall, loss


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mnist")
    p.add_argument("--aekit", default="target/release/aekit")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", default="W2,W1")
    a = p.parse_args()
    x = load_mnist(a.mnist)
    for name in a.only.split(","):
        w = WORKLOADS[name]
        cmd, py = [], []
        for r in range(a.repeats):
            # In turns, so that both see the same state of the machine.
            cmd.append(command(a.aekit, a.mnist, w, a.threads, seed=1))
            py.append(python(x, w, a.threads, seed=1))
        med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
        print(json.dumps({
            "workload": name,
            "threads": a.threads,
            "command_train_s": round(med(cmd, 0), 3),
            "command_wall_s": round(med(cmd, 1), 3),
            "python_train_s": round(med(py, 0), 3),
            "python_fit_wall_s": round(med(py, 1), 3),
            "ratio_train": round(med(py, 0) / med(cmd, 0), 3),
            "ratio_fit_wall_to_command_train": round(med(py, 1) / med(cmd, 0), 3),
            "loss_command": cmd[-1][2],
            "loss_python": py[-1][2],
        }), flush=True)


if __name__ == "__main__":
    main()
