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
py=${PEER_PYTHON:-$(command -v python3.12 || command -v python3)}
cp bench/peers/python/handler.py bench/peers/python/bootstrap.py bench/peers/python/requirements.txt "$out/python/"
if [ ! -x "$out/python/venv/bin/python" ]; then
  "$py" -m venv "$out/python/venv"
fi
"$out/python/venv/bin/pip" install --quiet -r "$out/python/requirements.txt"
"$out/python/venv/bin/python" -m compileall -q "$out/python" > /dev/null || true

# Node: the SDK v3 clients and Powertools, bundled into one file with esbuild.
cp bench/peers/node/index.mjs bench/peers/node/bootstrap.mjs bench/peers/node/package.json "$out/node/"
(cd "$out/node" && npm install --silent --no-audit --no-fund && npm run --silent build)
