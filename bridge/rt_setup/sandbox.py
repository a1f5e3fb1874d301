"""A throw-away RT 5 for development, the demo and the tests.

Runs Debian's ``request-tracker5`` from a folder of its own: SQLite database, its own
``RT_SITE_CONFIG`` / ``RT_SITE_CONFIG_DIR``, mail written to a file, ``rt-server`` on a free
loopback port. ``up`` builds the database on first use (``rt-setup-database-5 --action init
--skip-create``), loads the product's initialdata, adds a bridge service account with an auth
token, and starts the server; ``down`` stops it. Running ``up`` twice is harmless. Never used
against a real RT: this module only ever touches its own folder.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from bridge import errors, files, processes, secrets
from bridge.rt_setup import initialdata

logger = logging.getLogger(__name__)

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_SETUP_DATABASE = Path("/usr/sbin/rt-setup-database-5")
RT_LIB = Path("/usr/share/request-tracker5/lib")
DEBIAN_PACKAGES = ("request-tracker5", "rt5-db-sqlite", "rt5-standalone")
ROOT_USER = "root"
ROOT_PASSWORD = "password"  # noqa: S105 - RT's default for a new database; loopback only
BRIDGE_USER = "rollout-bridge"
STATE_FILE = "sandbox.json"

_BRIDGE_ACCOUNT_PERL = r"""
use strict;
use warnings;
use RT -init;
my ($name, $group_name) = @ARGV;
my $user = RT::User->new( RT->SystemUser );
$user->Load($name);
unless ( $user->id ) {
    my ( $ok, $msg ) = $user->Create(
        Name => $name, RealName => 'Rollout bridge', Privileged => 1,
        EmailAddress => "$name\@localhost",
    );
    die "cannot create user $name: $msg\n" unless $ok;
}
my $group = RT::Group->new( RT->SystemUser );
$group->LoadUserDefinedGroup($group_name);
die "group $group_name missing\n" unless $group->id;
unless ( $group->HasMember( $user->PrincipalId ) ) {
    my ( $ok, $msg ) = $group->AddMember( $user->PrincipalId );
    die "cannot add $name to $group_name: $msg\n" unless $ok;
}
my $token = RT::AuthToken->new( RT->SystemUser );
my ( $ok, $msg, $auth ) = $token->Create( Owner => $user->id, Description => 'sandbox' );
die "cannot create token: $msg\n" unless $ok;
print $auth;
"""


@dataclass(frozen=True, kw_only=True)
class SandboxInfo:
    """Where a running sandbox is and how to log in. Saved as ``sandbox.json`` in its folder."""

    root: str
    web_url: str
    port: int
    pid: int
    queue: str
    bridge_url: str
    root_user: str
    root_password: str
    bridge_user: str
    bridge_token_file: str
    hook_secret_file: str
    mail_log: str
    server_log: str

    @property
    def rest_url(self) -> str:
        """The REST2 base URL."""
        return self.web_url + "REST/2.0/"

    def bridge_token(self) -> str:
        """The bridge service account's auth token."""
        return Path(self.bridge_token_file).read_text(encoding="utf-8").strip()

    def hook_secret(self) -> str:
        """The secret the scrip signs its POSTs with."""
        return Path(self.hook_secret_file).read_text(encoding="utf-8").strip()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_installed() -> None:
    """Raise ``SandboxError`` saying what to install when Debian's RT 5 is missing."""
    missing = [str(p) for p in (RT_SERVER, RT_SETUP_DATABASE) if not p.exists()]
    if missing:
        raise errors.SandboxError(
            f"RT 5 is not installed (missing {', '.join(missing)}); install it with "
            f"`apt-get install -y {' '.join(DEBIAN_PACKAGES)}` (`make demo` and `make test` do)"
        )


