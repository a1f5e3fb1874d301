"""``rollout demo``: a release walked from ticket to installed package, narrated step by step.

It starts a sandbox RT with the product's set-up, a provider's rsync source with a sample
release built on the spot (its RPM signed with the provider's key), the repository's signing key
(``rollout repo init-key``), the bridge (``rollout run``) and its trees over HTTP (``rollout repo
serve``); then, as the provider and the release managers, files a ticket and moves it to
Production, showing after each move what the bridge did; then installs the sample package from
the signed production tree with apt-get and with dnf, as a site would, checking signatures.
Everything stays up until Ctrl-C (or stops at once with ``--exit``). It owns the narration
only: the work is the bridge's own.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from bridge import errors, secrets
from bridge.rt_setup import sandbox
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from bridge.tracker.client import TrackerClient
from repo_daemon.demo import keys, narrate, people, sample, services, site, ticket_view
from repo_daemon.demo import layout as demo_layout
from repo_daemon.demo.errors import DemoFailed, InstallFailed, ServiceFailed
from repo_daemon.demo.rsync_source import RsyncDaemon
from repo_daemon.metadata import clients

SAMPLE = "rollout-hello"  # the sample release's short name and its packages' name
SAMPLE_VERSION = "1.0.0"
MAJOR = "DEMO-1"  # its major release: NonIncremental, so production/DEMO-1/base
STEP_TIMEOUT = 60.0  # seconds the bridge gets for one change
WALK = (  # (the state a person sets, who does it and why)
    ("Unverified", "the release manager accepts the release"),
    ("InVerification", "quality control starts verifying it"),
    ("StageRollout", "quality control passes it to the early adopters"),
    ("Production", "the staged-rollout team releases it"),
)
FINAL = "Production"  # the bridge resolves the ticket there
ROLLOUT = [sys.executable, "-m", "repo_daemon"]  # the ``rollout`` command of this Python


@dataclass(frozen=True, kw_only=True)
class Running:
    """What the demo started and where it is."""

    layout: demo_layout.Layout
    info: sandbox.SandboxInfo
    repo_url: str
    bridge_url: str
    sync_url: str  # the sample release at the provider's rsync source
    release_xml: bytes
    bridge: services.Service
    trees: services.Service
    repository_key: str  # the fingerprint that signs the trees
    provider_key: str  # the fingerprint that signs the provider's RPMs

    def queue_hint(self) -> str:
        return (
            f"see {narrate.shown(self.bridge.log)} and "
            f"`rollout -c {narrate.shown(self.layout.settings_file)} queue list`"
        )

    def area(self, repository_url: str) -> Path | None:
        """Where the tree at ``repository_url`` is on disk."""
        if not repository_url.startswith(self.repo_url):
            return None
        return self.layout.repo_root / repository_url.removeprefix(self.repo_url)


def run_demo(directory: Path, *, stop_at_end: bool) -> int:
    """Run the demo with its files in ``directory``; returns the exit status (0). Raises
    ``DemoFailed`` or ``BridgeError`` saying what to look at when a step fails."""
    layout = demo_layout.Layout(directory.resolve())
    narrate.title(f"Rollout bridge demo (files in {narrate.shown(layout.root)})")
    for name in ("bridge", "repo_daemon"):  # the narration says what happens
        logging.getLogger(name).setLevel(logging.WARNING)
    with layout.locked(), _sigterm_as_interrupt(), contextlib.ExitStack() as started:
        running = _start(layout, started)
        manager = started.enter_context(TrackerClient(_manager_settings(running.info)))
        ticket, view = _walk(running, manager)
        package, version = _install(running, view)
        rpm = _install_rpm(running, view)
        narrate.result(
            f"demo result: ticket {ticket} {view.state}, history {'>'.join(view.history)}, "
            f"installed {package} {version}"
        )
        narrate.note(
            f"signed tree: key {running.repository_key}; apt signed-by, "
            f"dnf gpgcheck=1 repo_gpgcheck=1 installed {rpm}"
        )
        _where_to_look(running, ticket)
        if stop_at_end:
            started.close()
            narrate.note("\nStopped everything the demo started (--exit).")
            return 0
        narrate.note("\nEverything keeps running; Ctrl-C stops it.")
        try:
            _wait_while_running(running)
        except KeyboardInterrupt:
            narrate.note("\nStopping the bridge, the tree server, rsync and RT…")
    narrate.note("Stopped.")
    return 0


# -- starting ---------------------------------------------------------------------------------


def _start(layout: demo_layout.Layout, started: contextlib.ExitStack) -> Running:
    bridge_port, repo_port = sandbox.free_port(), sandbox.free_port()
    bridge_url = f"http://127.0.0.1:{bridge_port}/hooks/rt"
    repo_url = f"http://127.0.0.1:{repo_port}/"
    _stop_leftovers(layout)
    layout.make_fresh()
    info = _start_rt(layout, started, bridge_url)
    provider = keys.provider_key(layout.provider_gnupg)
    started.callback(keys.stop_agents, layout.provider_gnupg, layout.gnupg)
    sync_url, release_xml = _start_source(layout, started, provider)
    settings = demo_layout.bridge_settings(
        info, layout, listen_port=bridge_port, repo_url=repo_url, package_key=provider.fingerprint
    )
    repository_key = _signing_key(layout, settings, provider)
    bridge, trees = _start_bridge(layout, started, settings, bridge_url, repo_port)
    return Running(
        layout=layout, info=info, repo_url=repo_url, bridge_url=bridge_url, sync_url=sync_url,
        release_xml=release_xml, bridge=bridge, trees=trees, repository_key=repository_key,
        provider_key=provider.fingerprint,
    )  # fmt: skip


def _start_rt(
    layout: demo_layout.Layout, started: contextlib.ExitStack, bridge_url: str
) -> sandbox.SandboxInfo:
    with narrate.step("A sandbox RT 5 with the product's queue, fields, groups and scrip") as s:
        box = sandbox.Sandbox(layout.root, bridge_url=bridge_url)
        built_before = box.database.exists()
        if box.is_running():
            box.down()  # its scrip must post to this run's bridge
        try:
            info = box.up()
        except errors.SandboxError as exc:
            raise ServiceFailed(
                f"RT did not start: see {narrate.shown(box.root / 'rt-server.log')}\n{exc}"
            ) from exc
        started.callback(box.down)
        people.root_plays_every_role(info)
        s.say("RT", f"{info.web_url}  (login {info.root_user} / {info.root_password})")
        s.say("roles", f"{info.root_user} is in {', '.join(people.WORKER_GROUPS)} (every role)")
        s.say("database", "reused from an earlier run" if built_before else "built (first run)")
        s.say("scrip", f"posts every RolloutProgress change to {bridge_url}, signed")
    return info


def _start_source(
    layout: demo_layout.Layout, started: contextlib.ExitStack, provider: keys.ProviderKey
) -> tuple[str, bytes]:
    """The provider's rsync daemon and the sample release in it, its RPM signed with the
    provider's key: (its URL, its release.xml)."""
    with narrate.step("A technology provider's rsync source: a sample release, built now") as s:
        rsync = RsyncDaemon(layout.rsyncd, {"provider": layout.provider})
        rsync.start()
        started.callback(rsync.stop)
        name = f"{SAMPLE}-{SAMPLE_VERSION}"
        url = rsync.url("provider", f"{name}/")
        tree = sample.sample_release(
            layout.build, layout.provider / name, name=SAMPLE, sync_url=url, major_release=MAJOR,
            rpm_key=provider,
        )  # fmt: skip
        (layout.work / "release.xml").write_bytes(tree.release_xml)
        s.say("source", url)
        s.say("packages", "\n".join(p.path for p in tree.packages))
        made = "made (first run)" if provider.created else "kept from an earlier run"
        s.say("RPM key", f"{provider.fingerprint}  (the provider's, {made}; rpmsign)")
        s.say("release", f"{narrate.shown(layout.work / 'release.xml')} (checksums of both)")
    return url, tree.release_xml


