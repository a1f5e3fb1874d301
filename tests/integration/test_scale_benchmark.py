"""The scale benchmark (``benchmarks/scale.py``) runs at a tiny size, so it cannot rot: 2
receivers and 2 daemons as processes on a real PostgreSQL, the tracker stand-in, a real rsync
daemon; every release reaches Production and nothing goes wrong. Figures are not checked
here (performance targets live in the benchmark, never in timed tests)."""

from __future__ import annotations

from benchmarks import scale, scale_report


def test_the_scale_benchmark_walks_every_release_to_production_without_errors() -> None:
    args = scale.parse(["--releases", "5", "--files", "15", "--majors", "3",
                        "--max-seconds", "120"])  # fmt: skip
    figures = scale.run(args)
    assert figures.errors == [], figures.errors
    assert figures.production == 5
    # Four moves asked each, plus the daemon's own moves of Deferred releases into the slot.
    assert len(figures.transitions) >= 20
    assert figures.tree_files > 15 and figures.database_bytes > 0
    assert figures.calls > 0 and len(figures.hooks_ms) == 20
    assert "errors: 0" in scale_report.render(figures)
