#!/usr/bin/env bash
# fair-futex's price and bound against the futex mutex, in paired runs. Each pair is one
# `compare --repeats 1 --variants futex,fair-futex` (free mode, free placement, release build):
# the futex mutex, then fair-futex, back to back. With BEFORE_REV, a release build of that
# commit's fair-futex runs in every pair too (just after the pair's compare in odd pairs, just
# before it in even ones), for a before/after in the same runs.
#   usage: [BEFORE_REV=commit] [OUT=dir] bench/fair_vs_futex.sh [PAIRS] [CONTENDERS] [ROUNDS] [THRESHOLD]
#          (defaults: 5 pairs, 4 contenders, 200000 rounds each, threshold 0.8; with 20000
#          rounds, about 10 ms a run here, the ratio swings from 0.4 to 4)
# Builds `cargo build --release --locked` first (and BEFORE_REV's, once, into
# $CARGO_TARGET_DIR/fair-before-REV). Writes OUT (default results/fair-futex-speed): per run a
# folder (pair-N/, before-N/) with compare's summary.json and summary.md, output.txt (the
# table below), and summary.json: per pair both acquisitions/s, their ratio, bypass p99 and
# max (in acquisitions, and in ms of the variant's own acquisitions), then the medians.
# Exits 1 if the median ratio (fair-futex / futex) is below THRESHOLD, 2 on a failed run.
set -euo pipefail
cd "$(dirname "$0")/.."
pairs=${1:-5}
contenders=${2:-4}
rounds=${3:-200000}
threshold=${4:-0.8}
out=${OUT:-results/fair-futex-speed}
target=${CARGO_TARGET_DIR:-target}
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac

cargo build --release --locked -p lockfair-client >&2
client="$target/release/lockfair-client"
before=""
if [ -n "${BEFORE_REV:-}" ]; then
    rev=$(git rev-parse --short "$BEFORE_REV")
    before="$target/fair-before-$rev/release/lockfair-client"
    if [ ! -x "$before" ]; then
        src=$(mktemp -d)
        trap 'rm -rf "$src"' EXIT
        git archive "$rev" | tar -x -C "$src"
        # Seeded with this build's dependencies; the sources touched (git archive dates them at
        # the commit), so that the workspace's crates are rebuilt from them.
        find "$src" -type f -exec touch {} +
        mkdir -p "$target/fair-before-$rev"
        [ -d "$target/fair-before-$rev/release" ] || cp -a "$target/release" "$target/fair-before-$rev/"
        (cd "$src" && CARGO_TARGET_DIR="$target/fair-before-$rev" cargo build --release --locked -p lockfair-client >&2)
    fi
fi

mkdir -p "$out"
# What an earlier run wrote (the folder's README.md stays).
rm -rf "$out"/pair-* "$out"/before-* "$out/output.txt" "$out/summary.json"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" ${src:+"$src"}' EXIT

cell() {  # client variants name
    local dir="$scratch/$3"
    "$1" compare --variants "$2" --placements free --mode free --contenders "$contenders" \
        --rounds "$rounds" --max-seconds 10 --repeats 1 --out "$dir" >"$dir.log" 2>&1 ||
        { echo "$1 compare --variants $2 failed:" >&2; cat "$dir.log" >&2; exit 2; }
    mkdir -p "$out/$3"
    cp "$dir/summary.json" "$dir/summary.md" "$out/$3/"
}

{
    echo "uptime before: $(uptime)"
    echo "pairs: $pairs, contenders: $contenders, rounds: $rounds, threshold: $threshold"
    echo "before: ${BEFORE_REV:+fair-futex of $rev}"
} | tee "$out/output.txt"
for i in $(seq 1 "$pairs"); do
    if [ -n "$before" ] && [ $((i % 2)) -eq 0 ]; then cell "$before" fair-futex "before-$i"; fi
    cell "$client" futex,fair-futex "pair-$i"
    if [ -n "$before" ] && [ $((i % 2)) -eq 1 ]; then cell "$before" fair-futex "before-$i"; fi
done
echo "uptime after: $(uptime)" | tee -a "$out/output.txt"

