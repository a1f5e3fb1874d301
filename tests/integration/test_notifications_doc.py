"""docs/notifications.md, section "verifying", stays true: its Python and shell examples are
run against deliveries signed as the bridge signs them (``standardwebhooks.Webhook(secret)
.sign``, one signature per secret during a rotation; ``X-Hub-Signature-256`` keyed with the
whole ``whsec_`` string) and must accept the genuine delivery and refuse a tampered body, a
wrong secret and a stale timestamp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from bridge import secrets
from tests.support import paths

DOC = (paths.DOCS / "notifications.md").read_text(encoding="utf-8")
SECTION = DOC.split("<!-- section: verifying -->")[1].split("<!-- end section: verifying -->")[0]
PYTHON = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)
BASH = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)
BODY = (
    b'{"data":{"actor":"sr1","area":"production/UMD-5/base","cause":"hook","detail":"reached '
    b'Production in production/UMD-5/base","emergency":false,"major_release":"UMD-5","ticket":'
    b'4321,"url":"https://repo.example.org/production/UMD-5/base/"},"id":"evt_60","sequence":58,'
    b'"timestamp":"2026-11-24T10:15:00.541870Z","type":"release_reached_production",'
    b'"version":1}'
)
MSG_ID = "evt_60"


def signed(
    body: bytes, signing: list[str], *, at: datetime | None = None, github: str | None = None
) -> dict[str, str]:
    """The headers the bridge sends with ``body``, signed with each of ``signing`` (newest
    first), and the GitHub-style header keyed with ``github`` when given."""
    at = at or datetime.now(UTC)
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(
            standardwebhooks.Webhook(s).sign(MSG_ID, at, body) for s in signing
        ),
    }
    if github is not None:
        digest = hmac.new(github.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = "sha256=" + digest
    return headers


def test_the_section_has_the_examples_the_tests_run() -> None:
    assert len(PYTHON) == 1
    assert len(BASH) == 2


@pytest.fixture(scope="module")
def python_example() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "receiver"}
    exec(compile(PYTHON[0], "docs/notifications.md (python)", "exec"), namespace)  # noqa: S102
    return namespace


def run_bash(args: list[str], env: dict[str, str]) -> int:
    """Run bash with ``args`` and ``env`` (the test's environment without ROLLOUT_ or WEBHOOK_
    variables); its exit code: 0 when it said the delivery is genuine, 1 when it said it
    refused it (anything else, such as a failing command, fails the test)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUT_", "WEBHOOK_"))}
    done = subprocess.run(
        ["bash", *args], env={**clean, **env}, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    said = done.stdout + done.stderr
    if done.returncode == 0:
        assert "genuine" in done.stdout, said
    else:
        assert done.returncode == 1 and said.startswith("refused"), said
    return done.returncode


@pytest.fixture
def shell_standard(tmp_path: Path) -> Callable[[bytes, dict[str, str], str], int]:
    def run(body: bytes, headers: dict[str, str], secret: str) -> int:
        env = {
            "WEBHOOK_ID": headers["webhook-id"],
            "WEBHOOK_TIMESTAMP": headers["webhook-timestamp"],
            "WEBHOOK_SIGNATURE": headers["webhook-signature"],
            "WEBHOOK_SECRET": secret,
        }
        body_file = tmp_path / "body.json"
        body_file.write_bytes(body)
        script = tmp_path / "verify-delivery.sh"
        script.write_text(BASH[0], encoding="utf-8")
        return run_bash([str(script), str(body_file)], env)

    return run


@pytest.fixture
def shell_github(tmp_path: Path) -> Callable[[bytes, dict[str, str], str], int]:
    def run(body: bytes, headers: dict[str, str], secret: str) -> int:
        env = {"X_HUB_SIGNATURE_256": headers["X-Hub-Signature-256"], "WEBHOOK_SECRET": secret}
        body_file = tmp_path / "body.json"
        body_file.write_bytes(body)
        # The fragment follows the script above, where body_file is the script's argument.
        return run_bash(
            ["-c", "set -euo pipefail; body_file=$1\n" + BASH[1], "github", str(body_file)], env
        )

    return run


SECRET = secrets.new_hook_secret()
OLD_SECRET = secrets.new_hook_secret()
STALE = datetime.now(UTC) - timedelta(minutes=6)


def test_python_accepts_a_genuine_delivery_and_refuses_the_rest(
    python_example: dict[str, Any],
) -> None:
    verify = python_example["verify_delivery"]
    error = python_example["WebhookVerificationError"]
    assert verify(SECRET, signed(BODY, [SECRET]), BODY)["id"] == MSG_ID
    # A rotation's overlap: both signatures; a receiver with either secret accepts.
    both = signed(BODY, [SECRET, OLD_SECRET])
    assert verify(SECRET, both, BODY)["type"] == "release_reached_production"
    assert verify(OLD_SECRET, both, BODY)["sequence"] == 58
    for secret, headers, body in [
        (SECRET, signed(BODY, [SECRET]), BODY.replace(b"UMD-5", b"UMD-6")),  # tampered
        (OLD_SECRET, signed(BODY, [SECRET]), BODY),  # another secret
        (SECRET, signed(BODY, [SECRET], at=STALE), BODY),  # replayed 6 minutes later
    ]:
        with pytest.raises(error):
            verify(secret, headers, body)


def test_python_checks_the_github_style_header(python_example: dict[str, Any]) -> None:
    check = python_example["verify_github_style"]
    headers = signed(BODY, [SECRET], github=SECRET)
    assert check(SECRET, headers, BODY) is True
    assert check(SECRET, headers, BODY + b" ") is False
    assert check(OLD_SECRET, headers, BODY) is False
    # Keyed with the whole whsec_ string, not the key it decodes to.
    decoded = base64.b64decode(SECRET.removeprefix("whsec_"))
    wrong = hmac.new(decoded, BODY, hashlib.sha256).hexdigest()
    assert check(SECRET, {"X-Hub-Signature-256": "sha256=" + wrong}, BODY) is False


def test_the_shell_example_accepts_a_genuine_delivery_and_refuses_the_rest(
    shell_standard: Callable[[bytes, dict[str, str], str], int],
) -> None:
    assert shell_standard(BODY, signed(BODY, [SECRET]), SECRET) == 0
    both = signed(BODY, [SECRET, OLD_SECRET])
    assert shell_standard(BODY, both, SECRET) == 0
    assert shell_standard(BODY, both, OLD_SECRET) == 0
    tampered = BODY.replace(b"UMD-5", b"UMD-6")
    assert shell_standard(tampered, signed(BODY, [SECRET]), SECRET) == 1
    assert shell_standard(BODY, signed(BODY, [SECRET]), OLD_SECRET) == 1
    assert shell_standard(BODY, signed(BODY, [SECRET], at=STALE), SECRET) == 1


def test_the_shell_example_takes_a_secret_without_base64_padding(
    shell_standard: Callable[[bytes, dict[str, str], str], int],
) -> None:
    unpadded = "whsec_" + base64.b64encode(os.urandom(23)).decode("ascii").rstrip("=")
    assert len(unpadded) % 4 != 2  # 31 characters of base64 after the prefix
    assert shell_standard(BODY, signed(BODY, [unpadded]), unpadded) == 0


def test_the_shell_checks_the_github_style_header(
    shell_github: Callable[[bytes, dict[str, str], str], int],
) -> None:
    headers = signed(BODY, [SECRET], github=SECRET)
    assert shell_github(BODY, headers, SECRET) == 0
    assert shell_github(BODY + b"\n", headers, SECRET) == 1
    assert shell_github(BODY, headers, OLD_SECRET) == 1
