#!/usr/bin/env bash
# Cold-start and size benchmark: builds the functions as release zips for x86_64
# and (when the aarch64 std is installed) arm64, installs the Python and Node peers in
# target/bench-peers, then runs dishpatch-coldstart, which writes
# bench/results/coldstart.md and bench/results/coldstart.json.
#
# Usage: bench/coldstart.sh [--runs N] [extra dishpatch-coldstart args]
#   SKIP_BUILD=1  reuse the binaries, zips and dishpatch-coldstart already built
#   SKIP_PEERS=1  reuse the installed peers
#   NO_EMULATOR=1 skip the second set of runs whose first invocation calls moto
#   BASELINE=REV  also run the functions as built from REV (a commit) in the same
#                 rounds, as <function>@REV, and compare: built in a temporary git
#                 worktree into target/bench-coldstart/baseline-REV (kept, reused)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' bench/coldstart.sh; exit 0 ;;
esac
command_line="bench/coldstart.sh $*"
for v in SKIP_BUILD SKIP_PEERS NO_EMULATOR BASELINE; do
  if [ -n "${!v:-}" ]; then command_line="$v=${!v} $command_line"; fi
done
# cargo-lambda and its zig live in the project venv (installed here if missing).
scripts/cargo-lambda install
export PATH="$PWD/.venv/bin:$PATH"
out=target/bench-coldstart
mkdir -p "$out"
# The functions, as template.yaml lists them.
packages=()
for binary in $(sed -n 's/^ *Binary: *//p' template.yaml); do packages+=(-p "$binary"); done
notes=()

