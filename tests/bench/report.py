#!/usr/bin/env python3
"""Summarise tests/bench/run.sh results as Markdown, or put a summary into a doc.

  report.py --results results.tsv --established FILE --writes FILE --entries FILE
            --machine FILE ...                        print the summary
  report.py --replace-block DOC --block FILE           replace DOC's results block

The results block of DOC is the text between the lines
<!-- bench-results:begin --> and <!-- bench-results:end -->.
"""

import argparse
import csv
import statistics
import sys

BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"

CONFIGS = [
    ("A", "rlm_always `ok`, one round (ceiling)"),
    ("B", "stock rlm_ldap, search + bind as the user, one round"),
    ("C", "stock rlm_ldap + rlm_totp, session-state, two rounds"),
    ("D1", "rlm_twostep, round 1 only"),
    ("D", "rlm_twostep, two rounds"),
    ("DN", "rlm_twostep, two rounds, slapd with `dbnosync`"),
]

# Configuration names shown in the tables. results.tsv uses the keys.
DISPLAY = {"DN": "D nosync", "DN70": "D nosync at 70 %"}


def load_runs(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    runs = {}
    for row in rows:
        if row["repeat"] == "warmup":
            continue
        completed = int(row["completed"])
        per_login = (lambda value: float(value) / completed) if completed else (lambda value: float("nan"))
        row["radiusd_ms_per_login"] = per_login(row["radiusd_cpu_ms"])
        row["slapd_ms_per_login"] = per_login(row["slapd_cpu_ms"])
        row["total_ms_per_login"] = row["radiusd_ms_per_login"] + row["slapd_ms_per_login"]
        row["binds_per_login"] = per_login(row["binds"])
        row["searches_per_login"] = per_login(row["searches"])
        row["modifies_per_login"] = per_login(row["modifies"])
        # Busy CPU time of the machine not used by radiusd, slapd or the load
        # generator: other processes, such as tests run at the same time.
        row["other_cpu_s"] = (float(row["busy_cpu_ms"]) - float(row["radiusd_cpu_ms"])
                              - float(row["slapd_cpu_ms"])) / 1000 - float(row["loadgen_cpu_s"])
        row["rejects"] = int(row["r1_rejects"] or 0) + int(row["r2_rejects"] or 0)
        runs.setdefault(row["config"], []).append(row)
    return runs


def median(runs, key):
    return statistics.median(float(run[key]) for run in runs)


def summarise(runs):
    keys = ["logins_per_s", "r1_p50", "r1_p95", "r1_p99", "r2_p50", "r2_p95", "r2_p99",
            "radiusd_ms_per_login", "slapd_ms_per_login", "total_ms_per_login",
            "binds_per_login", "searches_per_login", "modifies_per_login", "connections", "failed",
            "rejects", "unexpected", "timeouts"]
    return {config: {key: median(rows, key) for key in keys} for config, rows in runs.items()}


def met(flag):
    return "met" if flag else "missed"


def load_writes(path):
    """Read writes.txt of run.sh: "NAME WHEN MODIFIES SECONDS SLAPD_CPU_MS" lines.

    Returns {(name, when): figures}.
    """
    writes = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, when, modifies, seconds, cpu_ms = line.split()
            modifies = int(modifies)
            writes[(name, when)] = {
                "modifies": modifies,
                "seconds": float(seconds),
                "per_s": modifies / float(seconds),
                "ms_each": float(seconds) * 1000 / modifies,
                "cpu_ms_each": float(cpu_ms) / modifies,
            }
    return writes


def print_summary(args):
    runs = load_runs(args.results)
    summary = summarise(runs)
    established = {}
    with open(args.established, encoding="utf-8") as handle:
        for line in handle:
            name, count = line.split()
            established[name] = int(count)
    out = sys.stdout

    out.write(f"Measured by `make bench` (tests/bench/run.sh): {args.users} users, "
              f"{args.concurrency} sign-ins outstanding, {args.repeats} repetitions of "
              f"A B C D1 D (D nosync), {args.seconds} s each, whole run {args.elapsed} s.\n\n")
    out.write("Machine:\n\n")
    with open(args.machine, encoding="utf-8") as handle:
        out.write(handle.read())
    out.write("\n")

    out.write("Medians over the repetitions. Latencies in ms; CPU in ms per completed sign-in, "
              "from /proc/PID/stat (10 ms ticks); LDAP operations per sign-in from slapd's "
              "monitor database; connections = LDAP connections slapd accepted during the runs "
              "of that configuration.\n\n")
    out.write("| config | what | sign-ins/s | round 1 p50 / p95 / p99 | round 2 p50 / p95 / p99 "
              "| radiusd CPU | slapd CPU | total CPU | binds | searches | modifies | new conns "
              "| failed | rejects | timeouts |\n")
    out.write("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for config, what in CONFIGS:
        if config not in summary:
            continue
        s = summary[config]
        round2 = "-" if config in ("A", "B", "D1") else f"{s['r2_p50']:.2f} / {s['r2_p95']:.2f} / {s['r2_p99']:.2f}"
        out.write(f"| {DISPLAY.get(config, config)} | {what} | {s['logins_per_s']:.0f} | "
                  f"{s['r1_p50']:.2f} / {s['r1_p95']:.2f} / {s['r1_p99']:.2f} | {round2} | "
                  f"{s['radiusd_ms_per_login']:.3f} | {s['slapd_ms_per_login']:.3f} | "
                  f"{s['total_ms_per_login']:.3f} | {s['binds_per_login']:.2f} | "
                  f"{s['searches_per_login']:.2f} | {s['modifies_per_login']:.2f} | "
                  f"{s['connections']:.0f} | {s['failed']:.0f} | {s['rejects']:.0f} | "
                  f"{s['timeouts']:.0f} |\n")
    out.write("\n")

    writes = load_writes(args.writes)
    out.write(f"slapd alone, before and after the load runs (`bench_write_rate` in tests/bench/lib.sh): "
              f"{args.write_clients} ldapmodify clients at once, each bound as the service account "
              f"and sending its modifies one after another, each replacing twostepFailCount on "
              f"its own user. LMDB commits one write transaction at a time, so the time per "
              f"modify is the elapsed time divided by the modifies.\n\n")
    out.write("| slapd | when | modifies | seconds | modifies/s | ms per modify | slapd CPU ms per modify |\n")
    out.write("|---|---|---:|---:|---:|---:|---:|\n")
    for name, label in (("sync", "default (synchronous commit)"), ("nosync", "`dbnosync`")):
        for when in ("before", "after"):
            if (name, when) in writes:
                w = writes[(name, when)]
                out.write(f"| {label} | {when} | {w['modifies']} | {w['seconds']:.2f} | {w['per_s']:.0f} | "
                          f"{w['ms_each']:.3f} | {w['cpu_ms_each']:.3f} |\n")
    out.write("\n")

    out.write("The first user of the last D and D nosync runs, read back as the service account "
              "after the runs:\n\n")
    with open(args.entries, encoding="utf-8") as handle:
        for line in handle:
            out.write(f"- {line.strip()}\n")
    out.write("\n")

    out.write("Every run:\n\n")
    out.write("| repeat | config | sign-ins/s | failed | rejects | unexpected | timeouts | "
              "radiusd CPU ms/sign-in | slapd CPU ms/sign-in | modifies/sign-in | round 1 p50 | "
              "round 2 p50 | loadgen CPU s | other CPU s |\n")
    out.write("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for config, _ in CONFIGS + [("D70", ""), ("DN70", ""), ("B70", "")]:
        for run in runs.get(config, []):
            out.write(f"| {run['repeat']} | {DISPLAY.get(config, config)} | "
                      f"{float(run['logins_per_s']):.0f} | {run['failed']} | {run['rejects']} | "
                      f"{run['unexpected']} | {run['timeouts']} | {run['radiusd_ms_per_login']:.3f} | "
                      f"{run['slapd_ms_per_login']:.3f} | {run['modifies_per_login']:.2f} | "
                      f"{run['r1_p50']} | {run['r2_p50']} | {run['loadgen_cpu_s']} | {run['other_cpu_s']:.2f} |\n")
    out.write("\n")

    if not all(config in summary for config in ("A", "B", "C", "D", "D1", "DN")):
        return
    a, b, c, d, d1, dn = (summary[k] for k in ("A", "B", "C", "D", "D1", "DN"))
    out.write("Ratios:\n\n")
    out.write(f"- D/C, two-round sign-ins/s: {d['logins_per_s'] / c['logins_per_s']:.2f}; "
              f"D nosync/C: {dn['logins_per_s'] / c['logins_per_s']:.2f}\n")
    out.write(f"- D/C, CPU per sign-in (radiusd + slapd): {d['total_ms_per_login'] / c['total_ms_per_login']:.2f}; "
              f"D nosync/C: {dn['total_ms_per_login'] / c['total_ms_per_login']:.2f}\n")
    out.write(f"- D/C, round 1 p50: {d['r1_p50'] / c['r1_p50']:.2f}; round 2 p50: {d['r2_p50'] / c['r2_p50']:.2f}\n")
    out.write(f"- D nosync/D, two-round sign-ins/s: {dn['logins_per_s'] / d['logins_per_s']:.2f}\n")
    out.write(f"- D/B, round 1 sign-ins/s (D1/B): {d1['logins_per_s'] / b['logins_per_s']:.2f}; "
              f"round 1 p50 (D1/B): {d1['r1_p50'] / b['r1_p50']:.2f}; "
              f"CPU per round 1 (D1/B): {d1['total_ms_per_login'] / b['total_ms_per_login']:.2f}\n")
    out.write(f"- D/A, sign-ins/s: {d['logins_per_s'] / a['logins_per_s']:.2f}\n")
    round2_cpu = d["total_ms_per_login"] - d1["total_ms_per_login"]
    round2_slapd = d["slapd_ms_per_login"] - d1["slapd_ms_per_login"]
    round2_cpu_nosync = dn["total_ms_per_login"] - d1["total_ms_per_login"]
    out.write(f"- D's round 2 alone, CPU per sign-in (D - D1): {round2_cpu:.3f} ms, of which slapd "
              f"{round2_slapd:.3f} ms; D nosync - D1: {round2_cpu_nosync:.3f} ms\n")
    for name, key in (("D", "sync"), ("D nosync", "nosync")):
        rates = [writes[(key, when)]["per_s"] for when in ("before", "after") if (key, when) in writes]
        if rates:
            x = summary["D" if key == "sync" else "DN"]
            out.write(f"- {name}'s sign-ins/s over the modifies/s of its slapd alone: "
                      + ", ".join(f"{x['logins_per_s'] / rate:.2f}" for rate in rates)
                      + " (before, after)\n")
    out.write("\n")

    out.write("Targets:\n\n")
    for key, name in (("D", "D"), ("DN", "D nosync")):
        x = summary[key]
        out.write(f"- {name}'s CPU per sign-in <= C's: {x['total_ms_per_login']:.3f} vs "
                  f"{c['total_ms_per_login']:.3f} ms, {met(x['total_ms_per_login'] <= c['total_ms_per_login'])}\n")
    for key, name in (("D", "D"), ("DN", "D nosync")):
        x = summary[key]
        out.write(f"- {name}'s two-round sign-ins/s >= C's: {x['logins_per_s']:.0f} vs {c['logins_per_s']:.0f}, "
                  f"{met(x['logins_per_s'] >= c['logins_per_s'])}\n")
    out.write(f"- D's round 1 within 10 % of B (D1 >= 0.9 B): {d1['logins_per_s']:.0f} vs "
              f"{b['logins_per_s']:.0f} sign-ins/s, {met(d1['logins_per_s'] >= 0.9 * b['logins_per_s'])}\n")
    # D1 measures round 1 alone, so round 2 is what D adds to D1.
    round1_ok = (abs(d1["searches_per_login"] - 1) < 0.01 and abs(d1["binds_per_login"] - 1) < 0.01
                 and d1["modifies_per_login"] < 0.01)
    out.write(f"- D's round 1 sends 1 search and 1 bind: D1 {d1['searches_per_login']:.3f} searches, "
              f"{d1['binds_per_login']:.3f} binds, {d1['modifies_per_login']:.3f} modifies per sign-in, "
              f"{met(round1_ok)}\n")
    for key, name in (("D", "D"), ("DN", "D nosync")):
        x = summary[key]
        # round() + 0.0 prints a difference of about -1e-17 as 0.000, not -0.000.
        extra = {op: round(x[f"{op}_per_login"] - d1[f"{op}_per_login"], 3) + 0.0
                 for op in ("searches", "binds", "modifies")}
        round2_ok = (abs(extra["modifies"] - 1) < 0.01 and abs(extra["searches"]) < 0.01
                     and abs(extra["binds"]) < 0.01)
        out.write(f"- {name}'s round 2 sends 1 modify and nothing else: {name} - D1 = "
                  f"{extra['modifies']:.3f} modifies, {extra['searches']:.3f} searches, "
                  f"{extra['binds']:.3f} binds per sign-in, {met(round2_ok)}\n")
    # The pools close idle connections above "spare" between runs and open
    # them again under load, so a few openings per run are expected. Set-up
    # per request would show as about one opening per sign-in.
    d_runs = runs["D"] + runs["D1"]
    new_connections = sum(float(run["connections"]) for run in d_runs)
    d_logins = sum(float(run["completed"]) for run in d_runs)
    out.write(f"- No LDAP connection set-up per request in steady state: {new_connections:.0f} connections "
              f"opened during all D and D1 runs, for {d_logins:.0f} sign-ins "
              f"({new_connections / d_logins:.6f} per sign-in); radiusd D holds "
              f"{established.get('D', 0)} after the runs, D nosync {established.get('DN', 0)} "
              f"(pools: search max 32, bind max 32), "
              f"B {established.get('B', 0)}, C {established.get('C', 0)} (max 32), "
              f"{met(new_connections / d_logins < 0.001)}\n")
    for key, name in (("D70", "D"), ("DN70", "D nosync")):
        if key not in summary:
            continue
        x = summary[key]
        ok = x["r1_p99"] < 2 * x["r1_p50"] and x["r2_p99"] < 2 * x["r2_p50"]
        out.write(f"- p99 < 2 x p50 at 70 % of {name}'s peak ({x['logins_per_s']:.0f} sign-ins/s): "
                  f"round 1 {x['r1_p50']:.2f} / {x['r1_p99']:.2f} ms, round 2 "
                  f"{x['r2_p50']:.2f} / {x['r2_p99']:.2f} ms (p50 / p99), {met(ok)}\n")
    if "B70" in summary:
        b70 = summary["B70"]
        out.write(f"- for comparison, B at 70 % of its peak ({b70['logins_per_s']:.0f} sign-ins/s): "
                  f"round 1 {b70['r1_p50']:.2f} / {b70['r1_p99']:.2f} ms (p50 / p99)\n")


def replace_block(args):
    with open(args.replace_block, encoding="utf-8") as handle:
        text = handle.read()
    with open(args.block, encoding="utf-8") as handle:
        block = handle.read()
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        sys.exit(f"report.py: {args.replace_block} has no '{BEGIN}' ... '{END}' block to replace")
    text = text[:start + len(BEGIN)] + "\n" + block.rstrip("\n") + "\n" + text[end:]
    with open(args.replace_block, "w", encoding="utf-8") as handle:
        handle.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results")
    parser.add_argument("--established")
    parser.add_argument("--writes", help="writes.txt of run.sh")
    parser.add_argument("--write-clients", default="8", help="ldapmodify clients of the write-rate loop")
    parser.add_argument("--entries", help="entry.txt of run.sh")
    parser.add_argument("--machine")
    parser.add_argument("--seconds")
    parser.add_argument("--repeats")
    parser.add_argument("--users")
    parser.add_argument("--concurrency")
    parser.add_argument("--elapsed")
    parser.add_argument("--replace-block", metavar="DOC")
    parser.add_argument("--block", metavar="FILE")
    args = parser.parse_args()
    if args.replace_block:
        if not args.block:
            parser.error("--replace-block needs --block")
        replace_block(args)
    elif args.results and args.established and args.writes and args.entries and args.machine:
        print_summary(args)
    else:
        parser.error("give --results, --established, --writes, --entries and --machine, "
                     "or --replace-block and --block")


if __name__ == "__main__":
    main()
