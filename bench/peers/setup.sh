#!/usr/bin/env bash
# Installs the Python and Node peers into target/bench-peers (git-ignored), never into
# the project. Idempotent: a second run reuses what is there.
# Usage: bench/peers/setup.sh   (PEER_PYTHON picks the interpreter, default python3.12)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/bench-peers
mkdir -p "$out/python" "$out/node"

# Python: its own venv with Powertools and boto3, byte-compiled up front as a Lambda
# package or layer would ship it.
# A version-manager shim may exist for a version that is not installed: take the first
# interpreter that actually runs.
py=${PEER_PYTHON:-}
if [ -z "$py" ]; then
  for candidate in python3.12 python3; do
    if command -v "$candidate" > /dev/null && "$candidate" -c 'import venv' 2> /dev/null; then
      py=$candidate
      break
    fi
  done
fi
[ -n "$py" ] || { echo "no working python3 found (set PEER_PYTHON)" >&2; exit 1; }
cp bench/peers/python/handler.py bench/peers/python/bootstrap.py bench/peers/python/requirements.txt "$out/python/"
if [ ! -x "$out/python/venv/bin/python" ]; then
  "$py" -m venv "$out/python/venv"
fi
"$out/python/venv/bin/pip" install --quiet -r "$out/python/requirements.txt"
"$out/python/venv/bin/python" -m compileall -q "$out/python" > /dev/null || true

# Node: the SDK v3 clients and Powertools, bundled into one file with esbuild.
cp bench/peers/node/index.mjs bench/peers/node/bootstrap.mjs bench/peers/node/package.json "$out/node/"
(cd "$out/node" && npm install --silent --no-audit --no-fund && npm run --silent build)