baseline=()
if [ -n "${BASELINE:-}" ]; then
  rev=$(git rev-parse --short "$BASELINE^{commit}")
  dir=$out/baseline-$rev
  if [ ! -x "$dir/${packages[1]}" ]; then
    # Built first: it leaves its binaries where the build below puts this tree's.
    echo "building the baseline $rev (log: $out/build-baseline.log)"
    tree=$(mktemp -d)
    git worktree add --detach "$tree" "$rev" > /dev/null
    (cd "$tree" && CARGO_TARGET_DIR="$OLDPWD/target" cargo lambda build --release --x86-64 \
      "${packages[@]}") > "$out/build-baseline.log" 2>&1
    mkdir -p "$dir"
    for ((i = 1; i < ${#packages[@]}; i += 2)); do
      cp "target/x86_64-unknown-linux-gnu/release/${packages[i]}" "$dir/"
    done
    git worktree remove --force "$tree"
    if [ "${SKIP_BUILD:-}" = 1 ]; then
      echo "note: the baseline build replaced target/x86_64-unknown-linux-gnu/release; rebuild without SKIP_BUILD" >&2
    fi
  fi
  baseline=(--baseline "$rev=$dir")
fi

if [ "${SKIP_BUILD:-}" != 1 ]; then
  # What the binaries are built from, for the report (others may edit the tree later).
  echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- shared functions Cargo.toml || echo ' with uncommitted changes in shared/, functions/ or Cargo.toml')" > "$out/build-info"
  echo "building x86_64 release zips (log: $out/build-x86_64.log)"
  cargo lambda build --release --x86-64 --output-format zip \
    --lambda-dir "$out/lambda-x86_64" "${packages[@]}" > "$out/build-x86_64.log" 2>&1
  if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
    echo "building arm64 release zips (log: $out/build-arm64.log)"
    cargo lambda build --release --arm64 --output-format zip \
      --lambda-dir "$out/lambda-arm64" "${packages[@]}" > "$out/build-arm64.log" 2>&1
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  notes+=(--note "arm64 not measured: the aarch64-unknown-linux-gnu standard library is not installed (rustup target add aarch64-unknown-linux-gnu).")
fi

notes+=(
  --note "Timings are for the x86_64 binaries on this machine; the arm64 binaries are built and sized but not run (no arm64 CPU here)."
  --note "Init: from spawning the process until it asks the Runtime API for its first event (SDK clients built). First invocation: from writing the event until the response arrives. Peak RSS: VmHWM of the process after the first response. Init CPU: on-CPU time of all its threads at that point (/proc schedstat)."
  --note "Peers: the same start-up in Python and Node (Powertools Logger, Metrics, idempotency on DynamoDB, batch processor; DynamoDB, SQS and SNS clients), each with a minimal runtime loop (GET next, POST response) that imports the handler first, as the managed runtimes do. They answer the health event. Installed in target/bench-peers, byte-compiled (Python) and bundled with esbuild (Node)."
)

if [ "${SKIP_PEERS:-}" != 1 ]; then
  echo "installing peers in target/bench-peers"
  bench/peers/setup.sh > "$out/peers-setup.log" 2>&1
fi
py=target/bench-peers/python/venv/bin/python
python_label=$("$py" -c 'import sys, importlib.metadata as m; print("Python %d.%d.%d, aws-lambda-powertools %s, boto3 %s" % (sys.version_info[:3] + (m.version("aws-lambda-powertools"), m.version("boto3"))))')
node_label=$(cd target/bench-peers/node && node -e '
const v = (p) => require(`./node_modules/${p}/package.json`).version;
const kb = Math.round(require("fs").statSync("dist/index.mjs").size / 1024);
console.log(`Node ${process.versions.node}, @aws-sdk/client-dynamodb ${v("@aws-sdk/client-dynamodb")}, Powertools ${v("@aws-lambda-powertools/logger")}, esbuild ${v("esbuild")} bundle ${kb} KiB`)')

profile=$(sed -n '/^\[profile.release\]/,/^$/p' Cargo.toml | sed '1d;/^$/d' | paste -sd ';' | sed 's/;/; /g')
notes+=(--note "Functions built from commit $(cat "$out/build-info" 2> /dev/null || echo unknown) by cargo-lambda (zig) with the root Cargo.toml's release profile (\`$profile\`); no other profile is compared here.")

# Raised priority (root only) so concurrent builds on a shared machine disturb the
# timings less; every subject inherits the same priority.
prio=()
if nice -n -15 true 2> /dev/null; then
  prio=(nice -n -15)
  notes+=(--note "Measured at nice -15 (every subject alike) to shield the timings from other work on the machine.")
fi

# The emulator runs (scripts/emulator), provisioned from template.yaml and seeded by the
# local stack, so each function's representative sample event makes real AWS calls.
emulator=()
if [ "${NO_EMULATOR:-}" != 1 ]; then
  echo "starting the emulator (logs: $out/build-local.log, $out/seed.log)"
  cargo build -p dishpatch-local --bin dishpatch-local > "$out/build-local.log" 2>&1
  endpoint=$(scripts/emulator 0)
  moto_pid=$(cat ".local/emulator-${endpoint##*:}.pid")
  trap 'kill "$moto_pid" 2> /dev/null || true' EXIT
  AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=AKIDBENCHCOLDSTART00 AWS_SECRET_ACCESS_KEY=bench \
    target/debug/dishpatch-local seed --endpoint "$endpoint" --prefix coldstart > "$out/seed.log" 2>&1
  emulator=(--endpoint "$endpoint" --prefix coldstart)
fi

# What-if runs for the diagnosis: the SDK loads the system's root certificates when a
# client is built; this shows what that costs (one bundle file instead of the hashed
# per-certificate directory, and no roots at all as the lower bound).
what_if=(--what-if SSL_CERT_FILE=/dev/null)
for bundle in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$bundle" ]; then
    what_if=(--what-if "SSL_CERT_FILE=$bundle" "${what_if[@]}")
    break
  fi
done

if [ "${SKIP_BUILD:-}" != 1 ] || [ ! -x target/release/dishpatch-coldstart ]; then
  echo "building dishpatch-coldstart"
  cargo build --release -p dishpatch-coldstart > "$out/build-tool.log" 2>&1
fi
"${prio[@]}" target/release/dishpatch-coldstart \
  --node "$(command -v node)" \
  --python-label "$python_label" --node-label "$node_label" \
  --command "$command_line" "${emulator[@]}" "${what_if[@]}" "${baseline[@]}" "${notes[@]}" "$@"
