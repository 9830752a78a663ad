#!/usr/bin/env python3
"""PyTorch's side of aekit's GPU and many-core comparisons (run by hand or by
bench/device.sh; needs torch and numpy).

The workloads, each on MNIST's 60k training images scaled to [0, 1]:
  W1  tied 784→500 DAE, per-example SGD (batch 1), masking noise 0.25,
      cross-entropy, hand-written steps: eagerly, and 200 steps per CUDA graph
  W2  the same model at batch 100 (hand-written steps)
  W3  the 784-1000-1000 gradual phase: two sigmoid layers and a decoder to
      784, masking noise 0.25 on x, batch 20, SGD lr 0.01 momentum 0.9, BCE
      (torch.nn + autograd + torch.optim)
  W4  `cae-mnist`: conv 1→16 3×3 pad 1, ReLU, maxpool 2, conv 16→32, ReLU,
      maxpool 2, ConvTranspose 32→16 and 16→1 (3×3, stride 2, pad 1,
      output_padding 1) with a ReLU between, sigmoid; ½·squared error per
      image, batch 100, Adam lr 1e-3 (cuDNN autotuned on the GPU)
  sparse  the sparse autoencoder exercise's cost and gradient (784→196→784,
      sigmoid units, ½·squared error per image, weight decay 3e-3, KL
      sparsity ρ = 0.1, β = 3) on the first `--examples` images, autograd:
      seconds per evaluation (what one L-BFGS iteration costs), and the
      seconds of its three dense products alone (a2·W2ᵀ, δ3ᵀ·a2, δ3·W2),
      a floor for any implementation that computes them in f32

Prints one JSON object per line: {"workload", "device", "threads",
"examples", "seconds", "sec_per_60k"}. Usage:
  torch_ref.py MNIST_DIR --device cuda [--only W2,W3] [--examples N]
  torch_ref.py MNIST_DIR --device cpu --threads 16 --examples 10000
  torch_ref.py MNIST_DIR --device cpu --threads 2 --examples 10000 --only sparse
"""

import argparse
import gzip
import json
import math
import time

import numpy as np
import torch


def load_mnist(folder):
    with gzip.open(f"{folder}/train-images-idx3-ubyte.gz", "rb") as f:
        raw = f.read()
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def report(workload, dev, threads, examples, seconds):
    print(
        json.dumps(
            {
                "workload": workload,
                "device": str(dev),
                "threads": threads,
                "examples": examples,
                "seconds": round(seconds, 4),
                "sec_per_60k": round(seconds * 60000 / examples, 4),
            }
        ),
        flush=True,
    )


def tied_params(dev, nv=784, nh=500, seed=1):
    g = torch.Generator(device="cpu").manual_seed(seed)
    r = 4 * math.sqrt(6 / (nv + nh))
    w = ((torch.rand(nv, nh, generator=g) * 2 - 1) * r).to(dev)
    return w, torch.zeros(nh, device=dev), torch.zeros(nv, device=dev)


def tied_step(x, w, b, c, lr):
    """One SGD step of the tied DAE on the rows of x (in place)."""
    xt = x * (torch.rand_like(x) >= 0.25)
    h = torch.sigmoid(xt @ w + b)
    a = h @ w.t() + c
    n = x.shape[0]
    da = (torch.sigmoid(a) - x) / n
    dh = (da @ w) * h * (1 - h)
    w.sub_(lr * (xt.t() @ dh + da.t() @ h))
    b.sub_(lr * dh.sum(0))
    c.sub_(lr * da.sum(0))


def w_tied(X, dev, batch, examples, lr):
    w, b, c = tied_params(dev)
    perm = torch.randperm(X.shape[0], device=dev)[:examples]
    for i in range(0, 20 * batch, batch):  # warm-up
        tied_step(X[perm[i : i + batch]], w, b, c, lr)
    sync(dev)
    t0 = time.perf_counter()
    for i in range(0, examples, batch):
        tied_step(X[perm[i : i + batch]], w, b, c, lr)
    sync(dev)
    return time.perf_counter() - t0


def w1_graph(X, dev, examples, steps=200):
    """Per-example SGD with `steps` steps captured per CUDA graph."""
    w, b, c = tied_params(dev)
    static = torch.zeros(steps, 784, device=dev)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for t in range(3):
            tied_step(static[t : t + 1], w, b, c, 0.01)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for t in range(steps):
            tied_step(static[t : t + 1], w, b, c, 0.01)
    perm = torch.randperm(X.shape[0], device=dev)
    examples -= examples % steps
    sync(dev)
    t0 = time.perf_counter()
    for i in range(0, examples, steps):
        static.copy_(X[perm[i : i + steps]])
        g.replay()
    sync(dev)
    return time.perf_counter() - t0, examples


