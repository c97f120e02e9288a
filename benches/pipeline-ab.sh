#!/usr/bin/env bash
# A/B runs of the pipeline bench's `gewerbe` scenario with different hub
# binaries, alternating in one series (docs/benchmarks.md, session 9).
#
#   cargo bench --bench pipeline --no-run          # builds bench + hub
#   cp target/release/drehscheibe-under-test-hub /tmp/hub-a
#   ... change, rebuild, copy to /tmp/hub-b ...
#   benches/pipeline-ab.sh /tmp/hub-a /tmp/hub-b /tmp/hub-a /tmp/hub-b
#
# Each run copies the given binary to target/release/drehscheibe-under-test-hub
# (the hub executable the bench's `drehscheibe-under-test serve` runs), runs the newest pipeline bench
# binary with BENCH_ONLY=gewerbe, and prints its figures together with the
# hub's CPU time per message (`perf stat -e task-clock` on the hub process
# over the whole run ÷ messages) — steadier than throughput on a shared
# machine. BENCH_MESSAGES (default 3000) sets the messages per run. Needs
# perf. The target's own hub binary is put back (with its timestamp, so
# cargo's freshness check stays right) when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_MESSAGES:-3000}
bench=$(ls -t target/release/deps/pipeline-* | grep -v '\.d$' | head -1)
hub_bin=target/release/drehscheibe-under-test-hub
stat=$(mktemp)
orig=$(mktemp)
cp -p "$hub_bin" "$orig"
trap 'cp -p "$orig" "$hub_bin"; rm -f "$stat" "$orig"' EXIT
for hub in "$@"; do
  cp "$hub" "$hub_bin"
  (
    for _ in $(seq 1 300); do
      pid=$(pgrep -f "drehscheibe-under-test serve" | head -1 || true)
      [ -n "$pid" ] && break
      sleep 0.1
    done
    perf stat -e task-clock -p "$pid" -o "$stat" >/dev/null 2>&1
  ) &
  out=$(BENCH_ONLY=gewerbe BENCH_MESSAGES=$n "$bench" --bench 2>&1 | grep -E '^(direct|gewerbe) ' | tr -s ' ' | tr '\n' ' ')
  wait
  cpu=$(awk -v n="$n" '/task-clock/ {gsub(",", "", $1); printf "%.2f", $1 / n}' "$stat")
  echo "$hub: $out| hub CPU ms/msg $cpu"
done
