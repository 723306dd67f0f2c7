#!/bin/sh
# Why the futex mutex's acquisitions/s depend on the run's length and fair-futex's do not: the
# futex(2) calls each makes per acquisition, counted system-wide by perf (root), in one free-mode
# compare cell of 4 contenders at a short and a long run length.
#
# usage: bench/futex_syscalls.sh [OUT]   (from the checkout's root, as root, on a quiet machine;
#   default OUT results/fair-futex-speed-long/syscalls.json)
#   LOCKFAIR_CLIENT overrides the binary (default target/release/lockfair-client).
set -eu
out=${1:-results/fair-futex-speed-long/syscalls.json}
client=${LOCKFAIR_CLIENT:-target/release/lockfair-client}
if [ ! -x "$client" ]; then
    echo "futex_syscalls.sh: no $client; build it first: cargo build --release --locked" >&2
    exit 2
fi
if ! command -v perf >/dev/null; then
    echo "futex_syscalls.sh: perf is missing; install it (Debian: linux-perf)" >&2
    exit 2
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rows=""
for variant in futex fair-futex; do
    for rounds in 200000 2000000; do
        perf stat -a -e syscalls:sys_enter_futex -x, -o "$scratch/perf.txt" \
            "$client" compare --variants "$variant" --placements free --mode free --contenders 4 \
            --rounds "$rounds" --max-seconds 10 --repeats 1 --json --out "$scratch/$variant-$rounds" \
            >"$scratch/summary.json"
        calls=$(grep sys_enter_futex "$scratch/perf.txt" | cut -d, -f1)
        row=$(python3 - "$variant" "$rounds" "$calls" "$scratch/summary.json" <<'PY'
import json, sys
variant, rounds, calls, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cell = json.load(open(path))["summary"][0]
acq = cell["acquisitions_per_sec"]
acq = acq["median"] if isinstance(acq, dict) else acq
total = 4 * rounds
print(json.dumps({"id": f"{variant}/{rounds}", "variant": variant, "rounds": rounds,
                  "acquisitions": total, "acquisitions_per_sec": acq,
                  "futex_calls": calls, "futex_calls_per_acquisition": calls / total}))
PY
)
        rows="$rows${rows:+,}$row"
    done
done
printf '{"command": "bench/futex_syscalls.sh", "rows": [%s]}\n' "$rows" | python3 -m json.tool >"$out"
cat "$out"
