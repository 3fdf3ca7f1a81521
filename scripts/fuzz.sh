#!/usr/bin/env bash
# fuzz.sh SECONDS [TARGET...]: runs each cargo-fuzz target (all of them by
# default: envelope, sealed, session, addr, numbers, hex, command, escape,
# rendezvous, traverse) for SECONDS with libFuzzer, and prints, per target, the
# executions, the corpus grown and the crashes found (kept in
# fuzz/artifacts/TARGET; make each a regression test). New inputs go to
# fuzz/work/TARGET; the committed seeds in fuzz/corpus/TARGET are only
# read.
#
# Needs the nightly toolchain and cargo-fuzz (installed when missing).
# Runs locally only: no network traffic (the address target never
# resolves names).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >/dev/null
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
cargo +nightly fuzz build 2>/dev/null
if (($#)); then targets=("$@"); else mapfile -t targets < <(cargo +nightly fuzz list); fi

status=0
for target in "${targets[@]}"; do
  mkdir -p "work/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | wc -l)
  log="work/$target.log"
  started=$(date +%s)
  if cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    outcome=ok
  else
    outcome=FAILED
    status=1
  fi
  took=$(($(date +%s) - started))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{print $2}' | tail -n1)
  corpus=$(find "work/$target" -type f | wc -l)
  crashes=$(($(find "artifacts/$target" -type f | wc -l) - before))
  printf '%-9s %-6s %12s executions in %4ss (%s/s), corpus %5s, new crashes %s\n' \
    "$target" "$outcome" "${runs:-?}" "$took" "$(( ${runs:-0} / (took > 0 ? took : 1) ))" "$corpus" "$crashes"
  if [[ $outcome == FAILED ]]; then
    grep -E 'panicked|SUMMARY|Test unit written' "$log" | head -n 5 | sed 's/^/    /'
  fi
done
exit $status
