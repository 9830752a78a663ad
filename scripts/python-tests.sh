#!/usr/bin/env bash
# The Python package: a virtual environment with pinned maturin, numpy,
# scikit-learn and pytest, the extension built in release mode into it, then
# its tests. Run from anywhere; the environment is kept in .venv-py/ at the
# repository root (ignored by git) and reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-py"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
    "maturin==1.16.0" "numpy==2.4.6" "scikit-learn==1.9.1" "pytest==9.2.0"
cd "$root/crates/aekit-py"
# The workspace's target folder: the library's compiled dependencies are reused.
export CARGO_TARGET_DIR="$root/target"
cargo fmt --check
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" PYO3_PYTHON="$venv/bin/python" \
    cargo clippy --release -- -D warnings
VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet
"$venv/bin/python" -m pytest -q tests