python3 - "$out" "$pairs" "$threshold" "$contenders" "$rounds" "${rev:-}" <<'PY' | tee -a "$out/output.txt"
import json, statistics, sys
out, pairs, threshold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
contenders, rounds, before_rev = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]

def runs(folder):
    with open(f"{out}/{folder}/summary.json") as f:
        return {r["variant"]: r for r in json.load(f)["runs"]}

def figures(run):
    acq = run["metrics"]["acquisitions_per_sec"]
    ms = lambda n: round(n / acq * 1e3, 3) if acq else 0.0
    o = run["order"]
    return {"acquisitions_per_sec": round(acq), "bypass_p99": o["bypass_p99"],
            "bypass_max": o["bypass_max"], "bypass_p99_ms": ms(o["bypass_p99"]),
            "bypass_max_ms": ms(o["bypass_max"])}

rows = []
for i in range(1, pairs + 1):
    cell = runs(f"pair-{i}")
    if set(cell) != {"futex", "fair-futex"}:
        sys.exit(f"pair {i}: expected runs of futex and fair-futex, got {sorted(cell)}")
    row = {"pair": i, "futex": figures(cell["futex"]), "fair_futex": figures(cell["fair-futex"])}
    row["ratio"] = round(row["fair_futex"]["acquisitions_per_sec"] / row["futex"]["acquisitions_per_sec"], 3)
    if before_rev:
        row["before"] = figures(runs(f"before-{i}")["fair-futex"])
        row["before_ratio"] = round(row["before"]["acquisitions_per_sec"] / row["futex"]["acquisitions_per_sec"], 3)
    rows.append(row)

def med(f):
    return round(statistics.median(f(r) for r in rows), 3)

median = {"ratio": med(lambda r: r["ratio"]),
          "ratio_min": min(r["ratio"] for r in rows), "ratio_max": max(r["ratio"] for r in rows)}
for who in ["futex", "fair_futex"] + (["before"] if before_rev else []):
    median[who] = {k: med(lambda r: r[who][k]) for k in rows[0][who]}
if before_rev:
    median["before_ratio"] = med(lambda r: r["before_ratio"])
command = (f"BEFORE_REV={before_rev} " if before_rev else "") + \
    f"bench/fair_vs_futex.sh {pairs} {contenders} {rounds} {threshold:g}"
summary = {"command": command, "pairs": pairs, "contenders": contenders,
           "rounds": rounds, "threshold": threshold, "before_rev": before_rev or None,
           "runs": rows, "median": median}
with open(f"{out}/summary.json", "w") as f:
    json.dump(summary, f, indent=2)
    f.write("\n")

cols = ["futex", "fair_futex"] + (["before"] if before_rev else [])
print(f"{'pair':>4} " + " ".join(f"{c + ' acq/s':>17} {'byp p99':>8} {'byp max':>8} {'max ms':>6}" for c in cols)
      + f" {'ratio':>6}" + (f" {'before':>6}" if before_rev else ""))
for r in rows:
    line = f"{r['pair']:>4} " + " ".join(
        f"{r[c]['acquisitions_per_sec']:>17} {r[c]['bypass_p99']:>8} {r[c]['bypass_max']:>8} {r[c]['bypass_max_ms']:>6.2f}"
        for c in cols)
    print(line + f" {r['ratio']:>6.2f}" + (f" {r['before_ratio']:>6.2f}" if before_rev else ""))
print(f"median ratio fair-futex / futex: {median['ratio']:.2f} (pairs {median['ratio_min']:.2f}-{median['ratio_max']:.2f})"
      + (f"; before: {median['before_ratio']:.2f}" if before_rev else ""))
for c in cols:
    m = median[c]
    print(f"median {c}: bypass p99 {m['bypass_p99']:.0f} ({m['bypass_p99_ms']:.2f} ms), "
          f"max {m['bypass_max']:.0f} ({m['bypass_max_ms']:.2f} ms)")
if median["ratio"] < threshold:
    print(f"FAIL: median ratio {median['ratio']:.2f} < {threshold}")
    sys.exit(1)
print(f"ok: median ratio {median['ratio']:.2f} >= {threshold}")
PY
