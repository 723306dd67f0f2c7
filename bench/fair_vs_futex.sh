#!/usr/bin/env bash
# fair-futex's price and bound against the futex mutex, in paired runs: each pair is one
# `compare --repeats 1` of both variants (free mode, free placement), the order alternating
# from pair to pair so neither always runs first on a machine whose speed drifts.
#   usage: bench/fair_vs_futex.sh [PAIRS] [THRESHOLD] [CONTENDERS] [ROUNDS]
#          (defaults: 5 pairs, 0.8, 4 contenders, 200000 rounds each: 20000 rounds, about
#          10 ms a run here, leave one contender alone for much of a run, and the ratio
#          swings from 0.4 to 4)
# Prints per pair: acquisitions/s of both, their ratio (fair-futex / futex), both bypass maxima
# (the worst overtaking of one wait, in acquisitions) and the fair-futex one in time at its own
# rate; then the medians. Exits 1 if the median throughput ratio is below THRESHOLD, 2 on a
# failed run. Builds nothing: needs target/release/lockfair-client (`cargo build --release
# --locked`), or CLIENT=path. BEFORE=path/to/another/lockfair-client (with its lockfair-server
# beside it) also runs that build's fair-futex in every pair, just before or after the pair's
# compare (alternating), for a before/after in the same run. OUT=dir keeps the reports.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-5}
threshold=${2:-0.8}
contenders=${3:-4}
rounds=${4:-200000}
client=${CLIENT:-target/release/lockfair-client}
before=${BEFORE:-}
for bin in "$client" ${before:+"$before"}; do
    [ -x "$bin" ] || { echo "no $bin: run cargo build --release --locked first" >&2; exit 2; }
done
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

cell() {  # client variants dir
    "$1" compare --variants "$2" --placements free --mode free --contenders "$contenders" \
        --rounds "$rounds" --max-seconds 10 --repeats 1 --out "$3" >"$3.log" 2>&1 ||
        { echo "$1 compare --variants $2 failed (log in $3.log)" >&2; exit 2; }
}

echo "uptime before: $(uptime)"
echo "pairs: $pairs, threshold: $threshold, contenders: $contenders, rounds: $rounds"
echo "client: $client${before:+, before: $before}"
for i in $(seq 1 "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then order=futex,fair-futex; else order=fair-futex,futex; fi
    if [ -n "$before" ] && [ $((i % 2)) -eq 0 ]; then cell "$before" fair-futex "$out/before-$i"; fi
    cell "$client" "$order" "$out/pair-$i"
    if [ -n "$before" ] && [ $((i % 2)) -eq 1 ]; then cell "$before" fair-futex "$out/before-$i"; fi
done
echo "uptime after: $(uptime)"

python3 - "$out" "$pairs" "$threshold" "$before" <<'PY'
import json, os, statistics, sys
out, pairs, threshold, before = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def runs(folder):
    with open(f"{folder}/summary.json") as f:
        return {r["variant"]: r for r in json.load(f)["runs"]}

def figures(run):
    acq = run["metrics"]["acquisitions_per_sec"]
    bypass = run["order"]["bypass_max"]
    return acq, bypass, bypass / acq * 1e3 if acq else 0.0

head = (f"{'pair':>4} {'order':>16} {'futex acq/s':>12} {'fair acq/s':>12} {'ratio':>6} "
        f"{'futex byp max':>13} {'fair byp max':>12} {'(ms)':>6}")
print(head + (f" {'before acq/s':>12} {'ratio':>6} {'before byp max':>14} {'(ms)':>6}" if before else ""))
rows = []
for i in range(1, pairs + 1):
    cell = runs(f"{out}/pair-{i}")
    if set(cell) != {"futex", "fair-futex"}:
        sys.exit(f"pair {i}: expected runs of futex and fair-futex, got {sorted(cell)}")
    order = ",".join(cell)
    fx, fair = figures(cell["futex"]), figures(cell["fair-futex"])
    row = {"ratio": fair[0] / fx[0], "futex_bypass": fx[1], "fair_bypass": fair[1], "fair_ms": fair[2]}
    line = (f"{i:>4} {order:>16} {fx[0]:>12.0f} {fair[0]:>12.0f} {row['ratio']:>6.2f} "
            f"{fx[1]:>13} {fair[1]:>12} {fair[2]:>6.2f}")
    if before:
        old = figures(runs(f"{out}/before-{i}")["fair-futex"])
        row.update(before_ratio=old[0] / fx[0], before_bypass=old[1], before_ms=old[2])
        line += f" {old[0]:>12.0f} {row['before_ratio']:>6.2f} {old[1]:>14} {old[2]:>6.2f}"
    rows.append(row)
    print(line)
med = lambda k: statistics.median(r[k] for r in rows)
print(f"median throughput ratio (fair-futex / futex): {med('ratio'):.2f}")
print(f"median bypass max: futex {med('futex_bypass'):.0f}, fair-futex {med('fair_bypass'):.0f}"
      f" ({med('fair_ms'):.2f} ms of its acquisitions)")
if before:
    print(f"before: median throughput ratio {med('before_ratio'):.2f}, median bypass max "
          f"{med('before_bypass'):.0f} ({med('before_ms'):.2f} ms of its acquisitions)")
if med("ratio") < threshold:
    print(f"FAIL: median throughput ratio {med('ratio'):.2f} < {threshold}")
    sys.exit(1)
print(f"ok: median throughput ratio {med('ratio'):.2f} >= {threshold}")
PY
