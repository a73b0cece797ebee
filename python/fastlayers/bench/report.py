"""Presenting benchmark records (the schema of :mod:`fastlayers.bench.runner`): the
terminal table, a per-family summary, the comparison with an earlier run, CSV.

The table has one row per case and *primary* backend (fastlayers, and fastlayers CUDA
where selected; otherwise the first backend asked for). Its columns are the primary's
median time and spread, its rate and % of peak, and one ``vs <peer>`` column per other
backend: the peer's median divided by the primary's, so > 1 means fastlayers is faster.
``--long`` prints one row per case and backend instead.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass

from fastlayers.bench.core import geomean
from fastlayers.bench.runner import RECORD_KEYS, SCHEMA

__all__ = ["Table", "compare_runs", "format_compare", "format_long", "format_summary", "load_run",
           "primaries", "write_csv"]


def primaries(backends: list[str]) -> list[str]:
    """The backends whose rows the table shows: fastlayers' own, else the first."""
    return [b for b in ("fastlayers", "cuda") if b in backends] or backends[:1]


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _by_backend(records: list[dict]) -> dict[str, dict]:
    return {r["backend"]: r for r in records}


@dataclass
class Table:
    """A fixed-width table printed row by row while the cases run."""

    backends: list[str]
    case_width: int
    shape_width: int

    @classmethod
    def for_cases(cls, cases, backends: list[str]) -> "Table":
        return cls(backends, max([4] + [len(c.id) for c in cases]), min(36, max([5] + [len(c.shape) for c in cases])))

    @property
    def peers(self) -> list[str]:
        return [b for b in self.backends if b not in primaries(self.backends)]

    def _line(self, cells: list[str]) -> str:
        widths = [self.case_width, self.shape_width, 10, 9, 5, 12, 6] + [max(8, len(p) + 3) for p in self.peers]
        left = {0, 1, 2}
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    def head(self) -> str:
        line = self._line(["case", "shape", "backend", "median ms", "±", "rate", "% peak"]
                          + [f"vs {p}" for p in self.peers])
        return line + "\n" + "-" * len(line)

    def rows(self, records: list[dict]) -> list[str]:
        """The rows of one case (its records, one per backend)."""
        by = _by_backend(records)
        out = []
        for b in primaries(self.backends):
            r = by[b]
            lead = [f"{r['family']}/{r['case']}", r["shape"][: self.shape_width], b]
            if r["status"] != "ok":
                out.append(self._line(lead + [r["status"].upper()]) + f"  {r['reason']}")
                continue
            unit = "GF/s" if r["rate_unit"] == "GFLOP/s" else "GB/s"
            cells = lead + [f"{r['median_ms']:.4g}", _fmt(r["spread_pct"] and r["spread_pct"] / 2, ".0f") + "%",
                            f"{r['rate']:.4g} {unit}" if r["rate"] else "-", _fmt(r["pct_peak"], ".1f")]
            for p in self.peers:
                if by[p]["status"] == "failed":
                    cells.append("FAILED")
                else:
                    cells.append(_fmt(r["speedup_vs"].get(p), ".2f") + ("x" if p in r["speedup_vs"] else ""))
            out.append(self._line(cells))
        return out


def format_long(records: list[dict]) -> str:
    """One row per case x backend, every backend's own numbers."""
    cols = ("case", "backend", "median ms", "spread", "rate", "% peak", "vs ref", "vs others")
    rows = []
    for r in records:
        case = f"{r['family']}/{r['case']}"
        if r["status"] != "ok":
            rows.append((case, r["backend"], r["status"].upper(), "", "", "", "", (r["reason"] or "")[:100]))
            continue
        others = " ".join(f"{o}:{s:.2f}x" for o, s in r["speedup_vs"].items() if o != "reference")
        rows.append((case, r["backend"], f"{r['median_ms']:.4g}", _fmt(r["spread_pct"], ".1f") + "%",
                     _fmt(r["rate"], ".4g") + " " + r["rate_unit"], _fmt(r["pct_peak"], ".1f"),
                     _fmt(r["speedup_vs_reference"], ".2f") + ("x" if r["speedup_vs_reference"] else ""), others))
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    right = {2, 3, 4, 5, 6}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_summary(records: list[dict], backends: list[str]) -> str:
    """Per family and primary backend: cases run, geometric-mean speed-up against each
    peer (> 1: the primary is faster) and the best % of peak."""
    peers_all = [b for b in backends if b not in primaries(backends)]
    lines = []
    for prim in primaries(backends):
        rows = [r for r in records if r["backend"] == prim and r["status"] == "ok"]
        if not rows:
            continue
        head = ["family", "cases"] + [f"vs {p}" for p in peers_all] + ["best % peak"]
        table = []
        for fam in dict.fromkeys(r["family"] for r in rows):
            fam_rows = [r for r in rows if r["family"] == fam]
            cells = [fam, str(len(fam_rows))]
            for p in peers_all:
                g = geomean(r["speedup_vs"].get(p) for r in fam_rows)
                cells.append("-" if math.isnan(g) else f"{g:.2f}x")
            best = max((r["pct_peak"] for r in fam_rows if r["pct_peak"] is not None), default=None)
            cells.append(_fmt(best, ".0f"))
            table.append(cells)
        widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(len(head))]
        lines.append(f"{prim}: geometric-mean speed-up per family (> 1: {prim} faster)")
        for cells in [head] + table:
            lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))))
    return "\n".join(lines)


