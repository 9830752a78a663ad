#!/usr/bin/env python3
"""An RBF-kernel SVM on aekit's generated MNIST variants, to compare how
hard they are with the original files (run by hand; needs numpy and
scikit-learn).

Larochelle et al. (2007) report an RBF SVM on the original sets: rot
11.11%, bg-rand 14.58%, bg-img 22.61%, bg-img-rot 55.18% test error (basic
3.03%). The same classifier on the generated sets says whether a gap
between aekit's SdA-3 and the published SdA-3 errors comes from the
networks or from the data.

Usage: variants_svm.py DIR [DIR ...] [--test N] [--c LIST] [--gamma LIST] [--no-refit]
  DIR      a folder written by `aekit data variants --kind K --out DIR`
           (12,000 training images: the first 10,000 train, the last 2,000
           validate; 50,000 test images)
  --test N score the first N test images (default all)
  --c LIST, --gamma LIST
           the grid, comma-separated (default 1,10 and 0.01,0.03)
  --no-refit
           score the SVM fitted on the 10,000 training images instead

C and gamma are chosen on the validation images from a small grid around
the values that suit [0, 1] pixels (C in {1, 10}, gamma in {0.01, 0.03}),
then the SVM is refitted on all 12,000 training and validation images, as
Larochelle et al. refitted theirs ("in the case of SVMs, retrained the
models with the entire set after choosing the optimal parameters"), and
scored on the test images. Prints one JSON line per folder, with every
grid point's validation error.
"""

import gzip
import json
import os
import sys
import time

import numpy as np
from sklearn.svm import SVC


def idx(path):
    for p in (path, path + ".gz"):
        if os.path.exists(p):
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rb") as f:
                data = f.read()
            break
    else:
        raise SystemExit(f"{path}: not found (neither it nor {path}.gz exists)")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d):
    x = idx(os.path.join(d, "train-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    y = idx(os.path.join(d, "train-labels-idx1-ubyte"))
    xt = idx(os.path.join(d, "t10k-images-idx3-ubyte")).reshape(-1, 784) / 255.0
    yt = idx(os.path.join(d, "t10k-labels-idx1-ubyte"))
    return x[:10000], y[:10000], x[10000:12000], y[10000:12000], xt, yt


def main():
    args = sys.argv[1:]
    n_test = None
    refit = "--no-refit" not in args
    args = [a for a in args if a != "--no-refit"]
    grid = {"--c": [1.0, 10.0], "--gamma": [0.01, 0.03]}
    if "--test" in args:
        i = args.index("--test")
        n_test = int(args[i + 1])
        del args[i : i + 2]
    for flag in grid:
        if flag in args:
            i = args.index(flag)
            grid[flag] = [float(v) for v in args[i + 1].split(",")]
            del args[i : i + 2]
    if not args:
        raise SystemExit(__doc__)
    for d in args:
        xtr, ytr, xva, yva, xte, yte = load(d)
        if n_test:
            xte, yte = xte[:n_test], yte[:n_test]
        t0 = time.time()
        best = None
        tried = []
        for c in grid["--c"]:
            for g in grid["--gamma"]:
                m = SVC(C=c, gamma=g).fit(xtr, ytr)
                err = 100.0 * np.mean(m.predict(xva) != yva)
                tried.append({"C": c, "gamma": g, "valid_error": round(err, 3)})
                if best is None or err < best[0]:
                    best = (err, c, g, m)
        err_va, c, g, m = best
        if refit:
            m = SVC(C=c, gamma=g).fit(np.vstack([xtr, xva]), np.concatenate([ytr, yva]))
        err_te = 100.0 * np.mean(m.predict(xte) != yte)
        print(
            json.dumps(
                {
                    "data": d,
                    "C": c,
                    "gamma": g,
                    "valid_error": round(err_va, 3),
                    "test_error": round(err_te, 3),
                    "fitted_on": len(ytr) + len(yva) if refit else len(ytr),
                    "n_test": len(yte),
                    "seconds": round(time.time() - t0, 1),
                    "grid": tried,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
