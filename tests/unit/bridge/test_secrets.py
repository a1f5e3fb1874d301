"""Hook secrets made, decoded and checked in one place; secrets masked in text and URLs."""

from __future__ import annotations

import base64

import pytest

from bridge import secrets

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


def test_a_new_hook_secret_decodes_to_24_random_bytes_and_passes_the_check() -> None:
    first, second = secrets.new_hook_secret(), secrets.new_hook_secret()
    assert first.startswith("whsec_") and first != second
    assert len(secrets.hook_key(first)) == 24
    assert secrets.hook_secret_problems(secrets.Secret(first)) == []


@pytest.mark.parametrize(
    ("secret", "problem"),
    [("whsec_%%%", "not whsec_ followed by base64"), ("whsec_", "empty")],
)
def test_unusable_secret(secret: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as raised:
        secrets.hook_key(secret)
    assert secret not in str(raised.value) or secret == "whsec_"


def test_unpadded_secret_is_accepted() -> None:
    assert secrets.hook_key(SECRET.rstrip("=")) == b"0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("secret", "problem"),
    [("whsec_%%%", "hook_secret: not base64"), ("whsec_c2hvcnQ=", "hook_secret: too short")],
)
def test_the_settings_check_names_the_problem_without_the_secret(secret: str, problem: str) -> None:
    [found] = secrets.hook_secret_problems(secrets.Secret(secret))
    assert found.startswith(problem) and secret not in found


def test_a_secret_hides_itself() -> None:
    secret = secrets.Secret("s3cret")
    assert "s3cret" not in repr(secret) and "s3cret" not in str(secret)
    assert secret.reveal() == "s3cret"


def test_redact_masks_the_longest_secret_whole() -> None:
    text = "url postgresql://u:pw-123@db/x and pw-123"
    assert secrets.redact(text, ["pw-123", "postgresql://u:pw-123@db/x", ""]) == (
        "url ******** and ********"
    )


def test_redact_url_drops_the_credentials_only() -> None:
    assert secrets.redact_url("https://u:pw@rt.example.org:8443/rt/") == (
        "https://rt.example.org:8443/rt/"
    )
    assert secrets.redact_url("sqlite:///data/bridge.sqlite") == "sqlite:///data/bridge.sqlite"


def test_snippet_is_one_short_line_without_tags_or_secrets() -> None:
    text = "<html><b>token tok-9</b>\n\n" + "x" * 300
    excerpt = secrets.snippet(text, ["tok-9"], limit=40)
    assert excerpt.startswith("token ******** x") and excerpt.endswith("…")
    assert len(excerpt) == 41 and "\n" not in excerpt
