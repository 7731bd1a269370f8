#!/usr/bin/env python3
"""Joins the JSON records of a GPU benchmark run into one table (benchmarks/README.md).

  python3 benchmarks/report_table.py <out-dir or .jsonl files...>

Reads every *.jsonl given (a directory means all of its *.jsonl), skipping lines that are
not JSON objects. One row per (part, case) with a record of side "ours" or "baseline":
  ours ms, ours rate | fastest baseline (impl), its ms and rate | speed = baseline ms /
  ours ms (> 1: ours is faster; equal to the ratio of the rates, since both sides count
  the same FLOPs, bytes and tokens).
Rates: a, b TFLOP/s over visible pairs; c GB/s of minimal traffic and its fraction of
the measured copy bandwidth; d tokens/s and MFU. The fastest baseline is chosen among
records without an error and without a failed correctness check (a case whose every
baseline failed its check shows the fastest anyway, flagged). Below the table: the
reference measurements, every failure, and every check that did not pass.
Standard library only: runs where PyTorch is not installed.
"""
from __future__ import annotations

import json
import pathlib
import sys
from collections import defaultdict

PART_ORDER = "abcd"


def read_records(paths: list[str]) -> list[dict]:
    files: list[pathlib.Path] = []
    for path in map(pathlib.Path, paths):
        files.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    records = []
    for file in files:
        for line in file.read_text(errors="replace").splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "part" in record:
                records.append(record)
    return records


def rate(record: dict, copy_gbps: float | None, peak_tflops: float | None) -> str:
    """The part's figure of merit; MFU against the run's measured matmul peak, so that
    both sides of part d share one denominator."""
    part = record["part"]
    if part in "ab":
        return f"{record['tflops']:.0f} TFLOP/s"
    if part == "c":
        share = f" ({100 * record['GBps'] / copy_gbps:.0f}% copy)" if copy_gbps else ""
        return f"{record['GBps']:.0f} GB/s{share}"
    mfu = record["tflops"] / peak_tflops if peak_tflops else record.get("mfu")
    return f"{record['tokens_per_s']:,.0f} tok/s" + (f", MFU {100 * mfu:.1f}%" if mfu else "")


def usable(record: dict) -> bool:
    return "error" not in record and "ms" in record


def fastest(records: list[dict]) -> dict | None:
    """Fastest usable record, preferring those whose check did not fail."""
    ok = [r for r in records if usable(r) and r.get("check_ok", True)]
    candidates = ok or [r for r in records if usable(r)]
    return min(candidates, key=lambda r: r["ms"]) if candidates else None


def case_order(key: tuple[str, str]) -> tuple:
    """Part, then the case's text with numbers compared as numbers (T=4096 < T=32768)."""
    part, case = key
    words = tuple((0, int(w.split("=")[1]), "") if "=" in w and w.split("=")[1].isdigit()
                  else (1, 0, w) for w in case.split())
    return (PART_ORDER.find(part), words)


def format_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    records = read_records(sys.argv[1:] or ["."])
    references = [r for r in records if r.get("side") == "reference" and usable(r)]
    copy_gbps = next((r["GBps"] for r in references if r["part"] == "c"), None)
    peak_tflops = next((r["tflops"] for r in references if r["part"] == "d"), None)

    cases: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("side") in ("ours", "baseline"):
            cases[(record["part"], record["case"])][record["side"]].append(record)

    rows = [["part", "case", "ours ms", "ours rate", "baseline", "base ms", "base rate",
             "speed ours/base"]]
    notes = []
    for key in sorted(cases, key=case_order):
        part, case = key
        ours, base = fastest(cases[key]["ours"]), fastest(cases[key]["baseline"])
        row = [part, case]
        row += [f"{ours['ms']:.3f}", rate(ours, copy_gbps, peak_tflops)] if ours else ["-", "-"]
        if base:
            flag = " CHECK FAILED" if base.get("check_ok") is False else ""
            row += [base["impl"] + flag, f"{base['ms']:.3f}", rate(base, copy_gbps, peak_tflops)]
        else:
            row += ["-", "-", "-"]
        row.append(f"{base['ms'] / ours['ms']:.2f}x" if ours and base else "-")
        rows.append(row)
        if ours and base and "flops" in ours and "flops" in base and \
                abs(ours["flops"] - base["flops"]) > 1e-3 * base["flops"]:
            notes.append(f"{part} {case}: FLOP counts differ (ours {ours['flops']:.4g}, "
                         f"baseline {base['flops']:.4g})")
        for record in cases[key]["ours"] + cases[key]["baseline"]:
            if "error" in record:
                notes.append(f"{part} {case}: {record['side']} {record['impl']} failed: "
                             f"{record['error'][:160]}")
            elif record.get("check_ok") is False:
                notes.append(f"{part} {case}: {record['impl']} failed its check: "
                             f"{record.get('check_rel_err')}")

    if len(rows) > 1:
        print(format_table(rows))
    else:
        print("no benchmark records found")
    for record in records:
        if record.get("side") == "reference":
            figure = (f"{record['GBps']:.0f} GB/s" if "GBps" in record else
                      f"{record['tflops']:.0f} TFLOP/s" if "tflops" in record else
                      f"error: {record.get('error', '?')[:160]}")
            print(f"reference: {record['case']} ({record['impl']}): {figure}")
        elif record.get("side") == "run" and record.get("exit"):
            print(f"FAILED STEP: {record['case']} exited with {record['exit']} after "
                  f"{record.get('seconds', '?')} s (see {record['case']}.log)")
        elif record.get("side") == "check":
            verdict = ("error: " + record["error"][:160] if "error" in record else
                       "ok" if record.get("check_ok") else f"FAILED {record}")
            print(f"check: {record['case']}: {verdict}")
    devices = sorted({r["device"] for r in records if "device" in r})
    if devices:
        print("device: " + ", ".join(devices))
    for note in notes:
        print("note: " + note)


if __name__ == "__main__":
    main()
