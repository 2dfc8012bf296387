#!/usr/bin/env bash
# The long run of the HTTP handlers' property test (shared/src/http_fuzz.rs): generated
# requests on every route of order-api, inventory, payment and delivery, checking that
# none panics, none answers 5xx, and every 4xx is a problem with a code. Writes
# bench/results/http-fuzz.md with what each run saw.
#
# Usage: bench/http_fuzz.sh [cases per function, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-100000}
out=bench/results/http-fuzz.md
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rows=""
status=0
for crate in order-api inventory payment delivery; do
  start=$(date +%s)
  if DISHPATCH_FUZZ_CASES=$cases cargo test -p "$crate" --lib any_request_gets_a_clean_answer -- --nocapture >"$log" 2>&1; then
    result=passed
  else
    result=FAILED
    status=1
    tail -40 "$log" >&2
  fi
  secs=$(( $(date +%s) - start ))
  seen=$(grep -m1 '^http_fuzz:' "$log" | sed -E 's/^http_fuzz: [0-9]+ cases: //' || true)
  rows+="| $crate | $cases | $result | ${secs} s | \`${seen}\` |"$'\n'
done
{
  echo "## HTTP handlers under generated input"
  echo
  echo "Command: \`bench/http_fuzz.sh $cases\`  "
  echo "Date: $(date -u)  "
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(uname -sr), $(rustc --version)"
  echo
  echo "Each case is one API Gateway event for a route of the function (hostile path"
  echo "parameters, query strings, headers, claims, and bodies: a valid body with one value"
  echo "replaced or removed, random JSON, raw text, oversized) through the runtime's whole HTTP"
  echo "path against in-memory ports. A run passes when no case panics or answers 5xx and"
  echo "every 4xx is \`application/problem+json\` with a \`code\`. The last column counts the"
  echo "answers by status and problem code. The test command runs 96 cases per function."
  echo
  echo "| function | cases | result | time | answers (status code: count) |"
  echo "|---|---:|---|---:|---|"
  printf '%s' "$rows"
} >"$out"
echo "wrote $out"
exit $status
