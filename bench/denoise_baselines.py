#!/usr/bin/env python3
"""scikit-image's non-local means and total-variation denoising on the very
images of an `aekit denoise --noise ...` run, for PSNR and SSIM beside
aekit's (run by hand; needs numpy and scikit-image).

Usage: denoise_baselines.py RUN_DIR IDX_GZ [--n N]
       denoise_baselines.py NOISY.npy CLEAN.npy [--n N]
  RUN_DIR  an `aekit denoise` run folder that corrupted its images
           (noisy.npy, denoised.npy, summary.json)
  IDX_GZ   the clean images the run read, in the same order (for
           `--data mnist --split test`: MNIST's t10k-images-idx3-ubyte.gz)
  NOISY.npy, CLEAN.npy  the files `aekit experiment denoise --save-inputs`
           writes to inputs/ (<data>-<noise>.npy, <data>-clean.npy)
  --n N    measure the first N images (default all)

Each filter's parameter is tuned on the first 200 of those images, as the
run's Gaussian blur is on its first 500; PSNR is 10·log10(1/MSE) per image
on the raw values (data range 1), SSIM skimage's with data range 1 and
the Gaussian 11-tap window of σ 1.5 (Wang et al.'s, which aekit uses),
both averaged over the images, as `aekit denoise` computes them. Prints one JSON
line per method: noisy, aekit (from denoised.npy), nl-means, tv.
"""

import gzip
import json
import sys
import time

import numpy as np
from skimage.metrics import structural_similarity
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle


def scores(clean, out, side):
    p, s = [], []
    for c, o in zip(clean, out):
        mse = np.mean((o.astype(np.float64) - c) ** 2)
        p.append(-10 * np.log10(mse))
        s.append(
            structural_similarity(
                c.reshape(side, side),
                o.reshape(side, side).astype(np.float64),
                data_range=1.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        )
    return float(np.mean(p)), float(np.mean(s))


def main():
    run, idx = sys.argv[1], sys.argv[2]
    n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else None
    if run.endswith(".npy"):
        # An experiment's inputs: the noisy and the clean images, no model output.
        noisy, den, summary = np.load(run)[:n], None, {}
    else:
        noisy = np.load(f"{run}/noisy.npy")[:n]
        den = np.load(f"{run}/denoised.npy")[:n]
        summary = json.load(open(f"{run}/summary.json"))
    n, d = noisy.shape
    side = int(round(d**0.5))
    if idx.endswith(".npy"):
        clean = np.load(idx)[:n].astype(np.float64)
    else:
        with gzip.open(idx, "rb") as f:
            clean = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, d)[:n] / 255.0

    def report(method, out, seconds=None, **extra):
        p, s = scores(clean, out, side)
        row = {"method": method, "n": n, "psnr": round(p, 3), "ssim": round(s, 4), **extra}
        if seconds is not None:
            row["seconds"] = round(seconds, 2)
        print(json.dumps(row), flush=True)

    report("noisy", noisy, run_summary_psnr_noisy=summary.get("psnr", {}).get("noisy"))
    if den is not None:
        report("aekit", den)
    img = lambda x: x.reshape(side, side).astype(np.float64)  # noqa: E731
    tune = slice(0, min(200, n))

    # The noise's spread, measured on the tuning images (as the parameters
    # are tuned there against the clean images).
    sigma = float(np.std(noisy[tune] - clean[tune]))

    def nlm(x, k):
        return denoise_nl_means(img(x), h=k * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True).ravel()

    k = max([0.3, 0.45, 0.6, 0.8, 1.0], key=lambda k: scores(clean[tune], [nlm(x, k) for x in noisy[tune]], side)[0])
    t = time.perf_counter()
    report("nl-means", np.array([nlm(x, k) for x in noisy]), time.perf_counter() - t, h_over_sigma=k, sigma=round(sigma, 3))

    def tv(x, w):
        return denoise_tv_chambolle(img(x), weight=w).ravel()

    w = max([0.1, 0.2, 0.3, 0.5, 0.8, 1.2, 2.0], key=lambda w: scores(clean[tune], [tv(x, w) for x in noisy[tune]], side)[0])
    t = time.perf_counter()
    report("tv-chambolle", np.array([tv(x, w) for x in noisy]), time.perf_counter() - t, weight=w)


if __name__ == "__main__":
    main()
