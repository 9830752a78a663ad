#!/usr/bin/env python3
"""scikit-image's biharmonic inpainting on the images and masks of an
`aekit inpaint` run, for the masked-region MSE beside aekit's (run by hand;
needs numpy and scikit-image).

Usage: inpaint_baselines.py RUN_DIR CLEAN.npy
       inpaint_baselines.py MASK.npy CLEAN.npy
  RUN_DIR  an `aekit inpaint` run folder (mask.npy, summary.json)
  MASK.npy a mask `aekit experiment inpaint --save-inputs` writes to inputs/
           (<data>-<mask>-mask.npy; the clean images are <data>-clean.npy)
  CLEAN    the same images, clean, as [n, h*w] float32 in [0, 1] (for the
           built-in or MNIST test images: `aekit encode`-style exports, or
           the script's --mnist option)
  --mnist DIR  take the clean images from MNIST's t10k file in DIR instead
"""

import gzip
import json
import sys

import numpy as np
from skimage.restoration import inpaint_biharmonic


def main():
    run = sys.argv[1]
    if sys.argv[2] == "--mnist":
        with gzip.open(f"{sys.argv[3]}/t10k-images-idx3-ubyte.gz", "rb") as f:
            clean = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784) / 255.0
    else:
        clean = np.load(sys.argv[2]).astype(np.float64)
    mask = np.load(run if run.endswith(".npy") else f"{run}/mask.npy") > 0.5
    n, d = mask.shape
    side = int(round(d**0.5))
    clean = clean[:n]
    se, count = 0.0, 0
    for i in range(n):
        img = clean[i].reshape(side, side).copy()
        m = mask[i].reshape(side, side)
        img[m] = 0.0
        out = inpaint_biharmonic(img, m)
        se += ((out[m] - clean[i].reshape(side, side)[m]) ** 2).sum()
        count += m.sum()
    aekit = None if run.endswith(".npy") else json.load(open(f"{run}/summary.json"))["masked_mse"]
    print(json.dumps({"n": n, "biharmonic_masked_mse": se / max(count, 1), "aekit": aekit}, indent=1))


if __name__ == "__main__":
    main()
