#!/bin/sh
# Regenerates every committed results/ folder that README.md and docs/ cite, with the release
# build of this checkout and the current defaults, then rewrites the marked figures of README and
# docs from them. Run it as root (the kernel trace and holding idle need it) on a quiet machine:
# every figure in the pages comes from what this writes.
#
# usage: bench/regenerate.sh [FOLDER...]      (from anywhere; no FOLDER: all of them, in order)
#   FOLDER is a name below (reference, reference-free-4, herd-4, fair-futex-free-4, demo,
#   kernel-trace, overhead, crash, calibration). Each step deletes its folder's generated files first,
#   so nothing from an older run survives beside the new one; README.md files are kept.
# Takes about 25 minutes on the 2-CPU reference VM, most of it the calibration (8 attempts).
set -eu
cd "$(dirname "$0")/.."
# The release build's binaries (cargo puts them under $CARGO_TARGET_DIR when it is set).
bin=${CARGO_TARGET_DIR:-target}/release
client=$bin/lockfair-client
export LOCKFAIR_CLIENT="$client" LOCKFAIR_BIN="$bin"

# A folder emptied of what an earlier run wrote (its README.md kept).
fresh() {
    mkdir -p "results/$1"
    find "results/$1" -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
}

step_reference() { # the default comparison: docs/reference.md, docs/seed.md, README
    fresh reference
    "$client" compare --out results/reference
}

step_reference_free_4() { # free mode, four contenders: docs/contenders.md
    fresh reference-free-4
    "$client" compare --mode free --contenders 4 --out results/reference-free-4
}

step_herd_4() { # turns mode, four contenders: futex's whoops (README, docs/contenders.md)
    fresh herd-4
    "$client" compare --contenders 4 --variants futex,eventfd,ticket,pipe \
        --placements same-cpu,free --out results/herd-4
}

step_fair_futex_free_4() { # fair-futex against futex (README, docs/contenders.md)
    fresh fair-futex-free-4
    "$client" compare --variants futex,fair-futex --placements free --mode free --contenders 4 \
        --rounds 20000 --max-seconds 10 --repeats 5 --out results/fair-futex-free-4
}

step_demo() { # the claims: README, docs/demo.md
    fresh demo
    "$client" demo --out results/demo >results/demo/demo.txt
}

step_kernel_trace() { # the kernel's account, short file-lock runs: docs/kernel-trace.md
    fresh kernel-trace
    "$client" compare --variants ofd,posix,flock,lockf,lock-chain,eventfd,pipe \
        --placements same-cpu,split --rounds 20 --max-seconds 1 --kernel-trace --out results/kernel-trace
}

step_overhead() { # lockfair against the C yardstick: docs/overhead.md, README
    fresh overhead
    cc -O2 -o "$bin/pingpong" bench/pingpong.c
    cc -O2 -o "$bin/spin_anatomy" bench/spin_anatomy.c
    "$client" bench --pingpong "$bin/pingpong" --anatomy "$bin/spin_anatomy" \
        --repeats 11 --placements same-cpu,split --json >results/overhead/bench.json
    "$client" bench --spin-sweep --json >results/overhead/spin-sweep.json
    bench/anatomy.sh >results/overhead/anatomy.json
    bench/loop_instructions.sh --json >results/overhead/loop-instructions.json
}

step_calibration() { # how sure, and holding idle: docs/measures.md, results/calibration
    fresh calibration
    python3 bench/calibrate.py --levels results/calibration/levels.json
    bench/calibrate_attempts.sh results/calibration 4
}

step_programs() { # the locks programs take, results/programs and programs-free: docs/programs.md
    bench/programs.sh
}

step_unequal() { # unequal contenders, holds 1:10 and 1:100: docs/unequal.md
    rm -rf results/unequal
    bench/unequal.sh results/unequal
}

step_crash_stop() { # a holder stopped, and who the kernel says it is: docs/crash.md
    fresh crash-stop
    "$client" crash --stop --out results/crash-stop
}

step_crash() { # the holder killed, the way out, and what it costs: docs/crash.md
    fresh crash
    "$client" crash --markdown >results/crash/crash.md
}

step_fair_futex_speed() { # fair-futex against futex, paired: docs/contenders.md
    # The script exits 1 when the median ratio is below its threshold; the run is still written,
    # and the pages quote what it measured.
    BEFORE_REV=4034901 bench/fair_vs_futex.sh || echo "regenerate.sh: fair-futex below its threshold (see results/fair-futex-speed)" >&2
    # The same pairs ten times longer (runs of about a second): the ratio depends on the length.
    BEFORE_REV=4034901 OUT=results/fair-futex-speed-long bench/fair_vs_futex.sh 5 4 2000000 ||
        echo "regenerate.sh: fair-futex below its threshold (see results/fair-futex-speed-long)" >&2
    # Why the length matters: futex(2) calls per acquisition, short and long (perf, root).
    bench/futex_syscalls.sh results/fair-futex-speed-long/syscalls.json
}

step_contenders_sweep() { # 2 to 64 contenders: docs/contenders.md
    rm -rf results/contenders-sweep
    bench/sweep.sh
}


all="reference reference-free-4 herd-4 fair-futex-free-4 demo kernel-trace overhead programs unequal crash-stop fair-futex-speed contenders-sweep crash calibration"
[ $# -eq 0 ] && set -- $all
for folder in "$@"; do
    case " $all " in
    *" $folder "*) ;;
    *)
        echo "regenerate.sh: no step $folder; the steps: $all" >&2
        exit 2
        ;;
    esac
done
cargo build --release --locked
for folder in "$@"; do
    echo "== results/$folder" >&2
    "step_$(echo "$folder" | tr - _)"
done
# The marked figures of README and docs, from what was just written.
LOCKFAIR_BLESS=1 cargo test --locked -p lockfair-client --test cli figures
