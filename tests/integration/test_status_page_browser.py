"""The status pages in a real headless Chromium (Debian's ``/usr/bin/chromium`` driven by
Playwright; no browser is downloaded) against a live bridge: the real RT sandbox, the receiver
(serving the pages as ``rollout serve`` mounts them) and the workflow processor. One release
walks through the real RT into StageRollout, a second one of the same major release is
Deferred behind it; then a real RT user in QC (a status role) opens every page.

Each page loads without console errors or failed requests, shows what the bridge did, and
passes axe-core (``axe-playwright-python``'s bundled ``axe.min.js``, the full rule set, no rule
excluded). The plots are <svg> elements of non-zero size. A person without a status role gets
403. Screenshots are written to ``test-artefacts/status-page/`` (gitignored, overwritten each
run): ``overview.png``, ``release.png``, ``metrics.png``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, sync_playwright

from bridge.intake.receiver import build_server
from repo_daemon.daemon import assemble
from tests.support import paths
from tests.support.workflow_harness import PASSWORD, Bridge, running_bridge

pytestmark = pytest.mark.rt

ARTEFACTS = paths.ROOT / "test-artefacts" / "status-page"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
MAJOR = "STATUS-1"


def _serve_pages(bridge: Bridge, routers: list[Any]) -> None:
    """The receiver again on its port, now with the routers ``rollout serve`` mounts."""
    bridge.stop_receiver()
    bridge.server = build_server(bridge.settings, bridge.queue, routers=routers, freeze_gc=False)
    bridge.thread = threading.Thread(target=bridge.server.run, daemon=True)
    bridge.thread.start()
    deadline = time.monotonic() + 30
    while not bridge.server.started:
        assert time.monotonic() < deadline, "the receiver did not start"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bridge, int, int]]:
    with running_bridge(tmp_path_factory.mktemp("status-browser")) as bridge:
        holder = bridge.file_release(MAJOR)
        waiting = bridge.file_release(MAJOR)
        for ticket in (holder, waiting):
            for state in ("Unverified", "InVerification", "StageRollout"):
                bridge.move(ticket, state)
        assert bridge.state(holder) == "StageRollout"
        assert bridge.state(waiting) == "Deferred"
        with assemble._events_api(bridge.settings, bridge.queue) as routers:
            _serve_pages(bridge, routers)
            yield bridge, holder, waiting


def _open(page: Page, url: str, problems: list[str]) -> None:
    answer = page.goto(url, wait_until="load")
    assert answer is not None and answer.status == 200, f"{url}: {answer and answer.status}"
    assert problems == [], f"{url}: {problems}"


def _accessible(page: Page, name: str) -> None:
    results = Axe().run(page)  # the full rule set: headings, labels, colour contrast, ...
    assert results.violations_count == 0, f"{name}:\n{results.generate_report()}"


def test_a_status_person_sees_every_page_in_chromium_and_axe_finds_nothing(
    walked: tuple[Bridge, int, int],
) -> None:
    bridge, holder, waiting = walked
    base = f"http://127.0.0.1:{bridge.settings.receiver.port}"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                http_credentials={"username": "qc1", "password": PASSWORD},
                viewport={"width": 1200, "height": 900},
            )
            page = context.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type in ("error", "warning") else None)  # fmt: skip
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.on("response", lambda r: problems.append(f"{r.status}: {r.url}")
                    if r.status >= 400 else None)  # fmt: skip

            _open(page, f"{base}/status", problems)
            slot = page.locator("article.slot", has=page.get_by_role("heading", name=MAJOR))
            assert slot.locator("ul.holders a").all_inner_texts() == [f"#{holder}"]
            assert slot.locator("ol.deferred a").all_inner_texts() == [f"#{waiting}"]
            stage = page.locator(
                "tr", has=page.get_by_role("rowheader", name="StageRollout", exact=True)
            )
            assert stage.locator("td").inner_text() == "1"
            page.screenshot(path=ARTEFACTS / "overview.png", full_page=True)
            _accessible(page, "overview")

            page.get_by_role("link", name=f"#{holder}").first.click()
            page.wait_for_load_state("load")
            assert page.get_by_role("heading", level=1).inner_text().startswith(f"Release {holder}")
            timeline = page.locator("table.timeline tbody th").all_inner_texts()
            assert timeline == ["Submitted", "Unverified", "InVerification", "StageRollout"]
            link = page.get_by_role("link", name=f"Ticket {holder} in RT")
            assert link.get_attribute("href") == (
                f"{bridge.info.web_url.rstrip('/')}/Ticket/Display.html?id={holder}"
            )
            assert page.locator("#files ~ table tbody tr").count() >= 1  # from release.xml
            assert problems == []
            page.screenshot(path=ARTEFACTS / "release.png", full_page=True)
            _accessible(page, "release")

            _open(page, f"{base}/status/metrics", problems)
            plots = page.locator("figure svg")
            assert plots.count() == 2
            for i in range(2):
                box = plots.nth(i).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 50
            page.screenshot(path=ARTEFACTS / "metrics.png", full_page=True)
            _accessible(page, "metrics")

            outsider = browser.new_context(
                http_credentials={"username": "outsider1", "password": PASSWORD}
            ).new_page()
            refused = outsider.goto(f"{base}/status")
            assert refused is not None and refused.status == 403
        finally:
            browser.close()
    for name in ("overview", "release", "metrics"):
        assert Path(ARTEFACTS / f"{name}.png").stat().st_size > 0