def _signing_key(
    layout: demo_layout.Layout, settings: dict[str, str], provider: keys.ProviderKey
) -> str:
    """The repository's signing key, by ``rollout repo init-key``; the provider's public key
    imported beside it (``package_keys``). Returns the repository key's fingerprint."""
    with narrate.step("The repository's signing key (rollout repo init-key)") as s:
        keys.import_public(provider, layout.gnupg)
        made = keys.init_key(ROLLOUT, demo_layout.environment(settings))
        said = "made (first run; RSA 4096)" if made.created else "kept from an earlier run"
        s.say("key", f"{made.fingerprint}  ({said})")
        s.say("home", f"{narrate.shown(layout.gnupg)}  (kept between runs: sites trust it)")
        s.say("packages", f"{provider.fingerprint}  (the provider's, in RPM-GPG-KEY-rollout)")
    return made.fingerprint


def _start_bridge(
    layout: demo_layout.Layout,
    started: contextlib.ExitStack,
    settings: dict[str, str],
    bridge_url: str,
    repo_port: int,
) -> tuple[services.Service, services.Service]:
    """``rollout run`` and ``rollout repo serve``, configured by ``ROLLOUT_*`` only."""
    with narrate.step("The bridge (rollout run) and its trees over HTTP (rollout repo serve)") as s:
        demo_layout.write_settings_file(layout.settings_file, settings)
        env = demo_layout.environment(settings)
        rollout = ROLLOUT
        repo_url = settings["repo_url"]
        bridge = services.Service(
            "the bridge (rollout run)",
            [*rollout, "run"],
            env=env,
            log=layout.logs / "bridge.log",
            pid_file=layout.pid_file("bridge"),
            ready_url=bridge_url.removesuffix("hooks/rt") + "readyz",
        )
        trees = services.Service(
            "the tree server (rollout repo serve)",
            [*rollout, "repo", "serve", "--host", "127.0.0.1", "--port", str(repo_port)],
            env=env,
            log=layout.logs / "repo-serve.log",
            pid_file=layout.pid_file("repo-serve"),
            ready_url=repo_url,
            ready_status=None,
        )
        for service in (bridge, trees):
            service.start()
            started.callback(service.stop)
        s.say("bridge", f"{bridge_url}  (receiver and repo daemon, SQLite)")
        s.say("trees", f"{repo_url}  ({narrate.shown(layout.repo_root)})")
        s.say("settings", f"ROLLOUT_* (copy: {narrate.shown(layout.settings_file)})")
        s.say("logs", narrate.shown(layout.logs))
    return bridge, trees