# --- CSV, loading, comparison -------------------------------------------------------------

def write_csv(path: str, records: list[dict], backends: list[str]) -> None:
    peers = [b for b in backends if b != "reference"]  # speedup_vs_reference is a record key already
    keys = [k for k in RECORD_KEYS if k != "speedup_vs"] + [f"speedup_vs_{b}" for b in peers]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in records:
            row = {k: r[k] for k in RECORD_KEYS if k != "speedup_vs"}
            row["times_ms"] = " ".join(f"{t:.6g}" for t in r["times_ms"])
            for b in peers:
                row[f"speedup_vs_{b}"] = r["speedup_vs"].get(b)
            w.writerow(row)


def load_run(path: str) -> dict:
    """A ``--json`` file of an earlier run; ValueError saying what is wrong with it."""
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise ValueError(f"cannot read {path!r}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path!r} is not JSON: {e}") from None
    if not isinstance(d, dict) or d.get("schema") != SCHEMA or not isinstance(d.get("results"), list):
        raise ValueError(f"{path!r} is not a `fastlayers bench --json` file (expected schema {SCHEMA!r})")
    return d


def compare_runs(old: list[dict], new: list[dict], tolerance: float = 10.0) -> list[dict]:
    """Match records by (family, case, backend, threads) and classify the change.

    ``change`` = old median / new median (> 1: faster now). The noise band is the larger
    of ``tolerance`` percent and the mean of the two runs' spreads ((max-min)/median of
    their repeats): a slowdown beyond it is "regressed", a speed-up beyond it
    "improved", anything inside "same". Records not ok in either run are left out.
    """
    index = {(r["family"], r["case"], r["backend"], r["threads"]): r for r in old if r.get("status") == "ok"}
    out = []
    for r in new:
        o = index.get((r["family"], r["case"], r["backend"], r["threads"]))
        if r["status"] != "ok" or o is None or not o.get("median_ms") or not r["median_ms"]:
            continue
        change = o["median_ms"] / r["median_ms"]
        band = max(tolerance, ((o.get("spread_pct") or 0.0) + (r["spread_pct"] or 0.0)) / 2) / 100
        if change < 1 / (1 + band):
            verdict = "regressed"
        elif change > 1 + band:
            verdict = "improved"
        else:
            verdict = "same"
        out.append({"case": r["case"], "family": r["family"], "backend": r["backend"], "threads": r["threads"],
                    "old_ms": o["median_ms"], "new_ms": r["median_ms"], "change": change,
                    "noise_pct": band * 100, "verdict": verdict})
    return out


def format_compare(rows: list[dict], backends: list[str]) -> str:
    """The comparison of the primary backends' rows, regressions marked."""
    shown = [c for c in rows if c["backend"] in primaries(backends)]
    if not shown:
        return "compare: no case of this run was in the earlier one"
    width = max(len(f"{c['family']}/{c['case']}") for c in shown)
    lines = [f"{'case':{width}s}  {'backend':10s}  {'old ms':>9s}  {'new ms':>9s}  {'speed':>7s}  {'noise':>6s}  verdict"]
    for c in shown:
        mark = "REGRESSED" if c["verdict"] == "regressed" else c["verdict"]
        lines.append(f"{c['family'] + '/' + c['case']:{width}s}  {c['backend']:10s}  {c['old_ms']:9.4g}  "
                     f"{c['new_ms']:9.4g}  {c['change']:6.2f}x  {c['noise_pct']:5.0f}%  {mark}")
    n_reg = sum(c["verdict"] == "regressed" for c in shown)
    lines.append(f"{n_reg} regression(s) beyond the noise, {sum(c['verdict'] == 'improved' for c in shown)} "
                 f"improvement(s), {len(shown)} case(s) compared (speed = old time / new time)")
    return "\n".join(lines)
