#!/usr/bin/env python3
"""Checks how well one `compare` run's intervals say where another run lands.

usage: bench/calibrate.py RUN1/summary.json RUN2/summary.json [--min-coverage 0.9]

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
    ap.add_argument("run1")
    ap.add_argument("run2")
    ap.add_argument("--min-coverage", type=float, default=0.9)
    args = ap.parse_args()
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


if __name__ == "__main__":
    sys.exit(main())
