#!/bin/sh
# Calibration: runs `lockfair-client compare` twice in a row (the second with --baseline on the
# first) and checks with bench/calibrate.py that the first run's intervals hold the second run's
# medians in at least 90% of cells, for rounds/s, round trip p50 and whoops/round.
#
# usage: bench/calibrate.sh OUT_DIR [compare flags...]     (from the checkout's root)
#   OUT_DIR gets run-1/ and run-2/ (the report folders), run-N.txt (what compare printed),
#   machine.txt (load and idle state around each run), cost.txt (per run: wall seconds, the
#   comparison's CPU seconds, other processes' CPU seconds, and the seconds the CPUs spent idle
#   spinning in cpuidle's POLL state and halted) and calibration.txt (the checker's output). Extra flags go to both runs; with none, the runs are the default comparison.
#   LOCKFAIR_CLIENT overrides the binary (default target/release/lockfair-client).
# Exit status: the checker's (0 pass, 1 coverage below 90%), or 2 if a run failed to start.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: bench/calibrate.sh OUT_DIR [compare flags...]" >&2
    exit 2
fi
out=$1
shift
client=${LOCKFAIR_CLIENT:-target/release/lockfair-client}
here=$(dirname "$0")
if [ ! -x /usr/bin/time ]; then
    echo "calibrate.sh: needs /usr/bin/time (Debian: apt-get install time)" >&2
    exit 2
fi
if [ ! -x "$client" ]; then
    echo "calibrate.sh: no $client; build it first: cargo build --release --locked" >&2
    exit 2
fi
mkdir -p "$out"
for d in run-1 run-2; do
    if [ -e "$out/$d" ]; then
        echo "calibrate.sh: $out/$d exists; give an empty OUT_DIR" >&2
        exit 2
    fi
done

# Someone else holding every CPU out of idle (/dev/cpu_dma_latency at 0, as `--hold-idle` or
# cyclictest do) changes cross-CPU handoffs several-fold: sample the kernel's limit meanwhile.
qos_sampler() {
    while :; do
        od -An -tu4 -N4 /dev/cpu_dma_latency 2>/dev/null | tr -d ' '
        sleep 0.5
    done
}

# Busy CPU seconds of the whole machine since boot (/proc/stat: all but idle and iowait).
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { print ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# Seconds all CPUs have spent in each kind of idle since boot (cpuidle's per-state time, µs):
# "POLL" spins (what holding idle off costs), the others halt. Prints "poll halt"; "- -" when
# the machine has no cpuidle.
idle_seconds() {
    for s in /sys/devices/system/cpu/cpu[0-9]*/cpuidle/state[0-9]*; do
        [ -r "$s/time" ] && echo "$(cat "$s/name") $(cat "$s/time")"
    done | awk '$1 == "POLL" { p += $NF; n++ } $1 != "POLL" { h += $NF; n++ }
        END { if (n) printf "%.2f %.2f", p / 1e6, h / 1e6; else print "- -" }'
}

run() {
    name=$1
    shift
    echo "$name: $client compare --out $out/$name $*" >>"$out/machine.txt"
    echo "  start $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
    qos_sampler >"$out/$name.qos" &
    sampler=$!
    busy_before=$(busy_seconds)
    idle_before=$(idle_seconds)
    start=$(date +%s.%N)
    status=0
    /usr/bin/time -f "%U %S" -o "$out/$name.cpu" \
        "$client" compare --out "$out/$name" "$@" >"$out/$name.txt" 2>"$out/$name.err" || status=$?
    end=$(date +%s.%N)
    busy_after=$(busy_seconds)
    idle_after=$(idle_seconds)
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    # One value a line (empty where it could not be read: only root may open the device).
    held=$(awk '$1 ~ /^[0-9]+$/ { n++; if ($1 < 2000000000) low++ }
        END { if (n) printf "below its default in %d of %d samples", low, n;
              else print "unreadable (needs root)" }' "$out/$name.qos")
    # CPU time the machine spent outside this comparison (its server and contenders included):
    # /proc/stat samples by tick, rusage counts exactly, so a few seconds either way mean none.
    others=$(awk -v b="$busy_before" -v a="$busy_after" '{ printf "%.1f", a - b - $1 - $2 }' \
        "$out/$name.cpu")
    echo "  end $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)," \
        "$(awk "BEGIN { printf \"%.1f\", $end - $start }") s, exit $status;" \
        "CPU seconds used by other processes meanwhile (±3): $others;" \
        "cpu_dma_latency $held" \
        >>"$out/machine.txt"
    # One line per run for bench/calibrate.py --attempts: wall s, this comparison's CPU s
    # (user + system, its server and contenders included), other processes' CPU s, and the
    # seconds every CPU together spent idle spinning (POLL) and halted during the run.
    echo "$name $end $start $idle_before $idle_after $others" | awk -v cpu="$(cat "$out/$name.cpu")" '
        { split(cpu, c, " "); wall = $2 - $3;
          poll = ($4 == "-") ? "-" : sprintf("%.2f", $6 - $4);
          halt = ($5 == "-") ? "-" : sprintf("%.2f", $7 - $5);
          printf "%s %.2f %.2f %s %s %s\n", $1, wall, c[1] + c[2], $8, poll, halt }' \
        >>"$out/cost.txt"
    rm -f "$out/$name.qos" "$out/$name.cpu"
    # 1: a cell failed, the report is still whole; anything else: no report to check.
    if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
        echo "calibrate.sh: $name failed (exit $status): $(cat "$out/$name.err")" >&2
        exit 2
    fi
}

echo "run wall_s compare_cpu_s others_cpu_s poll_s halt_s" >"$out/cost.txt"
run run-1 "$@"
run run-2 --baseline "$out/run-1" "$@"
status=0
python3 "$here/calibrate.py" "$out/run-1/summary.json" "$out/run-2/summary.json" \
    >"$out/calibration.txt" || status=$?
cat "$out/machine.txt" "$out/calibration.txt"
exit "$status"
