"""Where deliveries may go, pure: the policy's verdict on addresses (table), the allowlist,
IPv4 inside IPv6, URLs refused by shape, and ``Retry-After`` read as seconds or a date."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from repo_daemon.deliveries import destinations, outbound

POLICY = destinations.DestinationPolicy()

VERDICTS = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("169.254.169.254", "link-local, cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("10.1.2.3", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    ("fd12:3456::1", "private"),
    ("fd00:ec2::254", "private, cloud metadata"),
    ("100.64.0.1", "shared address space (CGNAT)"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - refused, not bound
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "not globally routable"),
    ("fec0::1", "site-local"),
    ("::ffff:127.0.0.1", "loopback: 127.0.0.1"),
    ("::ffff:10.0.0.1", "private: 10.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "link-local, cloud metadata: 169.254.169.254"),
    ("2002:c0a8:101::1", "private: 192.168.1.1"),
    ("93.184.215.14", None),
    ("2606:4700::1111", None),
    ("::ffff:93.184.215.14", None),
    ("172.32.0.1", None),
]


@pytest.mark.parametrize(("address", "reason"), VERDICTS, ids=[v[0] for v in VERDICTS])
def test_the_policy_refuses_what_is_not_globally_routable(address: str, reason: str | None) -> None:
    assert POLICY.refusal(address) == reason


def test_the_allowlist_admits_its_networks_only() -> None:
    policy = destinations.DestinationPolicy.from_cidrs(["127.0.0.1/32", " 10.0.0.0/8 ", "fd00::/8"])
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("::ffff:127.0.0.1") is None  # judged by its IPv4 address
    assert policy.refusal("127.0.0.2") == "loopback"
    assert policy.refusal("10.200.0.1") is None
    assert policy.refusal("fd00::5") is None
    assert policy.refusal("192.168.1.1") == "private"


def test_a_cidr_that_is_none_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33' is not a CIDR")):
        destinations.DestinationPolicy.from_cidrs(["127.0.0.0/8", "10.0.0.0/33"])


def test_a_name_with_any_refused_address_is_refused_whole_and_the_message_says_how() -> None:
    assert POLICY.refused("hook.example.org", ["93.184.215.14"]) is None
    assert POLICY.refused("hook.example.org", ["93.184.215.14", "10.0.0.1"]) == (
        "10.0.0.1 (private) for hook.example.org; allow it with ROLLOUT_WEBHOOK_ALLOW_CIDRS "
        "(e.g. 10.0.0.1/32)"
    )
    assert POLICY.refused("::1", ["::1"]) == (
        "::1 (loopback); allow it with ROLLOUT_WEBHOOK_ALLOW_CIDRS (e.g. ::1/128)"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hook.example.org/a?b=c", None),
        ("HTTP://hook.example.org:8080/", None),
        ("file:///etc/passwd", "only http and https URLs are delivered to (scheme: file)"),
        ("hook.example.org/x", "only http and https URLs are delivered to (scheme: none)"),
        ("https://:pw@hook.example.org/", "the URL for hook.example.org carries credentials"),
        ("https://hook.example.org:99999/", "the endpoint is not a valid URL"),
        ("https:///x", "the endpoint's URL has no host"),
    ],
)
def test_urls_are_checked_by_shape(url: str, problem: str | None) -> None:
    found = destinations.check_url(url)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"refused destination: {problem}")
        assert "pw" not in found


NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        (format_datetime(datetime(2026, 5, 1, 12, 1, 30, tzinfo=UTC), usegmt=True), 90.0),
        (format_datetime(datetime(2026, 5, 1, 11, 0, 0, tzinfo=UTC), usegmt=True), 0.0),
        ("999999999", outbound.RETRY_AFTER_CAP),
        (format_datetime(datetime(2027, 1, 1, tzinfo=UTC), usegmt=True), outbound.RETRY_AFTER_CAP),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_seconds_or_a_date_capped(value: str | None, seconds: float | None) -> None:
    assert outbound.retry_after_seconds(value, now=NOW) == seconds


def test_every_error_class_has_a_description_and_parses_back() -> None:
    labels = [kind.label for kind in outbound.ErrorClass]
    assert labels == ["dns", "refused", "tls", "timeout", "http", "destination", "connection"]
    for kind in outbound.ErrorClass:
        assert kind.description.endswith(".")
        assert outbound.ErrorClass.parse(kind.label) is kind
    with pytest.raises(ValueError, match="unknown delivery error class 'x'"):
        outbound.ErrorClass.parse("x")
