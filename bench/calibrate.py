#!/usr/bin/env python3
"""Checks how well one `compare` run's intervals say where another run lands.

usage: bench/calibrate.py RUN1/summary.json RUN2/summary.json [--min-coverage 0.9]
       bench/calibrate.py --attempts DIR... [--json FILE] [--min-coverage 0.9]


For rounds/s, round trip p50 and whoops/round: the share of the cells both runs have in which
run 1's interval (`lo`..`hi` in summary.json) holds run 2's median (the calibration), the same
the other way round, and the median relative width (hi - lo) / median of run 1's intervals over
the cells whose median is not 0. Cells where both runs measured exactly 0 in every repeat hold
the other median trivially; the coverage without them is shown too. The round trips of the fast
one-CPU cells, run 2 over run 1, tell whether the machine itself changed speed between the runs
(the host can run this VM's CPUs at two speed levels). If run 2 was made with
`--baseline RUN1`, also how often the rank test called a change between the two runs (the same
build twice: every call is a false alarm). Exits 1 when a measure's coverage is below
--min-coverage, 2 on bad input.

With --attempts, each DIR is one bench/calibrate.sh output (run-1/, run-2/, cost.txt): one line
per attempt, then over all attempts how many passed, the pooled coverage and the median of the
median widths per measure, what coverage two runs from one unchanging distribution would reach
(the same intervals, simulated), and what the runs cost (wall and CPU seconds, and the seconds
the idle CPUs spent spinning in cpuidle's POLL state). --json writes the same as JSON. Exits 0
when at least 90% of the attempts passed, 1 otherwise.
"""
import argparse
import json
import statistics
import sys

