#!/usr/bin/env python3
"""MICE and k-NN imputation on the masks `aekit experiment imputation` wrote.

    python3 bench/impute_baselines.py RUN_DIR/masks RUN_DIR/baselines.csv

For every `<dataset>-<mechanism>-<rate>-<repeat>.csv` in the masks folder
(hidden cells empty) and its `<dataset>-truth.csv`, fills the table with
scikit-learn's IterativeImputer (MICE: BayesianRidge, 10 rounds, seeded) and
KNNImputer (5 neighbours), and writes the RMSE over the hidden cells on the
complete table's standardised scale, the sum of per-column RMSEs, and the
seconds each took, in aekit's results.csv columns. At MCAR 20% it also
scores 20 MICE fillings drawn with `sample_posterior=True` the way aekit
scores its `--m` draws (the share of hidden cells inside the draws' 5–95%
range), into `OUT-coverage.csv`. Run by hand (not by CI);
needs numpy and scikit-learn (`pip install scikit-learn`). On tables wider
than 100 columns (MNIST), MICE regresses each column on its 50 most
correlated ones for 3 rounds (all columns for 10 rounds would take hours),
and k-NN runs on the first repeat of each setting only (KNNImputer took
344 s for one 10,000 × 784 mask on a 2-core Zen 5). As in aekit, MNIST's pixels are compared on their own [0, 1]
scale.
"""
import glob, os, re, sys, time
import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, KNNImputer


def load(path):
    return np.genfromtxt(path, delimiter=",", skip_header=1, missing_values="", filling_values=np.nan)


def errors(truth, hidden, filled, sd):
    e = (filled - truth) / sd
    se = np.where(hidden, e * e, 0.0)
    count = hidden.sum()
    per = [np.sqrt(se[:, j].sum() / hidden[:, j].sum()) for j in range(truth.shape[1]) if hidden[:, j].any()]
    return np.sqrt(se.sum() / max(count, 1)), float(np.sum(per))


def coverage(x, truth, hidden, rep, draws=20):
    """Share of hidden cells whose true value lies in the 5–95% range of
    `draws` MICE fillings with posterior sampling (as aekit's draws are
    scored: the sorted draws' entries at rounded 5% and 95% positions)."""
    runs = np.stack(
        [
            IterativeImputer(max_iter=10, sample_posterior=True, random_state=1000 * int(rep) + k).fit_transform(x)
            for k in range(draws)
        ]
    )
    runs.sort(axis=0)
    lo, hi = runs[round(0.05 * (draws - 1))], runs[round(0.95 * (draws - 1))]
    inside = (truth >= lo) & (truth <= hi)
    return float(inside[hidden].mean())


def main(masks, out):
    rows = ["dataset,mechanism,rate,method,repeat,rmse,rmse_sum_columns,seconds"]
    cover = ["dataset,repeat,draws,coverage90"]
    pat = re.compile(r"(.+)-(mcar|mnar)-([0-9.]+)-([0-9]+)\.csv$")
    for f in sorted(glob.glob(os.path.join(masks, "*.csv"))):
        m = pat.match(os.path.basename(f))
        if not m:
            continue
        name, mech, rate, rep = m.groups()
        truth = load(os.path.join(masks, f"{name}-truth.csv"))
        x = load(f)
        hidden = np.isnan(x)
        sd = truth.std(axis=0)
        sd[sd < 1e-12] = 1.0
        if name == "mnist":
            sd[:] = 1.0
        if x.shape[1] <= 100:
            methods = [
                ("mice", lambda: IterativeImputer(max_iter=10, random_state=int(rep))),
                ("knn", lambda: KNNImputer(n_neighbors=5)),
            ]
        else:
            # Wide tables (MNIST): each column regressed on its 50 most
            # correlated columns, 3 rounds; all 783 others and 10 rounds
            # would take hours.
            methods = [
                (
                    "mice",
                    lambda: IterativeImputer(max_iter=3, n_nearest_features=50, random_state=int(rep)),
                ),
            ]
            # k-NN takes about 6 minutes a 10,000 × 784 mask: the first
            # repeat of each setting only.
            if rep == "0":
                methods.append(("knn", lambda: KNNImputer(n_neighbors=5)))
        for label, make in methods:
            t = time.perf_counter()
            filled = make().fit_transform(x)
            secs = time.perf_counter() - t
            # A column the imputer dropped (all missing) cannot happen: aekit keeps one cell.
            r, s = errors(truth, hidden, filled, sd)
            rows.append(f"{name},{mech},{rate},{label},{rep},{r:.6f},{s:.6f},{secs:.4f}")
            print(f"{name} {mech} {rate} #{rep}: {label} {r:.4f} ({secs:.2f} s)", file=sys.stderr)
        # Multiple imputation: MICE's posterior draws at MCAR 20%, as aekit's.
        if mech == "mcar" and abs(float(rate) - 0.2) < 1e-9 and x.shape[1] <= 100:
            c = coverage(x, truth, hidden, rep)
            cover.append(f"{name},{rep},20,{c:.4f}")
            print(f"{name} {mech} {rate} #{rep}: mice draws cover {c:.3f}", file=sys.stderr)
    with open(out, "w") as fh:
        fh.write("\n".join(rows) + "\n")
    stem = out[:-4] if out.endswith(".csv") else out
    with open(stem + "-coverage.csv", "w") as fh:
        fh.write("\n".join(cover) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
