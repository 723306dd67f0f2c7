#!/bin/sh
# The contender sweep of docs/contenders.md ("Many contenders"): file locks, the futex mutex,
# fair-futex and ticket at 2 to 64 contenders, free mode, every cell bounded by time (0.5 s)
# rather than rounds, so that everyone races over a common window; 5 repeats.
#
# usage: bench/sweep.sh [OUT_DIR]     (from the checkout's root; default results/contenders-sweep)
#   OUT_DIR is compare's report folder (summary.json's `sweep` has every figure the docs quote,
#   contenders-*.svg the plots), plus compare.txt (what compare printed) and load.txt (the load
#   average before and after). LOCKFAIR_CLIENT overrides the binary (default
#   target/release/lockfair-client).
set -eu

out=${1:-results/contenders-sweep}
client=${LOCKFAIR_CLIENT:-target/release/lockfair-client}
if [ ! -x "$client" ]; then
    echo "sweep.sh: no $client; build it first: cargo build --release --locked" >&2
    exit 2
fi
if [ -e "$out" ]; then
    echo "sweep.sh: $out exists; remove it first (rm -r $out) or give another OUT_DIR" >&2
    exit 2
fi
printed=$(mktemp)
trap 'rm -f "$printed"' EXIT
before=$(cat /proc/loadavg)
status=0
"$client" compare --variants ofd,posix,flock,futex,fair-futex,ticket --placements free \
    --mode free --contenders 2,4,8,16,32,64 --rounds 100000000 --max-seconds 0.5 --repeats 5 \
    --out "$out" >"$printed" || status=$?
cp "$printed" "$out/compare.txt"
printf 'load before: %s\nload after:  %s\n' "$before" "$(cat /proc/loadavg)" >"$out/load.txt"
exit "$status"
