"""The metrics report rendered: a text table for people, CSV (formula-safe, by
``history.exports.safe_cell``) and JSON, of the whole report or of one of its ``TABLES``.

Pure formatting of a ``MetricsReport`` it is given: it counts nothing and reads nothing.
Times are UTC, written ISO 8601 with ``Z`` in CSV and JSON; durations are seconds there, and
days with hours:minutes:seconds (rounded to the second) in the text table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge import printable
from repo_daemon.history import exports
from repo_daemon.metrics import report

TABLES: tuple[str, ...] = ("monthly", "uptake", "teams", "ngis", "durations")
FORMATS: tuple[str, ...] = ("table", "csv", "json")
TIME_IN_STATE = "time_in_state"
LEAD_TIME = "lead_time"
_DURATION_ROWS: tuple[tuple[str, str], ...] = (
    (report.SA_4, "StageRollout → Production"),
    (report.SA_5, "Production → staged-rollout report"),
    (LEAD_TIME, "Submitted → first Production"),
)


def iso(at: datetime) -> str:
    """A naive UTC time as ISO 8601 with ``Z``."""
    return at.isoformat() + "Z"


def _short(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


def duration_text(seconds: float | None) -> str:
    """``3d 04:05:06`` (``04:05:06`` under a day), rounded to the second; ``-`` for None."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {clock}" if days else clock


# -- JSON -------------------------------------------------------------------------------------


def _durations(d: report.Durations, samples: bool) -> dict[str, Any]:
    found: dict[str, Any] = {
        "n": d.n,
        "median_seconds": d.median_seconds,
        "p90_seconds": d.p90_seconds,
    }
    if samples:
        found["samples"] = list(d.samples)
    return found


def _query(q: report.Query) -> dict[str, Any]:
    return {
        "from": iso(q.since) if q.since is not None else None,
        "to": iso(q.until) if q.until is not None else None,
        "major_release": q.major_release,
    }


def _uptake(u: report.ReleaseUptake) -> dict[str, Any]:
    return {
        "ticket_id": u.ticket_id,
        "major_release": u.major_release,
        "entered_stage_rollout": iso(u.entered_stage_rollout),
        "teams_accepted": {t: iso(at) for t, at in u.teams_accepted.items()},
        "teams_fetched": {t: iso(at) for t, at in u.teams_fetched.items()},
    }


def as_dict(
    r: report.MetricsReport, table: str | None = None, *, samples: bool = True
) -> dict[str, Any]:
    """The report (or one of ``TABLES``) as JSON-ready data, with its period; the durations
    with every sample unless ``samples`` is False (n, median and p90 only)."""
    parts: dict[str, Any] = {"query": _query(r.query)}
    if table in (None, "monthly", "teams", "ngis"):
        parts["months"] = list(r.months)
    if table in (None, "monthly"):
        parts["monthly"] = {m: dict(c) for m, c in r.monthly.items()}
    if table in (None, "uptake"):
        parts["uptake"] = [_uptake(u) for u in r.uptake]
    if table in (None, "durations"):
        parts["stage_to_production"] = _durations(r.stage_to_production, samples)
        parts["production_to_report"] = _durations(r.production_to_report, samples)
    if table in (None, "teams"):
        parts["per_team"] = {t: dict(c) for t, c in r.per_team.items()}
    if table in (None, "ngis"):
        parts["per_ngi"] = {n: dict(c) for n, c in r.per_ngi.items()}
    if table in (None, "durations"):
        parts["time_in_state"] = {s: _durations(d, samples) for s, d in r.time_in_state.items()}
        parts["lead_time"] = _durations(r.lead_time, samples)
    return parts


def json_text(r: report.MetricsReport, table: str | None = None) -> str:
    """``as_dict`` as indented JSON."""
    return json.dumps(as_dict(r, table), indent=2, ensure_ascii=False) + "\n"


# -- CSV --------------------------------------------------------------------------------------


def _all_durations(r: report.MetricsReport) -> Iterator[tuple[str, str, report.Durations]]:
    yield report.SA_4, "", r.stage_to_production
    yield report.SA_5, "", r.production_to_report
    yield LEAD_TIME, "", r.lead_time
    for state, d in r.time_in_state.items():
        yield TIME_IN_STATE, state, d


def table_rows(r: report.MetricsReport, table: str) -> tuple[list[str], list[list[Any]]]:
    """One of ``TABLES`` as a header and rows of plain values (a rectangle)."""
    if table == "monthly":
        header = ["month", *report.MONTHLY_METRICS]
        return header, [[m, *(r.monthly[k][m] for k in report.MONTHLY_METRICS)] for m in r.months]
    if table == "uptake":
        header = ["ticket_id", "major_release", "entered_stage_rollout", "teams_accepted",
                  "teams_fetched", "accepted", "fetched"]  # fmt: skip
        return header, [
            [u.ticket_id, u.major_release, iso(u.entered_stage_rollout),
             len(u.teams_accepted), len(u.teams_fetched),
             ";".join(f"{t}={iso(at)}" for t, at in u.teams_accepted.items()),
             ";".join(f"{t}={iso(at)}" for t, at in u.teams_fetched.items())]
            for u in r.uptake
        ]  # fmt: skip
    if table in ("teams", "ngis"):
        grid = r.per_team if table == "teams" else r.per_ngi
        name = "team" if table == "teams" else "ngi"
        return [name, "month", "releases"], [
            [who, m, n] for who, counts in grid.items() for m, n in counts.items()
        ]
    if table == "durations":
        header = ["metric", "state", "n", "median_seconds", "p90_seconds"]
        return header, [
            [metric, state, d.n, d.median_seconds, d.p90_seconds]
            for metric, state, d in _all_durations(r)
        ]
    raise ValueError(f"no metrics table {table!r} (one of {', '.join(TABLES)})")


