#!/usr/bin/env python3
"""figures.py — the figures table of the fault tests (docs/faults.md).

    figures.py ROWS [TITLE]

ROWS: one line per run, "FAULT RUNS CONVERGED LOST DUP INVALID [KILLED]".
Prints a Markdown table, one row per fault (runs summed), and a total.
"""
import collections
import sys

rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 6:
        continue
    r = rows.setdefault(f[0], [0, 0, 0, 0, 0])
    for i in range(5):
        r[i] += int(f[1 + i])
title = sys.argv[2] if len(sys.argv) > 2 else "fault"
fmt = "| %-40s | %4s | %9s | %13s | %18s | %19s |"
print(fmt % (title, "runs", "converged", "lost reports", "duplicate reports", "invalid state files"))
print("|%s|%s|%s|%s|%s|%s|" % ("-" * 42, "-" * 6, "-" * 11, "-" * 15, "-" * 20, "-" * 21))
tot = [0] * 5
for p, r in rows.items():
    print(fmt % (p, *r))
    tot = [a + b for a, b in zip(tot, r)]
print(fmt % ("total (%d)" % len(rows), *tot))
