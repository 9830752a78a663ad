#!/usr/bin/env python3
"""aekit's DAE trained from Python against the same model written in
PyTorch on the CPU, in one run on one machine (run by hand or by
bench/device.sh's `python` part; needs numpy and torch, and aekit's Python
extension: the installed package, or the built `_aekit*.so` given with
--core when scikit-learn is not there).

Workloads on MNIST's 60k training images, as in bench/torch_ref.py: W1, the
tied 784→500 DAE trained per example (batch 1, lr 0.01), and W2, the same
at batch 100 (lr 0.1); masking noise 0.25, cross-entropy, one epoch. aekit
trains the whole epoch; PyTorch's hand-written loop runs on part of it
(`--torch-examples`, scaled to 60k). Prints one JSON line per workload
with seconds per 60k images and the ratio PyTorch / aekit. Usage:

  bench/python_vs_torch.py MNIST_DIR --threads 16 [--core path/to/_aekit.abi3.so]
"""

import argparse
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from torch_ref import load_mnist  # noqa: E402

WORKLOADS = {"W2": {"batch": 100, "lr": 0.1}, "W1": {"batch": 1, "lr": 0.01}}


def native_core(path):
    """aekit's native module: from a file, or from the installed package."""
    if path is None:
        from aekit import _aekit

        return _aekit
    loader = importlib.machinery.ExtensionFileLoader("_aekit", path)
    spec = importlib.util.spec_from_file_location("_aekit", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def aekit_epoch(core, x, w, threads):
    settings = {
        "model": {"n_vis": 784, "n_hid": 500, "noise": "mask:0.25", "loss": "xent"},
        "train": {"epochs": 1, "batch": w["batch"], "lr": w["lr"], "seed": 1, "threads": threads, "patience": 0},
    }
    m = core.Dae(json.dumps(settings))
    m.set_threads(threads)
    t = time.perf_counter()
    history = m.fit(x)
    wall = time.perf_counter() - t
    return wall, history[-1][3], history[-1][1]


def torch_epoch(mnist, name, threads, examples):
    out = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "torch_ref.py"), mnist, "--device", "cpu",
         "--threads", str(threads), "--examples", str(examples), "--only", name],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["sec_per_60k"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mnist")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--core", default=None)
    p.add_argument("--torch-examples", type=int, default=10000)
    a = p.parse_args()
    core = native_core(a.core)
    x = load_mnist(a.mnist)
    for name, w in WORKLOADS.items():
        wall, train_s, loss = aekit_epoch(core, x, w, a.threads)
        torch_s = torch_epoch(a.mnist, name, a.threads, a.torch_examples if name == "W2" else 3000)
        print(json.dumps({
            "workload": name,
            "threads": a.threads,
            "aekit_python_fit_s": round(wall, 3),
            "aekit_train_s": round(train_s, 3),
            "aekit_loss": round(loss, 4),
            "torch_s_per_60k": round(torch_s, 3),
            "torch_over_aekit": round(torch_s / wall, 2),
        }), flush=True)


if __name__ == "__main__":
    main()
