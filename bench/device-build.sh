#!/usr/bin/env bash
# Builds what bench/device.sh runs on a GPU machine that has no Rust: the
# aekit binary with the `cuda` feature, the GPU test binary and the library's
# unit-test binary (for its ignored speed tests), stripped,
# into .device/ with MNIST's files (from $MNIST_DIR, default
# ../shared/datasets/mnist). .device/ is ignored by git.
set -euo pipefail
cd "$(dirname "$0")/.."
MNIST_DIR=${MNIST_DIR:-../shared/datasets/mnist}
mkdir -p .device/mnist
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
cargo build --release --features cuda -p aekit-cli
cp target/release/aekit .device/aekit
tests=$(cargo test --release --features cuda -p aekit --test gpu --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])' | tail -1)
cp "$tests" .device/gpu-tests
lib=$(cargo test --release -p aekit --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["lib"]:
        print(m["executable"])' | tail -1)
cp "$lib" .device/lib-tests
strip .device/aekit .device/gpu-tests .device/lib-tests
# The Python extension, for bench/python_vs_torch.py (scripts/python-tests.sh builds it).
so=crates/aekit-py/python/aekit/_aekit.abi3.so
if [ -f "$so" ]; then cp "$so" .device/; else echo "no $so: run scripts/python-tests.sh first for the python part"; fi
cp "$MNIST_DIR"/train-images-idx3-ubyte.gz "$MNIST_DIR"/train-labels-idx1-ubyte.gz \
    "$MNIST_DIR"/t10k-images-idx3-ubyte.gz "$MNIST_DIR"/t10k-labels-idx1-ubyte.gz .device/mnist/
du -sh .device
