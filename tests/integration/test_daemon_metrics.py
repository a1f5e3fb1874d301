"""``rollout daemon`` started alone serves its own ``/metrics`` on
``ROLLOUT_DAEMON_METRICS_PORT``: the database's gauges and its jobs' counters, not the
receiver's; a port in use stops it with an error naming the address."""

from __future__ import annotations

import http.client
import signal
import socket
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bridge import records
from bridge.rt_setup.sandbox import free_port
from bridge.store import database, queue
from tests.support.daemon_helpers import DaemonProcess, daemon_env, wait_for

S = records.RolloutState


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        if response.status != 200:
            return None
        text = response.read().decode()
    except OSError:
        return None
    finally:
        conn.close()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_daemon_alone_serves_its_metrics(db_url: str, tmp_path: Path) -> None:
    jobs = queue.Queue(database.create_engine(db_url))
    database.migrate(jobs.engine)
    jobs.enqueue(
        records.ReleaseRequest(
            ticket_id=5, transaction_id=50, current=S.UNVERIFIED, previous=S.SUBMITTED, actor="qc"
        )
    )
    port = free_port()
    env = daemon_env(db_url, tmp_path / "jobs.log", ROLLOUT_DAEMON_METRICS_PORT=str(port))
    daemon = DaemonProcess(env, tmp_path / "daemon.log")
    try:
        done = ("rollout_jobs_processed_total", (("outcome", "done"),))
        queue_done = ("rollout_queue_jobs", (("status", "done"),))
        found = wait_for(
            # The gauges are read before the counters: a scrape may fall between the two.
            lambda: (m := scrape(port)) and m.get(done) == 1.0 and m.get(queue_done) == 1.0 and m,
            timeout=60,
            what="the daemon's /metrics counting the job done",
        )
        assert found[("rollout_queue_jobs", (("status", "queued"),))] == 0.0
        assert found[("rollout_database_up", ())] == 1.0
        assert (
            found[("rollout_transition_duration_seconds_count", (("change", "Unverified"),))] == 1.0
        )
        assert not any(name.startswith("rollout_hooks_") for name, _ in found)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        daemon.stop()
        jobs.engine.dispose()


def test_a_metrics_port_in_use_is_an_error_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.sqlite'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = daemon_env(url, tmp_path / "jobs.log", ROLLOUT_DAEMON_METRICS_PORT=str(port))
        daemon = DaemonProcess(env, tmp_path / "daemon.log")
        try:
            assert daemon.wait(60) != 0
            assert f"the daemon's /metrics cannot listen on 127.0.0.1:{port}" in daemon.output()
        finally:
            daemon.stop()
