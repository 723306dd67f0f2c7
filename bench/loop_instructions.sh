#!/usr/bin/env bash
# Instructions per turn in lockfair's round loop, against the C yardstick's per round, exactly
# (valgrind's callgrind; perf has no hardware counters in most VMs).
#   usage: bench/loop_instructions.sh [VARIANT...]        (default: eventfd pipe futex)
# lockfair: the inclusive count of `session::run_contender` on the client side (the round loop
# with its syscall wrappers, not setup or the report). C: pingpong.c, per round of one process.
# Both: the difference between a 12,000- and a 2,000-round run, divided by 10,000.
# Needs valgrind, and target/release/{lockfair-client,lockfair-server,pingpong} built.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$bin/lockfair-server" --socket "$work/s" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -S "$work/s" ] && break; sleep 0.1; done

loop() {  # variant rounds -> inclusive instructions of the round loop
    valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$bin/lockfair-client" run \
        --socket "$work/s" --variant "$1" --placement same-cpu --rounds "$2" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$work/cg" 2>/dev/null |
        awk '/session\/mod\.rs:lockfair::session::run_contender/ { gsub(",", "", $1); if ($1 > m) m = $1 }
             END { print m + 0 }'
}
c_round() {  # mode rounds -> the larger of the two processes' totals
    valgrind --tool=callgrind --callgrind-out-file="$work/c.%p" "$bin/pingpong" "$1" "$2" same \
        >/dev/null 2>"$work/c.log"
    awk '/Collected/ { print $NF }' "$work/c.log" | sort -n | tail -1
    rm -f "$work"/c.*
}
echo "| mechanism | lockfair round loop, per turn | C, per round |"
echo "| :-------- | ----------------------------: | -----------: |"
for v in "${@:-eventfd pipe futex}"; do
    for v1 in $v; do
        l=$(( ($(loop "$v1" 12000) - $(loop "$v1" 2000)) / 10000 ))
        c=$(( ($(c_round "$v1" 12000) - $(c_round "$v1" 2000)) / 10000 ))
        echo "| $v1 | $l | $c |"
    done
done
