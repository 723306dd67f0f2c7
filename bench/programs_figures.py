#!/usr/bin/env python3
"""The figures docs/programs.md quotes, from the two runs of bench/programs.sh.

usage: programs_figures.py TURNS_DIR FREE_DIR > TURNS_DIR/figures.json

Every number is a median over the repeats of one cell of one run (lo and hi: its interval, as
summary.md shows it), put in the units the page writes (µs), so that
the page's marked figures (client/tests/cli/figures.rs) point at a value rather than a formula.
`async` compares async-lock with std-lock (the same flock call, waited for on the calling
thread) in the same run, on every placement: ratios of the two medians."""
import json, sys

TABLE_PLACEMENT = "split"
ASYNC, BLOCKING = "async-lock", "std-lock"


def load(folder):
    with open(f"{folder}/summary.json") as f:
        return json.load(f)


def row(summary, variant, placement):
    for r in summary["summary"]:
        if r["variant"] == variant and r["placement"] == placement:
            return r
    return None


def spread(r, key, scale=1.0):
    """median, lo, hi of r[key], divided by scale."""
    return {k: r[key][k] / scale for k in ("median", "lo", "hi") if k in r[key]}


def rounds_done(summary, variant, placement):
    done = [
        min(run["server"]["rounds"], run["client"]["rounds"])
        for run in summary["runs"]
        if run["variant"] == variant and run["placement"] == placement
    ]
    return (min(done), max(done)) if done else (None, None)


def turns_rows(turns):
    rows = []
    for variant in dict.fromkeys(r["variant"] for r in turns["summary"]):
        r = row(turns, variant, TABLE_PLACEMENT)
        if r is None:
            continue
        lo, hi = rounds_done(turns, variant, TABLE_PLACEMENT)
        rows.append({
            "variant": variant,
            "repeats": r["repeats"],
            "rounds_per_sec": spread(r, "rounds_per_sec"),
            "whoops_per_round": spread(r, "whoops_per_round"),
            "handoff_p50_us": spread(r, "handoff_p50_ns", 1e3),
            "round_trip_p50_us": spread(r, "round_trip_p50_ns", 1e3),
            "cpu_per_round_us": spread(r, "cpu_ns_per_round", 1e3),
            "rounds_done_min": lo,
            "rounds_done_max": hi,
        })
    return rows


def free_rows(free):
    rows = []
    for variant in dict.fromkeys(r["variant"] for r in free["summary"]):
        r = row(free, variant, TABLE_PLACEMENT)
        if r is None:
            continue
        rows.append({
            "variant": variant,
            "repeats": r["repeats"],
            "rounds_per_sec": spread(r, "rounds_per_sec"),
            "wait_p50_us": spread(r, "handoff_p50_ns", 1e3),
            "wait_p99_us": spread(r, "handoff_p99_ns", 1e3),
            "wait_max_us": spread(r, "handoff_max_ns", 1e3),
            "cpu_per_round_us": spread(r, "cpu_ns_per_round", 1e3),
            "jain_index": spread(r, "jain_index"),
            "bypass_max": spread(r["order"], "bypass_max"),
        })
    return rows


def ratio(a, b):
    return a / b if b else None


def async_rows(turns, free):
    rows = []
    for placement in dict.fromkeys(r["placement"] for r in turns["summary"]):
        ta, tb = row(turns, ASYNC, placement), row(turns, BLOCKING, placement)
        fa, fb = row(free, ASYNC, placement), row(free, BLOCKING, placement)
        if None in (ta, tb, fa, fb):
            continue
        m = lambda r, k: r[k]["median"]
        rows.append({
            "placement": placement,
            "turns_round_trip_us": {v: m(r, "round_trip_p50_ns") / 1e3 for v, r in ((ASYNC, ta), (BLOCKING, tb))},
            "turns_cpu_per_round_us": {v: m(r, "cpu_ns_per_round") / 1e3 for v, r in ((ASYNC, ta), (BLOCKING, tb))},
            "turns_whoops_per_round": {v: m(r, "whoops_per_round") for v, r in ((ASYNC, ta), (BLOCKING, tb))},
            "free_rounds_per_sec": {v: m(r, "rounds_per_sec") for v, r in ((ASYNC, fa), (BLOCKING, fb))},
            "free_wait_p50_us": {v: m(r, "handoff_p50_ns") / 1e3 for v, r in ((ASYNC, fa), (BLOCKING, fb))},
            "free_cpu_per_round_us": {v: m(r, "cpu_ns_per_round") / 1e3 for v, r in ((ASYNC, fa), (BLOCKING, fb))},
            "turns_round_trip_ratio": ratio(m(ta, "round_trip_p50_ns"), m(tb, "round_trip_p50_ns")),
            "turns_cpu_ratio": ratio(m(ta, "cpu_ns_per_round"), m(tb, "cpu_ns_per_round")),
            "free_rounds_per_sec_ratio": ratio(m(fa, "rounds_per_sec"), m(fb, "rounds_per_sec")),
            "free_cpu_ratio": ratio(m(fa, "cpu_ns_per_round"), m(fb, "cpu_ns_per_round")),
        })
    return rows


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: programs_figures.py TURNS_DIR FREE_DIR")
    turns, free = load(sys.argv[1]), load(sys.argv[2])
    out = {
        "sources": [f"{sys.argv[1]}/summary.json", f"{sys.argv[2]}/summary.json"],
        "commands": [turns["command"], free["command"]],
        "table_placement": TABLE_PLACEMENT,
        "turns": turns_rows(turns),
        "free": free_rows(free),
        "async": async_rows(turns, free),
    }
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


main()
