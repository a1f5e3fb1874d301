"""What nginx's symlink rules cost per request (issue 19, the tree layout): the shipped
configuration against a baseline ``nginx.py`` (e.g. the one before the tree layout), on the
same root, interleaved.

    git show <commit>:repo_daemon/serving/nginx.py > /tmp/nginx_before.py
    .venv/bin/python -m benchmarks.serving_rules --baseline /tmp/nginx_before.py [--requests 2000]

The root (a temporary directory) holds a snapshots-layout area ``production/8/updates`` and a
tree-layout area ``production/7/updates`` built by hand (``tests.support.tree_layout``). Two
nginx 1.22 (one worker each), one per configuration, on loopback; one keep-alive client
(``http.client``) asks for a 1,000-byte package and ``repomd.xml`` of each area
``--requests`` times, three rounds, configurations alternating. Prints the median of the
rounds in microseconds per request (the client's time included: the difference between the
configurations is the rules' cost). The baseline serves only the snapshots-layout area.
Not a test; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bridge.rt_setup.sandbox import free_port
from repo_daemon.serving import nginx as shipped
from tests.support import tree_layout
from tests.support.nginx_server import nginx_binary

SNAPSHOT = "000002-20261206T000000Z"
TREE_AREA = "production/7/updates"
PATHS = {
    "snapshots layout, package": "/production/8/updates/el9/a.rpm",
    "snapshots layout, repomd.xml": "/production/8/updates/el9/x86_64/repodata/repomd.xml",
    "tree layout, package": f"/{TREE_AREA}/el9/x86_64/Packages/a.rpm",
    "tree layout, repomd.xml": f"/{TREE_AREA}/el9/x86_64/repodata/repomd.xml",
}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("baseline_nginx", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _root(base: Path) -> Path:
    root = base / "repo"
    metadata = tree_layout.sample_metadata(TREE_AREA, SNAPSHOT, repomd=b"<repomd/>")
    payload = {"el9/x86_64/Packages/a.rpm": b"x" * 1000}
    tree_layout.build_tree_area(root, TREE_AREA, payload, metadata, SNAPSHOT)
    snapshot = root / ".snapshots" / "production~8~updates" / SNAPSHOT
    (snapshot / "el9/x86_64/repodata").mkdir(parents=True)
    (snapshot / "el9/x86_64/repodata/repomd.xml").write_bytes(b"<repomd/>")
    (snapshot / "el9/a.rpm").write_bytes(b"x" * 1000)
    (root / "production/8").mkdir(parents=True)
    (root / "production/8/updates").symlink_to(f"../../.snapshots/production~8~updates/{SNAPSHOT}")
    return root


def _per_request(port: int, path: str, count: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        started = time.perf_counter()
        for _ in range(count):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status}")
        return (time.perf_counter() - started) / count * 1e6
    finally:
        connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="an older nginx.py")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    binary = nginx_binary()
    if binary is None:
        raise SystemExit("apt-get install nginx")
    renderers = {"baseline": _load(args.baseline), "shipped": shipped}
    with tempfile.TemporaryDirectory(prefix="serving-rules-") as scratch:
        base = Path(scratch)
        root = _root(base)
        ports: dict[str, int] = {}
        processes = []
        try:
            for name, renderer in renderers.items():
                work = base / name
                work.mkdir()
                ports[name] = free_port()
                conf = renderer.render_nginx_conf(
                    root, workdir=work, listen=f"127.0.0.1:{ports[name]}", user="root",
                    protected=(),
                )  # fmt: skip
                (work / "nginx.conf").write_text(conf)
                command = [binary, "-c", str(work / "nginx.conf"), "-p", f"{work}/",
                           "-e", str(work / "error.log"), "-g", "daemon off;"]  # fmt: skip
                processes.append(subprocess.Popen(command))
            for port in ports.values():  # wait until each answers
                deadline = time.monotonic() + 10
                while True:
                    try:
                        _per_request(port, "/", 1)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
            print(f"load before: {Path('/proc/loadavg').read_text().strip()}")
            found: dict[tuple[str, str], list[float]] = {}
            for _ in range(3):
                for label, path in PATHS.items():
                    for name, port in ports.items():
                        if name == "baseline" and label.startswith("tree"):
                            continue
                        found.setdefault((label, name), []).append(
                            _per_request(port, path, args.requests)
                        )
            for (label, name), runs in found.items():
                print(f"{label:30s} {name:9s} {sorted(runs)[1]:6.0f} us/request (median of 3)")
            print(f"load after: {Path('/proc/loadavg').read_text().strip()}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
