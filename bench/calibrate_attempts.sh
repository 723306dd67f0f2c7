#!/bin/sh
# Calibration over several attempts, with the CPUs left to idle and held out of idle, in turns:
# how often one default comparison's intervals hold the next one's medians (bench/calibrate.sh)
# and what holding idle costs (the seconds the CPUs spin in cpuidle's POLL state). The evidence
# behind compare's idle default (docs/measures.md#the-machines-part-holding-the-cpus-out-of-idle).
#
# usage: bench/calibrate_attempts.sh OUT_DIR [ATTEMPTS]      (from the checkout's root, as root)
#   OUT_DIR/idle/attempt-N/ and OUT_DIR/held/attempt-N/: one bench/calibrate.sh output each
#   (--no-hold-idle and --hold-idle; each summary.json without its per-repeat `runs`, no .hgrm,
#   SVG or HTML, to keep the folder small); OUT_DIR/ARM/attempts.txt and attempts.json: what
#   bench/calibrate.py --attempts makes of them. ATTEMPTS defaults to 4 (about 2.5 minutes each).
#   LOCKFAIR_CLIENT overrides the binary (default target/release/lockfair-client).
# Exit status: 0 when both arms ran (whatever they showed), 2 when a run could not start.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: bench/calibrate_attempts.sh OUT_DIR [ATTEMPTS]" >&2
    exit 2
fi
out=$1
attempts=${2:-4}
here=$(dirname "$0")
if [ -e "$out/idle" ] || [ -e "$out/held" ]; then
    echo "calibrate_attempts.sh: $out already holds attempts; give an empty OUT_DIR" >&2
    exit 2
fi

# Keeps what bench/calibrate.py reads and a person compares: the summary rows, the tables.
prune() {
    for run in "$1"/run-1 "$1"/run-2; do
        rm -f "$run"/*.hgrm "$run"/*.svg "$run"/report.html
        python3 - "$run/summary.json" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    doc = json.load(f)
doc.pop("runs", None)
with open(path, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
PY
    done
}

i=1
while [ "$i" -le "$attempts" ]; do
    for arm in idle held; do
        flag=--no-hold-idle
        [ "$arm" = held ] && flag=--hold-idle
        dir=$out/$arm/attempt-$i
        mkdir -p "$dir"
        echo "attempt $i, $arm ($flag) -> $dir" >&2
        # 1: coverage below 90%, a result like any other; 2: the run did not happen.
        status=0
        "$here/calibrate.sh" "$dir" "$flag" >/dev/null || status=$?
        [ "$status" -eq 2 ] && exit 2
        prune "$dir"
    done
    i=$((i + 1))
done
for arm in idle held; do
    # shellcheck disable=SC2046 # the attempt folders, in order
    python3 "$here/calibrate.py" --attempts $(ls -d "$out/$arm"/attempt-* | sort -V) \
        --json "$out/$arm/attempts.json" >"$out/$arm/attempts.txt" || true
    echo "== $arm"
    cat "$out/$arm/attempts.txt"
done