def _stop_leftovers(layout: demo_layout.Layout) -> None:
    """Stop what an earlier demo in this folder left running when it was killed outright."""
    marker = f"{settings_load.ENV_PREFIX}DATA_DIR={layout.data_dir}"
    for name in ("bridge", "repo-serve"):
        services.stop_leftover(layout.pid_file(name), marker)
    conf = layout.rsyncd / "rsyncd.conf"
    services.stop_leftover(layout.rsyncd / "rsyncd.pid", f"--config={conf}")


def _manager_settings(info: sandbox.SandboxInfo) -> settings_model.TrackerSettings:
    """The release managers' (and the provider's) RT account: RT's root."""
    return settings_model.TrackerSettings(
        url=info.web_url, user=info.root_user, password=secrets.Secret(info.root_password)
    )


# -- the walk ---------------------------------------------------------------------------------


def _walk(running: Running, manager: TrackerClient) -> tuple[int, ticket_view.TicketView]:
    with narrate.step("A technology provider files the release, with release.xml") as s:
        ticket = manager.create_ticket(
            running.info.queue,
            f"Release of {SAMPLE} {SAMPLE_VERSION}",
            f"Please publish {SAMPLE} {SAMPLE_VERSION} for {MAJOR}.",
            custom_fields={
                "AssociatedMajorRelease": MAJOR,
                "ReleaseType": "NonIncremental",
                "Sync-Protocol": "rsync",
                "Sync-URL": running.sync_url,
                "EmergencyRelease": "No",
            },
            requestors=["provider@example.org"],
            attachments=[("release.xml", running.release_xml, "application/xml")],
        )
        view = ticket_view.look(manager, ticket)
        s.say("ticket", f"{ticket}  {running.info.web_url}Ticket/Display.html?id={ticket}")
        s.say("state", view.state, fg="green")

    state = view.state
    for target, who in WALK:
        with narrate.step(f"{state} → {target}: {who}") as s:
            before = ticket_view.newest_comment(manager, ticket, running.info.bridge_user)
            manager.set_custom_fields(ticket, {"RolloutProgress": target})
            view = ticket_view.wait_for_answer(
                manager,
                ticket,
                target,
                bridge_user=running.info.bridge_user,
                after_comment=before,
                timeout=STEP_TIMEOUT,
                hint=running.queue_hint(),
                resolves=target == FINAL,
            )
            comment = ticket_view.comment_text(manager.settings, view.comment_id)
            _show_answer(s, running, view, comment)
            if view.state != target:
                raise DemoFailed(
                    f"the bridge set {view.state} instead of {target}: "
                    f"{_first_lines(comment, 1)}; {running.queue_hint()}"
                )
        state = view.state
    return ticket, view


def _show_answer(
    s: narrate.Step, running: Running, view: ticket_view.TicketView, comment: str
) -> None:
    resolved = ", ticket resolved" if view.status == "resolved" else ""
    s.say("state", view.state + resolved, fg="red" if view.state == ticket_view.FAILED else "green")
    s.say("bridge", _first_lines(comment, 2))
    area = running.area(view.repository_url)
    if area is not None:
        s.say("files", f"{narrate.shown(area)}/  ({_count_packages(area)} packages)")
    s.say("URL", view.repository_url or "-")


