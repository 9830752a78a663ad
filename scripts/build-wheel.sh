#!/usr/bin/env bash
# A wheel of the Python package that installs on any x86-64 Linux with
# glibc 2.17 or later (manylinux2014), whatever this machine's glibc: maturin
# links it with zig (the `ziglang` package from PyPI). Pinned maturin and
# ziglang go into .venv-wheel/ (ignored by git); the wheel into
# target/wheels/. Takes about 4 minutes on 2 cores from cold. Run by hand.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-wheel"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin==1.16.0" "ziglang==0.17.1"
cd "$root/crates/aekit-py"
# Its own target folder: zig-linked objects do not mix with the others.
CARGO_TARGET_DIR="$root/target/wheel" PATH="$venv/bin:$PATH" \
    "$venv/bin/maturin" build --release --zig --compatibility manylinux2014 --out "$root/target/wheels"
ls -1 "$root"/target/wheels/aekit-*manylinux2014*.whl
