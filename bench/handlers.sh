#!/usr/bin/env bash
# Handler CPU per event without I/O (criterion, shared/benches/handlers.rs): runs the
# benchmarks and writes bench/results/handlers.md from criterion's estimates.
#
# Usage: bench/handlers.sh [criterion args, e.g. --measurement-time 10]
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="bench/handlers.sh $*"
cargo bench -p dishpatch-shared --bench handlers -- "$@"

# Median of one benchmark, in nanoseconds, from criterion's estimates.json.
median_ns() {
  sed -E 's/.*"median":\{"confidence_interval":\{[^}]*\},"point_estimate":([0-9.]+).*/\1/' \
    "target/criterion/$1/new/estimates.json"
}

out=bench/results/handlers.md
target_us=50
{
  echo "## Handler CPU per event, without I/O"
  echo
  echo "Command: \`$command_line\`  "
  echo "Date: $(date -u)  "
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -sr), $(rustc --version)  "
  echo "Load average (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Release profile of the root Cargo.toml; criterion's median of its samples. Each"
  echo "batch runs the work of every event in it; per event = batch / size."
  echo
  echo "| benchmark | what it does | batch | median per batch (µs) | per event (µs) | ≤ ${target_us} µs per event |"
  echo "|---|---|---:|---:|---:|---|"
  describe() {
    case "$1" in
      validate_and_price) echo "order-api: parse and validate the body, price it from a 20-item menu" ;;
      saga_transition) echo "order-saga: the transition, the next order and its outbox envelopes" ;;
      envelope_decode_encode) echo "a worker: decode an envelope, encode the one it sends" ;;
      sqs_dispatch) echo "the shared runtime: Lambda SQS event JSON to handler and batch response" ;;
    esac
  }
  for group in validate_and_price saga_transition envelope_decode_encode sqs_dispatch; do
    for n in 1 10; do
      ns=$(median_ns "$group/$n")
      batch=$(awk -v ns="$ns" 'BEGIN { printf "%.2f", ns / 1000 }')
      each=$(awk -v ns="$ns" -v n="$n" 'BEGIN { printf "%.2f", ns / 1000 / n }')
      met=$(awk -v e="$each" -v t="$target_us" 'BEGIN { print (e <= t) ? "met" : "**not met**" }')
      echo "| $group | $(describe "$group") | $n | $batch | $each | $met |"
    done
  done
} > "$out"
echo "wrote $out"
