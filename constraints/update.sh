#!/usr/bin/env bash
# Regenerate constraints/test.txt: every package of `pip install -e '.[test]'` pinned, for every platform
# and every Python this project supports (uv's universal resolution, lower bound Python 3.11).
# Run after changing dependencies in pyproject.toml; tests/test_packaging.py fails until you do.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q "uv==0.13.8"
"$tmp/venv/bin/uv" pip compile pyproject.toml --extra test --universal --python-version 3.11 \
    --custom-compile-command "constraints/update.sh" --quiet -o constraints/test.txt
