#!/bin/sh
# The C spin ping-pong built up to what lockfair measures per turn (bench/spin_anatomy.c), five
# alternating runs of each step, as JSON: per step its median, lowest and highest mean round
# trip in ns (docs/overhead.md's table).
#
# usage: bench/anatomy.sh [RUNS] > results/overhead/anatomy.json   (from the checkout's root;
#   needs 2 CPUs; builds target/release/spin_anatomy, or $LOCKFAIR_BIN/spin_anatomy, first)
set -eu
runs=${1:-5}
bin=${LOCKFAIR_BIN:-target/release}
cc -O2 -o "$bin/spin_anatomy" bench/spin_anatomy.c
i=0
while [ "$i" -lt "$runs" ]; do
    for s in 0 1 2 3 4; do
        # "stepS split X us/round-trip (...)": keep the step and X
        "$bin/spin_anatomy" "$s" 300000 split | awk '{ sub("step", "", $1); print $1, $3 }'
    done
    i=$((i + 1))
done | python3 -c '
import json, statistics, sys
what = ["nothing: the pure spin ping-pong",
        "two `clock_gettime(CLOCK_MONOTONIC)`",
        "+ the overlap detector: `fetch_add` / `fetch_and` on a second line",
        "+ the release stamp and a line written on that line, read by the next holder",
        "step 3, timing one turn in 64"]
by = {}
for line in sys.stdin:
    step, us = line.split()
    by.setdefault(int(step), []).append(float(us) * 1e3)
steps = [{"step": s, "what": what[s], "median_ns": statistics.median(v), "min_ns": min(v),
          "max_ns": max(v), "runs": len(v)} for s, v in sorted(by.items())]
print(json.dumps({"command": "bench/anatomy.sh", "rounds": 300000, "steps": steps}, indent=1))
'
