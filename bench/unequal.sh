#!/bin/sh
# Unequal contenders: file locks, the futex mutex, ticket and fair-futex in free mode with two
# contenders whose critical sections differ 1:10 and 1:100 (the server holds 10 µs or 1 µs, the
# client 100 µs, both as busy work), each on placement `split` (a CPU each: the lock decides),
# `same-cpu` (one CPU: the CPU scheduler decides who runs, and so who can take the lock) and
# `free` (the scheduler places them). docs/unequal.md reads it.
#
# usage: bench/unequal.sh [OUT_DIR]        (from the checkout's root; default results/unequal)
#   OUT_DIR gets one compare report folder per hold ratio and placement (1-10-split/, ...,
#   1-100-free/; summary.json's `opportunity` holds the figures the docs quote), what each
#   printed (1-10-split.txt, ...), and machine.txt (the load around the runs).
#   LOCKFAIR_CLIENT overrides the binary (default target/release/lockfair-client).
#   REPEATS overrides the repeats per cell (default 6: the median's interval is the lowest and
#   highest, 96.9%).
set -eu

out=${1:-results/unequal}
client=${LOCKFAIR_CLIENT:-target/release/lockfair-client}
repeats=${REPEATS:-6}
variants=ofd,flock,futex,ticket,fair-futex
if [ ! -x "$client" ]; then
    echo "unequal.sh: no $client; build it first: cargo build --release --locked --workspace" >&2
    exit 2
fi
mkdir -p "$out"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "load before: $(cat /proc/loadavg)"
} > "$out/machine.txt"

# Every contender takes the lock until the one-second deadline (the rounds are out of reach), so
# the common window is the whole second and nobody finishes early.
for ratio in 1-10 1-100; do
    case $ratio in
        1-10) hold=10us,100us ;;
        1-100) hold=1us,100us ;;
    esac
    for placement in split same-cpu free; do
        dir="$out/$ratio-$placement"
        rm -rf "$dir"
        "$client" compare --variants "$variants" --placements "$placement" --mode free \
            --contenders 2 --hold "$hold" --rounds 100000000 --max-seconds 1 \
            --repeats "$repeats" --out "$dir" > "$dir.txt"
    done
done
echo "load after: $(cat /proc/loadavg)" >> "$out/machine.txt"