LONG_HEADER = ("table", "metric", "subject", "month", "measure", "value")


def _long_rows(r: report.MetricsReport) -> Iterator[list[Any]]:
    """The whole report as one rectangle: a row per figure."""
    for metric in report.MONTHLY_METRICS:
        for m, n in r.monthly[metric].items():
            yield ["monthly", metric, "", m, "releases", n]
    for u in r.uptake:
        month = f"{u.entered_stage_rollout:%Y-%m}"
        yield ["uptake", report.SA_1, u.ticket_id, month, "teams_accepted", len(u.teams_accepted)]
        yield ["uptake", report.SA_1, u.ticket_id, month, "teams_fetched", len(u.teams_fetched)]
    for table, metric, grid in (
        ("teams", report.SA_6, r.per_team),
        ("ngis", report.SA_7, r.per_ngi),
    ):
        for who, counts in grid.items():
            for m, n in counts.items():
                yield [table, metric, who, m, "releases", n]
    for metric, state, d in _all_durations(r):
        yield ["durations", metric, state, "", "n", d.n]
        yield ["durations", metric, state, "", "median_seconds", d.median_seconds]
        yield ["durations", metric, state, "", "p90_seconds", d.p90_seconds]


def csv_text(r: report.MetricsReport, table: str | None = None) -> str:
    """CSV (RFC 4180, CRLF, formula-safe cells) of one of ``TABLES``, or of the whole report
    as one long table (``LONG_HEADER``: a row per figure)."""
    if table is None:
        header, rows = list(LONG_HEADER), list(_long_rows(r))
    else:
        header, rows = table_rows(r, table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([exports.safe_cell(v) for v in row] for row in rows)
    return out.getvalue()


# -- the text table ---------------------------------------------------------------------------


def _grid_lines(
    title: str, name: str, grid: Mapping[str, Mapping[str, int]], months: Sequence[str]
) -> list[str]:
    lines = [title]
    if not grid:
        return [*lines, "  (no acceptance in the period)"]
    width = max(len(name), *(len(printable.escape(w)) for w in grid))
    lines.append(f"{name:<{width}}" + "".join(f"  {m:>7}" for m in months) + "  total")
    for who, counts in grid.items():
        cells = "".join(f"  {counts[m]:>7}" for m in months)
        lines.append(f"{printable.escape(who):<{width}}{cells}  {sum(counts.values()):>5}")
    return lines


def _team_times(found: Mapping[str, datetime]) -> str:
    return ", ".join(f"{printable.escape(t)} {_short(at)}" for t, at in found.items()) or "-"


def table_text(r: report.MetricsReport) -> str:
    """The whole report as text tables for a terminal (names from outside escaped)."""
    q = r.query
    assert q.since is not None and q.until is not None
    which = (
        f"major release {printable.escape(q.major_release)}"
        if q.major_release
        else "every major release"
    )
    lines = [
        f"Provisioning metrics from {_short(q.since)} to {_short(q.until)}"
        f" (UTC, end excluded), {which}",
        "",
        "Releases per month",
        "month   " + "".join(f"  {k:>9}" for k in report.MONTHLY_METRICS),
    ]
    for m in r.months:
        lines.append(f"{m:<8}" + "".join(f"  {r.monthly[k][m]:>9}" for k in report.MONTHLY_METRICS))
    totals = "".join(f"  {sum(r.monthly[k].values()):>9}" for k in report.MONTHLY_METRICS)
    lines += [f"{'total':<8}{totals}", ""]
    lines.append(f"{report.SA_1}  early-adopter teams per release that entered StageRollout")
    if not r.uptake:
        lines.append("  (no release entered StageRollout in the period)")
    else:
        lines.append("ticket  major release  entered StageRollout  accepted  fetched")
        for u in r.uptake:
            major = printable.escape(u.major_release or "-")
            lines.append(
                f"{u.ticket_id:>6}  {major:<13}  {_short(u.entered_stage_rollout):<20}"
                f"  {len(u.teams_accepted):>8}  {len(u.teams_fetched):>7}"
            )
            lines.append(f"        accepted: {_team_times(u.teams_accepted)}")
            lines.append(f"        fetched:  {_team_times(u.teams_fetched)}")
    lines.append("")
    lines += _grid_lines(
        f"{report.SA_6}  releases each early-adopter team accepted, per month",
        "team",
        r.per_team,
        r.months,
    )
    lines.append("")
    lines += _grid_lines(
        f"{report.SA_7}  releases the teams of each NGI accepted, per month",
        "NGI",
        r.per_ngi,
        r.months,
    )
    lines += ["", f"{'Durations':<46}  {'n':>5}  {'median':>12}  {'p90':>12}"]
    named = {
        report.SA_4: r.stage_to_production,
        report.SA_5: r.production_to_report,
        LEAD_TIME: r.lead_time,
    }
    for key, what in _DURATION_ROWS:
        label = f"{'lead time' if key == LEAD_TIME else key}  {what}"
        lines.append(_duration_line(label, named[key]))
    for state, d in r.time_in_state.items():
        lines.append(_duration_line(f"time in {state}", d))
    return "\n".join(lines) + "\n"


def _duration_line(label: str, d: report.Durations) -> str:
    median, p90 = duration_text(d.median_seconds), duration_text(d.p90_seconds)
    return f"{label:<46}  {d.n:>5}  {median:>12}  {p90:>12}"
