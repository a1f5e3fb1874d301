"""A real Prometheus (Debian's ``prometheus``) scrapes ``/metrics`` of a live ``rollout serve``
on a known database state (SQLite and PostgreSQL), with the shipped alert rules loaded; its
query API returns the expected series with the expected values. ``promtool`` passes the
shipped rules (``check rules``, and their unit tests with ``test rules``) and the exposition
(``check metrics``, no lint problem)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.rt_setup.sandbox import free_port
from bridge.store import database
from tests.integration.test_receiver_process import ReceiverProcess, signed_hook
from tests.support import paths, prometheus_story

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
RULES = paths.ROOT / "docs" / "prometheus" / "alerts.yml"
RULE_TESTS = paths.ROOT / "docs" / "prometheus" / "alerts_test.yml"
DEADLINE = 60.0
HIDDEN = ("__name__", "job", "instance")  # labels a query's comparison leaves out


class MetricsServer(ReceiverProcess):
    """``rollout serve`` knowing the story's major releases."""

    def env(self) -> dict[str, str]:
        return super().env() | {"ROLLOUT_MAJOR_RELEASES": ",".join(prometheus_story.MAJORS)}

    def text(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def post(self, body: bytes, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("POST", "/hooks/rt", body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()


class Prometheus:
    """``prometheus`` on a loopback port scraping ``target`` every second, the shipped rules
    loaded; its data and log in ``where``."""

    def __init__(self, where: Path, target: str) -> None:
        where.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = where / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n  - job_name: rollout\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log_path = where / "prometheus.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={where / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def get(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else None
        except OSError:
            return 0, None
        finally:
            conn.close()

    def query(self, promql: str) -> dict[tuple[tuple[str, str], ...], float]:
        """The instant vector of ``promql``: labels (without name, job, instance) → value."""
        status, body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert status == 200 and body["status"] == "success", (status, body)
        return {
            tuple(sorted((k, v) for k, v in r["metric"].items() if k not in HIDDEN)): float(
                r["value"][1]
            )
            for r in body["data"]["result"]
        }

    def wait_for(self, promql: str, expected: dict[Any, float]) -> None:
        """Poll the query API until ``promql`` gives ``expected``."""
        deadline = time.monotonic() + DEADLINE
        found: dict[Any, float] = {}
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            if self.get("/-/ready")[0] == 200:
                found = self.query(promql)
                if found == expected:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{promql}: {found} != {expected}\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(30)


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[MetricsServer]:
    engine = database.create_engine(db_url)
    database.migrate(engine)
    prometheus_story.write(engine)
    engine.dispose()
    server = MetricsServer(db_url=db_url, data_dir=tmp_path / "bridge").start()
    try:
        yield server
    finally:
        assert server.stop() == 0


def expected(name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in prometheus_story.EXPECTED.items() if n == name}


def test_a_real_prometheus_scrapes_the_expected_series(
    served: MetricsServer, tmp_path: Path
) -> None:
    body, headers = signed_hook(9001, 90010)
    assert served.post(body, headers) == 202
    assert served.post(body, {"content-type": "application/json"}) == 401
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{served.port}")
    try:
        prometheus.wait_for('up{job="rollout"}', {(): 1.0})
        queued = expected("rollout_queue_jobs")
        queued[(("status", "queued"),)] += 1  # the hook just accepted
        prometheus.wait_for("rollout_queue_jobs", queued)
        for name in (
            "rollout_releases",
            "rollout_stage_slot_holders",
            "rollout_stage_slot_held_since_timestamp_seconds",
            "rollout_stage_deferred_releases",
            "rollout_last_publication_timestamp_seconds",
            "rollout_webhook_subscription_enabled",
            "rollout_webhook_deliveries_failed",
        ):
            prometheus.wait_for(name, expected(name))
        prometheus.wait_for("rollout_database_up", {(): 1.0})
        prometheus.wait_for(
            "rollout_hooks_accepted_total",
            {(("result", "queued"),): 1.0, (("result", "duplicate"),): 0.0},
        )
        prometheus.wait_for('rollout_hooks_refused_total{reason="signature"}', {
            (("reason", "signature"),): 1.0
        })  # fmt: skip
        prometheus.wait_for("rollout_build_info", {(("version", "0.1.0"),): 1.0})
        # A daemon's counters are not the receiver's: `rollout serve` has none.
        prometheus.wait_for("rollout_jobs_processed_total", {})
        # The shipped rules are loaded and evaluated on the scraped series: the dead letter
        # and the disabled subscription raise their alerts (pending, then firing after `for:`).
        prometheus.wait_for(
            "count by (alertname, subscription) "
            '(ALERTS{alertname=~"RolloutDeadLetters|RolloutWebhookEndpointDisabled"})',
            {
                (("alertname", "RolloutDeadLetters"),): 1.0,
                (("alertname", "RolloutWebhookEndpointDisabled"), ("subscription", "ci")): 1.0,
            },
        )
    finally:
        prometheus.stop()


def test_promtool_finds_no_lint_problem_in_the_exposition(served: MetricsServer) -> None:
    status, text = served.text("/metrics")
    assert status == 200 and "rollout_queue_jobs" in text
    linted = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (linted.returncode, linted.stdout, linted.stderr) == (0, "", "")


def test_promtool_passes_the_shipped_rules_and_their_unit_tests() -> None:
    rules = subprocess.run(
        [PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert rules.returncode == 0 and "SUCCESS: 8 rules found" in rules.stdout, rules.stdout
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
        check=False, timeout=300,
    )  # fmt: skip
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