class Sandbox:
    """One sandbox RT living in ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        bridge_url: str = "http://127.0.0.1:8750/hooks/rt",
        hook_secret: str | None = None,
        queue: str = "sw-rel",
        apply_setup: bool = True,
        log_level: str = "info",
    ) -> None:
        self.root = root.resolve()
        self.port = port
        self.bridge_url = bridge_url
        self.hook_secret = hook_secret
        self.queue = queue
        self.apply_setup = apply_setup
        self.log_level = log_level
        self._process: subprocess.Popen[bytes] | None = None

    # -- paths ----------------------------------------------------------------------------
    @property
    def site_config(self) -> Path:
        return self.root / "RT_SiteConfig.pm"

    @property
    def database(self) -> Path:
        return self.root / "rt.sqlite"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env["RT_SITE_CONFIG"] = str(self.site_config)
        env["RT_SITE_CONFIG_DIR"] = str(self.root / "RT_SiteConfig.d")
        env["PERL5LIB"] = str(RT_LIB)
        env.setdefault("LANG", "C.UTF-8")
        return env

    def info(self) -> SandboxInfo | None:
        """The saved state of this sandbox, or None if it was never started."""
        path = self.root / STATE_FILE
        if not path.exists():
            return None
        return SandboxInfo(**json.loads(path.read_text(encoding="utf-8")))

    def is_running(self) -> bool:
        """Whether the saved server process is alive and answers HTTP."""
        info = self.info()
        return info is not None and processes.pid_alive(info.pid) and self._answers(info.web_url)

    # -- lifecycle ------------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> SandboxInfo:
        """Start the sandbox (building it first if needed) and wait until RT answers."""
        check_installed()
        existing = self.info()
        if existing is not None and self.is_running():
            logger.info("sandbox RT already running at %s", existing.web_url)
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "RT_SiteConfig.d").mkdir(exist_ok=True)
        for sub in ("mason", "sessions"):
            (self.root / sub).mkdir(exist_ok=True)
        port = self.port or (existing.port if existing else None) or free_port()
        secret_file = self.root / "hook-secret"
        if self.hook_secret is not None or not secret_file.exists():
            files.write_atomically(
                secret_file, (self.hook_secret or secrets.new_hook_secret()) + "\n", private=True
            )
        self._write_site_config(port, secret_file)
        token_file = self.root / "bridge-token"
        if not self.database.exists():
            self._build_database(token_file)
        web_url = f"http://127.0.0.1:{port}/"
        server_log = self.root / "rt-server.log"
        with server_log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(RT_SERVER),
                    "--host", "127.0.0.1",
                    "--port", str(port),
                    "--max-workers", "2",
                ],
                env=self._env(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        info = SandboxInfo(
            root=str(self.root),
            web_url=web_url,
            port=port,
            pid=self._process.pid,
            queue=self.queue,
            bridge_url=self.bridge_url,
            root_user=ROOT_USER,
            root_password=ROOT_PASSWORD,
            bridge_user=BRIDGE_USER,
            bridge_token_file=str(token_file),
            hook_secret_file=str(secret_file),
            mail_log=str(self.root / "mail.log"),
            server_log=str(server_log),
        )
        (self.root / STATE_FILE).write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
        self._wait_ready(info, timeout)
        logger.info("sandbox RT ready at %s", web_url)
        return info

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the server. Returns False when nothing was running. Files are kept."""
        info = self.info()
        if info is None:
            return False
        if self._process is not None and self._process.pid == info.pid:
            if self._process.poll() is not None:
                return False
            processes.stop(self._process, timeout=timeout, group=True)
            return True
        return processes.stop_group(info.pid, timeout=timeout)

    # -- building -------------------------------------------------------------------------
    def _write_site_config(self, port: int, secret_file: Path) -> None:
        def q(value: object) -> str:
            return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

        lines = [
            "# Sandbox RT for the Rollout bridge; written by `rollout tracker sandbox up`.",
            "Set($rtname, 'rollout-sandbox');",
            "Set($Organization, 'rollout-sandbox.localhost');",
            "Set($DatabaseType, 'SQLite');",
            f"Set($DatabaseName, {q(self.database)});",
            "Set($WebPath, '');",
            "Set($WebDomain, '127.0.0.1');",
            f"Set($WebPort, {int(port)});",
            f"Set($WebBaseURL, {q(f'http://127.0.0.1:{port}')});",
            "Set($RestrictReferrer, 0);",
            "Set($CorrespondAddress, 'rt@rollout-sandbox.localhost');",
            "Set($CommentAddress, 'rt-comment@rollout-sandbox.localhost');",
            "Set($MailCommand, 'testfile');",
            f"$Mail::Mailer::testfile::config{{outfile}} = {q(self.root / 'mail.log')};",
            f"Set($LogToSTDERR, {q(self.log_level)});",
            "Set($LogToSyslog, undef);",
            f"Set($MasonDataDir, {q(self.root / 'mason')});",
            f"Set($MasonSessionDir, {q(self.root / 'sessions')});",
            f"Set($RolloutBridgeURL, {q(self.bridge_url)});",
            f"Set($RolloutBridgeSecretFile, {q(secret_file)});",
            "Set($RolloutBridgeTimeout, 5);",
            "1;",
        ]
        self.site_config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _run(self, argv: list[str], what: str) -> str:
        result = subprocess.run(
            argv, env=self._env(), cwd=self.root, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
            raise errors.SandboxError(
                f"{what} failed (exit {result.returncode}):\n" + "\n".join(tail)
            )
        return result.stdout

    def _build_database(self, token_file: Path) -> None:
        try:
            self._run(
                [str(RT_SETUP_DATABASE), "--action", "init", "--skip-create"],
                "rt-setup-database-5 --action init",
            )
            if self.apply_setup:
                datafile = self.root / "rollout-initialdata"
                datafile.write_text(initialdata.render(self.queue), encoding="utf-8")
                self._run(
                    [str(RT_SETUP_DATABASE), "--action", "insert", "--datafile", str(datafile)],
                    "loading the Rollout bridge initialdata",
                )
                script = self.root / "bridge-account.pl"
                script.write_text(_BRIDGE_ACCOUNT_PERL, encoding="utf-8")
                token = self._run(
                    ["perl", str(script), BRIDGE_USER, "sw-rel-bridge"],
                    "creating the bridge service account",
                ).strip()
                files.write_atomically(token_file, token + "\n", private=True)
        except BaseException:
            # A half-built database would be reused next time: remove it.
            self.database.unlink(missing_ok=True)
            raise

    def _answers(self, web_url: str) -> bool:
        request = urllib.request.Request(web_url + "REST/2.0/rt")  # noqa: S310 - loopback http
        credentials = base64.b64encode(f"{ROOT_USER}:{ROOT_PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {credentials}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _wait_ready(self, info: SandboxInfo, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise errors.SandboxError(
                    f"rt-server exited with {self._process.returncode} during start-up; "
                    f"last lines of {info.server_log}:\n{_tail(Path(info.server_log))}"
                )
            if self._answers(info.web_url):
                return
            time.sleep(0.2)
        self.down()
        raise errors.SandboxError(
            f"RT did not answer at {info.web_url} within {timeout:g} s; last lines of "
            f"{info.server_log}:\n{_tail(Path(info.server_log))}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