def _first_lines(text: str, count: int, width: int = 88) -> str:
    """The first ``count`` lines of ``text`` as shown (long lines wrapped), ``…`` if cut."""
    shown: list[str] = []
    for line in (line for line in text.splitlines() if line.strip()):
        shown += textwrap.wrap(line, width) or [""]
    if len(shown) > count:
        shown = shown[:count]
        shown[-1] = shown[-1][: width - 1] + "…"
    return "\n".join(shown) or "(no comment)"


def _count_packages(area: Path) -> int:
    return sum(1 for p in area.rglob("*") if p.suffix in (".rpm", ".deb"))


# -- the site ---------------------------------------------------------------------------------


def _install(running: Running, view: ticket_view.TicketView) -> tuple[str, str]:
    title = f"A site installs {SAMPLE} from the production tree with apt-get (throw-away root)"
    with narrate.step(title) as s:
        area = _production_area(running, view, clients.APT_LIST_FILE)
        with _tree_log_on_failure(running):
            done = site.apt_install(
                area, view.repository_url, running.layout.apt, SAMPLE, {running.repository_key}
            )
        s.say("sources", f"{narrate.shown(area / clients.APT_LIST_FILE)}:\n{done.lines[0]}")
        s.say("key", f"{running.repository_key}, checked; installed as the line says")
        s.say(
            "installed",
            f"{SAMPLE} {done.version} in {narrate.shown(running.layout.apt)}",
            fg="green",
        )
        s.say("files", narrate.shown(running.layout.apt / "usr/share/doc" / SAMPLE / "README"))
    return SAMPLE, done.version


def _install_rpm(running: Running, view: ticket_view.TicketView) -> str:
    title = f"A site installs {SAMPLE} from the production tree with dnf (throw-away root)"
    with narrate.step(title) as s:
        area = _production_area(running, view, clients.DNF_REPO_FILE)
        expected = {running.repository_key, running.provider_key}
        with _tree_log_on_failure(running):
            done = site.dnf_install(area, view.repository_url, running.layout.dnf, SAMPLE, expected)
        s.say("repo", f"{narrate.shown(area / clients.DNF_REPO_FILE)}: {', '.join(done.lines)}")
        s.say("keys", "repository's and provider's, checked; dnf verified repomd.xml and the rpm")
        s.say("installed", f"{done.version} in {narrate.shown(running.layout.dnf)}", fg="green")
    return done.version


def _production_area(running: Running, view: ticket_view.TicketView, client_file: str) -> Path:
    area = running.area(view.repository_url)
    if area is None or not (area / client_file).is_file():
        raise InstallFailed(
            f"the production tree has no {client_file} at {view.repository_url}; "
            f"{running.queue_hint()}"
        )
    return area


@contextlib.contextmanager
def _tree_log_on_failure(running: Running) -> Iterator[None]:
    try:
        yield
    except InstallFailed as exc:
        raise InstallFailed(
            f"{exc}\nsee {narrate.shown(running.trees.log)} for what the tree server answered"
        ) from exc


# -- the end ----------------------------------------------------------------------------------


def _where_to_look(running: Running, ticket: int) -> None:
    info, layout = running.info, running.layout
    settings = narrate.shown(layout.settings_file)
    narrate.heading("Where to look")
    rows = [
        ("ticket", f"{info.web_url}Ticket/Display.html?id={ticket}"),
        ("RT login", f"{info.root_user} / {info.root_password}"),
        ("trees", f"{running.repo_url}  ({narrate.shown(layout.repo_root)})"),
        ("key", f"{running.repository_key}  ({narrate.shown(layout.gnupg)})"),
        ("queue", f"rollout -c {settings} queue list"),
        ("history", f"rollout -c {settings} tracker show {ticket}"),
        ("logs", f"{narrate.shown(layout.logs)}/, RT: {narrate.shown(info.server_log)}"),
        ("mail", f"{narrate.shown(info.mail_log)}  (what RT would have sent)"),
    ]
    for label, value in rows:
        narrate.note(f"  {label:<9} {value}")


def _wait_while_running(running: Running) -> None:
    while True:
        for service in (running.bridge, running.trees):
            if not service.alive():
                raise ServiceFailed(f"{service.name} stopped: see {service.log}")
        time.sleep(0.5)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the demo like Ctrl-C does: everything it started is stopped."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
