# %% [markdown]
# # A denoising autoencoder on MNIST from Python
#
# Trains aekit's tied 784→500 denoising autoencoder on MNIST's 60,000
# training digits held in NumPy arrays, draws some of its filters with
# matplotlib, and feeds its codes to a scikit-learn classifier. A script in
# notebook form (cells marked `# %%`): run it whole with
#
#     pip install ./crates/aekit-py matplotlib
#     python docs/examples/mnist_dae.py [MNIST_DIR]
#
# or open it as a notebook in an editor that reads such cells. MNIST_DIR
# holds the four IDX files (`train-images-idx3-ubyte.gz`, ...); the default
# is `../shared/datasets/mnist`. What it printed and drew is in
# [python-example.md](python-example.md).

# %%
import gzip
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import aekit  # noqa: E402

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/datasets/mnist")


def idx(name, offset):
    with gzip.open(folder / name, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


X_train = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
y_train = idx("train-labels-idx1-ubyte.gz", 8)
X_test = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 784).astype(np.float32) / 255
y_test = idx("t10k-labels-idx1-ubyte.gz", 8)
print(X_train.shape, X_test.shape)

# %% [markdown]
# ## Train
# Masking noise sets a quarter of each input's pixels to 0; the model learns
# to restore them (cross-entropy against the clean digit).

# %%
dae = aekit.DenoisingAutoencoder(
    500, noise="mask:0.25", max_iter=5, batch_size=20, learning_rate=0.1, random_state=1, n_jobs=2, verbose=1
)
t = time.perf_counter()
dae.fit(X_train)
print(f"5 epochs in {time.perf_counter() - t:.1f} s; test loss {-dae.score(X_test):.2f} per digit")

# %% [markdown]
# ## Filters
# Each row of `components_` is one hidden unit's weights over the 28×28
# pixels.

# %%
fig, axes = plt.subplots(10, 10, figsize=(8, 8))
for ax, w in zip(axes.flat, dae.components_[:100]):
    ax.imshow(w.reshape(28, 28), cmap="gray")
    ax.axis("off")
fig.tight_layout()
out = Path(__file__).with_name("mnist_dae_filters.png")
fig.savefig(out, dpi=80)
print("filters drawn in", out)

# %% [markdown]
# ## Codes for a classifier
# Logistic regression on the 500 codes against the same on the 784 pixels,
# trained on the first 20,000 digits, scored on the 10,000 test digits.

# %%
n = 20000
for name, tr, te in [
    ("pixels", X_train[:n], X_test),
    ("DAE codes", dae.transform(X_train[:n]), dae.transform(X_test)),
]:
    clf = LogisticRegression(max_iter=500).fit(tr, y_train[:n])
    print(f"{name}: test accuracy {clf.score(te, y_test):.4f}")