MEASURES = [
    ("rounds_per_sec", "rounds/s"),
    ("round_trip_p50_ns", "round trip p50"),
    ("whoops_per_round", "whoops/round"),
]


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
        rows = {(r["variant"], r["placement"]): r for r in doc["summary"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"calibrate.py: {path} is not a compare summary.json ({e}); give the "
                 "summary.json of a `lockfair-client compare` run")
    for row in rows.values():
        if "lo" not in row["rounds_per_sec"]:
            sys.exit(f"calibrate.py: {path} has no intervals (lo, hi): it was made by a build "
                     "from before them; run the comparison again")
    return doc, rows


def inside(interval_row, median_row, key):
    s, m = interval_row[key], median_row[key]["median"]
    return s["lo"] <= m <= s["hi"]


def all_zero(row, key):
    s = row[key]
    return s["min"] == 0 and s["max"] == 0


def measure(rows1, rows2, key):
    cells = sorted(set(rows1) & set(rows2))
    hits = [inside(rows1[c], rows2[c], key) for c in cells]
    back = [inside(rows2[c], rows1[c], key) for c in cells]
    informative = [i for i, c in enumerate(cells)
                   if not (all_zero(rows1[c], key) and all_zero(rows2[c], key))]
    widths = [(rows1[c][key]["hi"] - rows1[c][key]["lo"]) / rows1[c][key]["median"]
              for c in cells if rows1[c][key]["median"] > 0]
    misses = [(c, rows1[c][key], rows2[c][key]["median"])
              for c, hit in zip(cells, hits) if not hit]
    return {
        "cells": len(cells),
        "covered": sum(hits),
        "covered_back": sum(back),
        "informative": len(informative),
        "informative_covered": sum(hits[i] for i in informative),
        "median_width": statistics.median(widths) if widths else 0.0,
        "misses": misses,
    }


def speed_shift(rows1, rows2):
    """Run 2 / run 1 of the round trip p50 medians of the same-cpu cells under 100 µs: handoffs
    on one CPU whose cost is that CPU's speed. Far from 1, the machine itself changed speed
    between the runs (a host-level state no repeat of one run can see)."""
    ratios = sorted(
        rows2[c]["round_trip_p50_ns"]["median"] / rows1[c]["round_trip_p50_ns"]["median"]
        for c in set(rows1) & set(rows2)
        if c[1] == "same-cpu" and 0 < rows1[c]["round_trip_p50_ns"]["median"] < 100_000)
    return statistics.median(ratios) if ratios else None


def pct(a, b):
    return f"{100.0 * a / b:.1f}%" if b else "n/a"


def false_alarms(doc2):
    cmp = doc2.get("baseline")
    if not cmp:
        return None
    counts = {}
    for cell in cmp["cells"]:
        for c in cell["changes"]:
            counts.setdefault(c["metric"], {}).setdefault(c["verdict"], 0)
            counts[c["metric"]][c["verdict"]] += 1
    return cmp.get("alpha"), counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("runs", nargs="*", metavar="RUN1 RUN2 | DIR")
    ap.add_argument("--min-coverage", type=float, default=0.9)
    ap.add_argument("--attempts", action="store_true",
                    help="each argument is one bench/calibrate.sh output folder")
    ap.add_argument("--json", metavar="FILE", help="with --attempts: write the result as JSON")
    ap.add_argument("--levels", metavar="FILE",
                    help="only write, for 1 to 20 repeats, the interval's ranks, its level and "
                         "how often it holds another run's median (simulated) as JSON")
    args = ap.parse_args()
    if args.levels:
        return write_levels(args.levels)
    if args.attempts:
        return attempts(args.runs, args.min_coverage, args.json)
    if len(args.runs) != 2:
        ap.error("give RUN1/summary.json RUN2/summary.json, or --attempts DIR...")
    args.run1, args.run2 = args.runs
    doc1, rows1 = load(args.run1)
    doc2, rows2 = load(args.run2)
    repeats = sorted({r["repeats"] for r in rows1.values()})
    levels = sorted({r["rounds_per_sec"]["level"] for r in rows1.values()})
    print(f"run 1: {doc1['command']}")
    print(f"run 2: {doc2['command']}")
    print(f"repeats per cell in run 1: {repeats}; interval level: "
          + ", ".join(f"{100 * x:.1f}%" for x in levels))
    print()
    failed = []
    for key, name in MEASURES:
        m = measure(rows1, rows2, key)
        print(f"{name}: run 1's interval holds run 2's median in {m['covered']} of {m['cells']} "
              f"cells ({pct(m['covered'], m['cells'])}); the other way round "
              f"{pct(m['covered_back'], m['cells'])}; without the cells that were 0 in every "
              f"repeat of both runs {m['informative_covered']} of {m['informative']} "
              f"({pct(m['informative_covered'], m['informative'])}); median relative width "
              f"(hi-lo)/median {m['median_width']:.3f}")
        for (variant, placement), s, other in m["misses"]:
            end = s["lo"] if other < s["lo"] else s["hi"]
            beyond = abs(other - end) / end if end else float("inf")
            print(f"  missed {variant} {placement}: run 1 {s['lo']:.6g}..{s['hi']:.6g} "
                  f"(median {s['median']:.6g}), run 2 median {other:.6g}, "
                  f"{100 * beyond:.2g}% beyond")
        if m["cells"] == 0 or m["covered"] < args.min_coverage * m["cells"]:
            failed.append(name)
    shift = speed_shift(rows1, rows2)
    if shift is not None:
        print()
        note = ("" if abs(shift - 1) <= 0.05 else
                ": the machine changed speed between the runs, which no interval from one run "
                "can foresee")
        print(f"machine speed, run 2 / run 1 (median round trip p50 ratio of the same-cpu cells "
              f"under 100 µs): {shift:.3f}{note}")
    alarms = false_alarms(doc2)
    if alarms:
        alpha, counts = alarms
        print()
        print(f"run 2 against run 1 (--baseline, the same build twice; alpha {alpha}):")
        for metric, verdicts in counts.items():
            total = sum(verdicts.values())
            real = verdicts.get("real", 0)
            print(f"  {metric}: {real} of {total} called real ({pct(real, total)}), "
                  + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    print()
    if failed:
        print(f"FAIL: coverage below {100 * args.min_coverage:.0f}% for " + ", ".join(failed))
        return 1
    print(f"PASS: coverage at least {100 * args.min_coverage:.0f}% for every measure")
    return 0


def exchangeable_coverage(n, draws=20000, seed=1):
    """How often run 1's interval (the ranks compare uses for n repeats) holds run 2's median
    when both runs' n repeats come from one distribution that does not change: the most
    calibration can give without a floor (simulated, fixed seed)."""
    import random
    rng = random.Random(seed)
    lo, hi = ranks(n)
    hits = 0
    for _ in range(draws):
        a = sorted(rng.random() for _ in range(n))
        b = sorted(rng.random() for _ in range(n))
        m = b[n // 2] if n % 2 else (b[n // 2 - 1] + b[n // 2]) / 2
        hits += a[lo - 1] <= m <= a[hi - 1]
    return hits / draws


def ranks(n, level=0.95):
    """shared/src/outcome/interval.rs's ranks: the narrowest (k, n+1-k) reaching `level`."""
    from math import comb
    best = (1, n)
    for k in range(2, (n + 1) // 2 + 1):
        if 1 - 2 * sum(comb(n, i) for i in range(k)) / 2 ** n < level:
            break
        best = (k, n + 1 - k)
    return best


def write_levels(path):
    """docs/measures.md's table of levels: exact levels, simulated coverage of another run."""
    from math import comb
    levels = []
    for n in range(1, 21):
        lo, hi = ranks(n)
        level = 0.0 if n == 1 else 1 - 2 * sum(comb(n, i) for i in range(lo)) / 2 ** n
        levels.append({"n": n, "lo": lo, "hi": hi, "level": level,
                       "exchangeable": 0.0 if n == 1 else exchangeable_coverage(n, 100000)})
    with open(path, "w") as f:
        json.dump({"command": f"bench/calibrate.py --levels {path}", "levels": levels}, f,
                  indent=1)
        f.write("\n")
    return 0


def read_cost(path):
    """cost.txt of bench/calibrate.sh: {run: {column: value}}; {} if missing."""
    try:
        with open(path) as f:
            lines = [line.split() for line in f if line.strip()]
    except OSError:
        return {}
    head = lines[0]
    num = lambda x: None if x == "-" else float(x)
    return {row[0]: dict(zip(head[1:], map(num, row[1:]))) for row in lines[1:]}


def one_attempt(folder, min_coverage):
    doc1, rows1 = load(f"{folder}/run-1/summary.json")
    _, rows2 = load(f"{folder}/run-2/summary.json")
    result = {"folder": folder, "measures": {}, "speed_shift": speed_shift(rows1, rows2),
              "repeats": max(r["repeats"] for r in rows1.values()),
              "held_off": doc1.get("machine", {}).get("idle", {}).get("held_off")}
    for key, _ in MEASURES:
        m = measure(rows1, rows2, key)
        result["measures"][key] = {"cells": m["cells"], "covered": m["covered"],
                                   "coverage": m["covered"] / m["cells"] if m["cells"] else 0,
                                   "median_width": m["median_width"]}
    result["passed"] = all(m["cells"] and m["covered"] >= min_coverage * m["cells"]
                           for m in result["measures"].values())
    result["cost"] = read_cost(f"{folder}/cost.txt")
    alarms = false_alarms(load_doc(f"{folder}/run-2/summary.json"))
    if alarms:
        counts = alarms[1].values()
        result["changes_called"] = sum(v.get("real", 0) for v in counts)
        result["changes_tested"] = sum(sum(v.values()) for v in counts)
    return result


def load_doc(path):
    with open(path) as f:
        return json.load(f)


def pooled(results):
    out = {}
    for key, _ in MEASURES:
        ms = [r["measures"][key] for r in results]
        covered, cells = sum(m["covered"] for m in ms), sum(m["cells"] for m in ms)
        out[key] = {"coverage": covered / cells if cells else 0, "covered": covered,
                    "cells": cells,
                    "median_width": statistics.median(m["median_width"] for m in ms),
                    "worst_coverage": min(m["coverage"] for m in ms)}
    return out


def cost_summary(results):
    runs = [c for r in results for c in r["cost"].values()]
    per = lambda k: [c[k] for c in runs if c.get(k) is not None]
    wall = sum(per("wall_s"))
    if not runs or not wall:
        return {}
    out = {"wall_s_per_run": statistics.median(per("wall_s")),
           "compare_cpu_s_per_run": statistics.median(per("compare_cpu_s"))}
    if per("poll_s"):
        # CPUs kept busy spinning in the idle loop, on average over the runs' wall time.
        out["spinning_cpus"] = sum(per("poll_s")) / wall
        out["halted_cpus"] = sum(per("halt_s")) / wall
    return out


def attempts(folders, min_coverage, json_path):
    results = [one_attempt(f, min_coverage) for f in folders]
    for r in results:
        ms = r["measures"]
        shift = r["speed_shift"]
        print(f"{r['folder']}: " + "; ".join(
            f"{name} {ms[key]['covered']}/{ms[key]['cells']} width {ms[key]['median_width']:.2f}"
            for key, name in MEASURES)
            + (f"; speed {shift:.3f}" if shift else "")
            + (" pass" if r["passed"] else " FAIL"))
    passed = sum(r["passed"] for r in results)
    n = results[0]["repeats"]
    called = sum(r.get("changes_called", 0) for r in results)
    tested = sum(r.get("changes_tested", 0) for r in results)
    steady = [r for r in results if r["speed_shift"] and abs(r["speed_shift"] - 1) <= 0.05]
    summary = {"changes_called": called, "changes_tested": tested,
               "steady_attempts": len(steady),
               "steady_attempts_passed": sum(r["passed"] for r in steady),
               "attempts": len(results), "attempts_passed": passed,
               "pass_rate": passed / len(results), "min_coverage": min_coverage,
               "held_off": results[0]["held_off"], "repeats": n,
               "exchangeable_coverage": exchangeable_coverage(n),
               "pooled": pooled(results), "cost": cost_summary(results), "each": results}
    print()
    print(f"{passed} of {len(results)} attempts passed (every measure at least "
          f"{100 * min_coverage:.0f}%); idle held off: {summary['held_off']}")
    for key, name in MEASURES:
        p = summary["pooled"][key]
        print(f"  {name}: {p['covered']} of {p['cells']} cells over all attempts "
              f"({pct(p['covered'], p['cells'])}), worst attempt {100 * p['worst_coverage']:.1f}%, "
              f"median relative width {p['median_width']:.3f}")
    print(f"  attempts in which the machine kept its speed (one-CPU round trips of run 2 within "
          f"5% of run 1's): {len(steady)}, of which {summary['steady_attempts_passed']} passed")
    if tested:
        print(f"  the rank test (--baseline, the same build twice) called {called} of {tested} "
              f"figures a real change ({pct(called, tested)})")
    print(f"  two runs of one unchanging distribution would reach "
          f"{100 * summary['exchangeable_coverage']:.1f}% with {n} repeats (before the floor)")
    c = summary["cost"]
    if c:
        print(f"  per run: {c['wall_s_per_run']:.1f} s, the comparison's CPU "
              f"{c['compare_cpu_s_per_run']:.1f} s"
              + (f"; CPUs spinning idle {c['spinning_cpus']:.2f}, halted {c['halted_cpus']:.2f}"
                 " on average" if "spinning_cpus" in c else ""))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0 if passed >= 0.9 * len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