def w3(X, dev, examples):
    torch.manual_seed(1)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 1000),
        torch.nn.Sigmoid(),
        torch.nn.Linear(1000, 1000),
        torch.nn.Sigmoid(),
        torch.nn.Linear(1000, 784),
    ).to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    lossf = torch.nn.BCEWithLogitsLoss(reduction="sum")
    perm = torch.randperm(X.shape[0], device=dev)[:examples]

    def step(x):
        xt = x * (torch.rand_like(x) >= 0.25)
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xt), x) / x.shape[0]
        loss.backward()
        opt.step()

    for i in range(0, 400, 20):
        step(X[perm[i : i + 20]])
    sync(dev)
    t0 = time.perf_counter()
    for i in range(0, examples, 20):
        step(X[perm[i : i + 20]])
    sync(dev)
    return time.perf_counter() - t0


def w4(X, dev, examples):
    torch.manual_seed(1)
    torch.backends.cudnn.benchmark = True
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),
    ).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    Xi = X.view(-1, 1, 28, 28)
    perm = torch.randperm(X.shape[0], device=dev)[:examples]

    def step(x):
        opt.zero_grad(set_to_none=True)
        loss = 0.5 * ((net(x) - x) ** 2).sum() / x.shape[0]
        loss.backward()
        opt.step()

    for i in range(0, 2000, 100):
        step(Xi[perm[i : i + 100]])
    sync(dev)
    t0 = time.perf_counter()
    for i in range(0, examples, 100):
        step(Xi[perm[i : i + 100]])
    sync(dev)
    return time.perf_counter() - t0


def sparse_eval(X, dev, examples, evals=20):
    """Seconds per evaluation of the sparse exercise's cost and gradient, and
    of its three dense products alone."""
    g = torch.Generator(device="cpu").manual_seed(1)
    r = math.sqrt(6.0 / (784 + 196 + 1))
    w1 = ((torch.rand(196, 784, generator=g) * 2 - 1) * r).to(dev).requires_grad_()
    w2 = ((torch.rand(784, 196, generator=g) * 2 - 1) * r).to(dev).requires_grad_()
    b1 = torch.zeros(196, device=dev, requires_grad=True)
    b2 = torch.zeros(784, device=dev, requires_grad=True)
    x = X[:examples]
    m, rho, beta, lam = x.shape[0], 0.1, 3.0, 3e-3

    def evaluate():
        for p in (w1, w2, b1, b2):
            p.grad = None
        a2 = torch.sigmoid(x @ w1.T + b1)
        a3 = torch.sigmoid(a2 @ w2.T + b2)
        rh = a2.mean(0)
        kl = (rho * torch.log(rho / rh) + (1 - rho) * torch.log((1 - rho) / (1 - rh))).sum()
        cost = 0.5 * ((a3 - x) ** 2).sum() / m + 0.5 * lam * ((w1**2).sum() + (w2**2).sum()) + beta * kl
        cost.backward()
        return cost

    for _ in range(3):
        evaluate()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(evals):
        evaluate()
    sync(dev)
    per_eval = (time.perf_counter() - t0) / evals
    with torch.no_grad():
        a2 = torch.sigmoid(x @ w1.T + b1)
        d3 = torch.rand(m, 784, generator=g).to(dev)
        products = (lambda: a2 @ w2.T, lambda: d3.T @ a2, lambda: d3 @ w2)
        for f in products:
            f()
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(evals):
            for f in products:
                f()
        sync(dev)
    return per_eval, (time.perf_counter() - t0) / evals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnist")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--examples", type=int, default=60000)
    ap.add_argument("--only", default="W1,W1graph,W2,W2b1000,W3,W4")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    X = torch.from_numpy(load_mnist(a.mnist)).to(dev)
    n = min(a.examples, X.shape[0])
    only = a.only.split(",")
    th = torch.get_num_threads()
    if "W1" in only:
        m = min(n, 3000)
        report("W1 eager, batch 1", dev, th, m, w_tied(X, dev, 1, m, 0.01))
    if "W1graph" in only and dev.type == "cuda":
        secs, m = w1_graph(X, dev, n)
        report("W1, 200 steps per CUDA graph", dev, th, m, secs)
    if "W2" in only:
        report("W2, batch 100", dev, th, n, w_tied(X, dev, 100, n, 0.1))
    if "W2b1000" in only:
        report("W2, batch 1000", dev, th, n, w_tied(X, dev, 1000, n, 0.1))
    if "W3" in only:
        report("W3 gradual 784-1000-1000, batch 20", dev, th, n, w3(X, dev, n))
    if "W4" in only:
        report("W4 cae-mnist, batch 100, Adam", dev, th, n, w4(X, dev, n))
    if "sparse" in only:
        secs, dense = sparse_eval(X, dev, n)
        print(
            json.dumps(
                {
                    "workload": "sparse exercise, cost and gradient, 784-196",
                    "device": str(dev),
                    "threads": th,
                    "examples": n,
                    "seconds_per_evaluation": round(secs, 4),
                    "dense_products_seconds": round(dense, 4),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
