#!/usr/bin/env bash
# Instructions per turn in lockfair's round loop, against the C yardstick's per round, exactly
# (valgrind's callgrind; perf has no hardware counters in most VMs).
#   usage: bench/loop_instructions.sh [--json] [VARIANT...]   (default: eventfd pipe futex)
#   --json: {"rows": [{"mechanism", "lockfair", "c"}]} instead of a Markdown table
#   (results/overhead/loop-instructions.json, docs/overhead.md).
# lockfair: the inclusive count of `session::run_contender` on the client side (the round loop
# with its syscall wrappers, not setup or the report). C: pingpong.c, per round of one process.
# Both: the difference between a 12,000- and a 2,000-round run, divided by 10,000.
# Needs valgrind, and target/release/{lockfair-client,lockfair-server,pingpong} built
# ($LOCKFAIR_BIN instead of target/release when set).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LOCKFAIR_BIN:-target/release}
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
"$bin/lockfair-server" --socket "$work/s" >/dev/null 2>&1 &
server_pid=$!
for _ in $(seq 50); do [ -S "$work/s" ] && break; sleep 0.1; done
[ -S "$work/s" ] || { echo "lockfair-server did not start" >&2; exit 1; }
fail() { echo "$1" >&2; kill $$; exit 1; }   # from inside $(...), which set -e does not stop

loop() {  # variant rounds -> inclusive instructions of the round loop
    rm -f "$work/cg"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg" "$bin/lockfair-client" run \
        --socket "$work/s" --variant "$1" --placement same-cpu --rounds "$2" >/dev/null 2>&1 ||
        fail "lockfair-client run --variant $1 failed under valgrind"
    local n
    n=$(callgrind_annotate --inclusive=yes "$work/cg" 2>/dev/null |
        awk '/session\/mod\.rs:lockfair::session::run_contender/ {
                 gsub(",", "", $1); v = $1 + 0; if (v > m) m = v }
             END { print m + 0 }')
    [ "$n" -gt 0 ] || fail "no round loop in the $1 profile"
    echo "$n"
}
c_round() {  # mode rounds -> the larger of the two processes' totals
    valgrind --tool=callgrind --callgrind-out-file="$work/c.%p" "$bin/pingpong" "$1" "$2" same \
        >/dev/null 2>"$work/c.log" || fail "pingpong $1 failed under valgrind"
    awk '/Collected/ { print $NF }' "$work/c.log" | sort -n | tail -1
    rm -f "$work"/c.*
}
json=
if [ "${1:-}" = --json ]; then json=1; shift; fi
if [ -n "$json" ]; then
    printf '{"command": "bench/loop_instructions.sh --json", "rows": ['
else
    echo "| mechanism | lockfair round loop, per turn | C, per round |"
    echo "| :-------- | ----------------------------: | -----------: |"
fi
sep=
for v in "${@:-eventfd pipe futex}"; do
    for v1 in $v; do
        l=$(( ($(loop "$v1" 12000) - $(loop "$v1" 2000)) / 10000 ))
        c=$(( ($(c_round "$v1" 12000) - $(c_round "$v1" 2000)) / 10000 ))
        if [ -n "$json" ]; then
            printf '%s\n {"mechanism": "%s", "lockfair": %d, "c": %d}' "$sep" "$v1" "$l" "$c"
            sep=,
        else
            echo "| $v1 | $l | $c |"
        fi
    done
done
if [ -n "$json" ]; then printf '\n]}\n'; fi
