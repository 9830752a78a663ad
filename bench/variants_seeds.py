#!/usr/bin/env python3
"""Settings of `aekit experiment variants` run with several network seeds,
averaged over the seeds (run by hand; standard library only).

Reads docs/results/variants/tuning.csv (or the file given), groups its rows
by setting (everything but the fine-tuning rate, the test and validation
errors, the seed and the code revision), and for each setting run with two
or more seeds:

- keeps the fine-tuning rates that every seed ran, so that each seed is
  offered the same choice;
- lets each seed choose its rate as one run of the experiment does: the
  lowest validation error, ties to the smaller rate;
- prints each seed's choice, and the mean and spread of the chosen test and
  validation errors over the seeds.

Usage: variants_seeds.py [CSV] [--variant rot] [--depth 3]
"""

import csv
import statistics
import sys
from collections import defaultdict

RESULT = {"finetune_lr", "test_error", "valid_error", "seed", "code"}


def main(argv):
    path = "docs/results/variants/tuning.csv"
    want = {}
    args = list(argv)
    while args:
        a = args.pop(0)
        if a in ("--variant", "--depth"):
            if not args:
                sys.exit(f"{a} needs a value")
            want[a[2:]] = args.pop(0)
        elif a.startswith("--"):
            sys.exit(f"unknown option {a}")
        else:
            path = a
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"{path}: {e.strerror}")
    if not rows:
        sys.exit(f"{path}: no rows")
    missing = RESULT - set(rows[0])
    if missing:
        sys.exit(f"{path}: no column {', '.join(sorted(missing))}")

    groups = defaultdict(lambda: defaultdict(dict))
    for line, r in enumerate(rows, start=2):
        if any(r.get(k) != v for k, v in want.items()):
            continue
        key = tuple((k, v) for k, v in r.items() if k not in RESULT)
        try:
            lr = float(r["finetune_lr"])
            test, valid = float(r["test_error"]), float(r["valid_error"])
            int(r["seed"])
        except ValueError:
            sys.exit(f"{path}, row {line}: a rate, an error or the seed is not a number")
        # A rate run twice for one seed (another code revision) keeps its first row.
        groups[key][r["seed"]].setdefault(lr, (valid, test))

    found = False
    for key, seeds in groups.items():
        if len(seeds) < 2:
            continue
        rates = set.intersection(*(set(by_lr) for by_lr in seeds.values()))
        if not rates:
            continue
        found = True
        setting = ", ".join(f"{k} {v}" for k, v in key)
        print(f"{setting}\n  fine-tuning rates offered to every seed: {', '.join(map(str, sorted(rates)))}")
        tests, valids = [], []
        for seed in sorted(seeds, key=int):
            lr = min(sorted(rates), key=lambda x: seeds[seed][x][0])
            valid, test = seeds[seed][lr]
            tests.append(test)
            valids.append(valid)
            print(f"  seed {seed}: rate {lr}, test {test:.2f}%, validation {valid:.2f}%")
        sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
        print(
            f"  mean over {len(tests)} seeds: test {statistics.mean(tests):.2f}% (sd {sd:.2f}), "
            f"validation {statistics.mean(valids):.2f}%\n"
        )
    if not found:
        print("no setting was run with two or more seeds at the same fine-tuning rates")


if __name__ == "__main__":
    main(sys.argv[1:])
