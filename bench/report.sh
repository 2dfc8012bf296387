#!/usr/bin/env bash
# Assembles docs/benchmarks.md: bench/summary.md (the targets and how to reproduce),
# then every result section under bench/results/, each with its own command, date and
# machine. Run it after any benchmark; it measures nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks.md
mkdir -p docs
{
  cat bench/summary.md
  for section in metrics handlers http-fuzz coldstart calls traces load emulators soak; do
    f=bench/results/$section.md
    [ -f "$f" ] || continue
    echo
    # Every section one level below the page title; images and per-run reports live
    # next to the results.
    demote=''
    if head -1 "$f" | grep -q '^# '; then demote='s/^#/##/'; fi
    sed -E -e "${demote:-s/^//}" -e 's#\]\(([a-z0-9-]+\.(png|md|txt))\)#](../bench/results/\1)#g' "$f"
  done
} > "$out"
echo "wrote $out"
