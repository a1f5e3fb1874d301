"""The HTTPS plan (pure) and the HTTPS do step's error paths against ``responses``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests
import responses

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import https, records


def _pkg(path: str, data: bytes = b"") -> release_model.PackageFile:
    return release_model.PackageFile(
        path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )


def test_plan_https_quotes_each_component() -> None:
    plan = https.plan_https(
        "https://dl.example.org/rel/arc/", [_pkg("rpms/noarch/a+b 1.rpm"), _pkg("debs/c%d.deb")]
    )
    assert [u for u, _ in plan] == [
        "https://dl.example.org/rel/arc/rpms/noarch/a%2Bb%201.rpm",
        "https://dl.example.org/rel/arc/debs/c%25d.deb",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://dl.example.org/rel",
        "ftp://dl.example.org/rel",
        "file:///etc",
        "https://user:pw@dl.example.org/rel",
        "https://dl.example.org/rel?x=1",
        "https://dl.example.org/rel#x",
        "https://dl.example.org/rel/../etc",
        "https://dl.example.org/rel/%2E%2E/etc",
        "https:///rel",
        "https://dl.example.org:0/rel",
        "https://dl.example.org/rel x",
    ],
)
def test_plan_https_refuses(url: str) -> None:
    with pytest.raises(sync_errors.SyncUrlRefused):
        https.plan_https(url, [_pkg("a.rpm")])


def test_plan_https_allows_http_only_when_asked() -> None:
    assert https.plan_https("http://127.0.0.1:8080/r", [_pkg("a.rpm")], allow_http=True)


@pytest.mark.parametrize("path", ["../a.rpm", "/etc/passwd", "a//b.rpm", "a/./b.rpm"])
def test_plan_https_refuses_unsafe_package_paths(path: str) -> None:
    with pytest.raises(sync_errors.SyncRefused):
        https.plan_https("https://dl.example.org/rel", [_pkg(path)])


# -- HTTPS error paths (responses) -------------------------------------------------------------

BASE = "https://dl.example.org/rel/arc"


def _https(
    tmp_path: Path, packages: list[release_model.PackageFile], **options: object
) -> records.SyncResult:
    return sync.sync(
        "https",
        BASE,
        tmp_path / "dest",
        packages=packages,
        options=records.SyncOptions(**options),  # type: ignore[arg-type]
    )


@responses.activate
def test_https_fetches_every_file_and_resumes(tmp_path: Path) -> None:
    a, b = _pkg("rpms/noarch/a.rpm", b"a" * 3000), _pkg("debs/b.deb", b"bb")
    responses.get(f"{BASE}/rpms/noarch/a.rpm", body=b"a" * 3000)
    responses.get(f"{BASE}/debs/b.deb", body=b"bb")
    (tmp_path / "dest" / "old").mkdir(parents=True)
    (tmp_path / "dest" / "old" / "stale.rpm").write_bytes(b"stale")
    result = _https(tmp_path, [a, b])
    assert (result.files, result.bytes) == (2, 3002)
    assert (tmp_path / "dest" / "rpms" / "noarch" / "a.rpm").read_bytes() == b"a" * 3000
    assert not (tmp_path / "dest" / "old").exists()
    assert responses.calls[0].request.headers["Accept-Encoding"] == "identity"

    responses.calls.reset()
    again = _https(tmp_path, [a, b])  # both already there, as promised: nothing is fetched
    assert (again.files, again.bytes) == (2, 3002)
    assert len(responses.calls) == 0


@responses.activate
def test_https_404s_are_permanent_and_all_listed(tmp_path: Path) -> None:
    good = _pkg("good.rpm", b"good")
    responses.get(f"{BASE}/good.rpm", body=b"good")
    responses.get(f"{BASE}/a.rpm", status=404)
    responses.get(f"{BASE}/sub/b.deb", status=410)
    responses.get(f"{BASE}/c.rpm", status=403)
    with pytest.raises(sync_errors.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x"), good, _pkg("sub/b.deb", b"y"), _pkg("c.rpm", b"z")])
    err = caught.value
    assert not err.transient
    assert [(p, r.split()[1]) for p, r in err.failures] == [
        ("a.rpm", "404"),
        ("sub/b.deb", "410"),
        ("c.rpm", "403"),
    ]
    assert str(err).startswith(f"3 of 4 files could not be fetched from {BASE}: a.rpm: HTTP 404")
    assert (tmp_path / "dest" / "good.rpm").read_bytes() == b"good"
    assert not list((tmp_path / "dest").rglob("*.part"))


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
@responses.activate
def test_https_server_errors_are_transient(tmp_path: Path, status: int) -> None:
    responses.get(f"{BASE}/a.rpm", status=status)
    with pytest.raises(sync_errors.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x"), _pkg("b.rpm", b"y")])
    assert caught.value.transient
    assert f"HTTP {status}" in str(caught.value)
    assert len(responses.calls) == 1  # stops at once: the queue retries the whole sync


@responses.activate
def test_https_body_longer_than_promised_is_cut_and_refused(tmp_path: Path) -> None:
    promised = b"p" * 100
    body = b"p" * 100 + b"X" * (5 * 1024 * 1024)
    responses.get(f"{BASE}/a.rpm", body=body, auto_calculate_content_length=False)
    with pytest.raises(sync_errors.HttpsFailed, match="more than the 100 bytes") as caught:
        _https(tmp_path, [_pkg("a.rpm", promised)])
    assert not caught.value.transient
    assert not (tmp_path / "dest" / "a.rpm").exists()
    assert list((tmp_path / "dest").iterdir()) == []
    # stopped reading at size + 1 bytes: the rest of the body was never consumed
    response = responses.calls[0].response
    assert isinstance(response, requests.Response)
    raw = response.raw
    assert raw.tell() == 101


@responses.activate
def test_https_announced_length_above_promise_is_refused_unread(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=b"p" * 200, auto_calculate_content_length=True)
    with pytest.raises(sync_errors.HttpsFailed, match="announces 200 bytes") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"p" * 100)])
    assert not caught.value.transient


@responses.activate
def test_https_connection_errors_are_transient_and_said_in_plain_words(tmp_path: Path) -> None:
    # What urllib3 raises for a refused connection through a proxy: the proxy's name and the
    # addresses tried never reach the message, only what happened.
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='proxy.internal.example', port=3128): Max retries exceeded "
        "(Caused by NewConnectionError('<HTTPSConnection object at 0x7f00>: Failed to "
        "establish a new connection: [Errno 111] Connection refused to 10.9.8.7'))"
    )
    wrapped.__cause__ = refused
    responses.get(f"{BASE}/a.rpm", body=wrapped)
    with pytest.raises(sync_errors.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert caught.value.transient
    assert str(caught.value).endswith("a.rpm failed: the connection was refused")
    assert "proxy" not in str(caught.value) and "10.9.8.7" not in str(caught.value)


@responses.activate
def test_https_timeouts_are_transient(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(sync_errors.HttpsFailed, match="timed out") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert caught.value.transient


@responses.activate
def test_https_certificate_failures_are_permanent(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(sync_errors.HttpsFailed, match="certificate verify failed") as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert not caught.value.transient


@responses.activate
def test_https_shorter_body_is_left_for_verify(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", body=b"short")
    result = _https(tmp_path, [_pkg("a.rpm", b"longer body")])
    assert result.bytes == 5  # verify reports the wrong size, with every other difference


def test_https_refuses_http_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(sync_errors.SyncUrlRefused, match="http:// is not allowed"):
        sync.sync("https", "http://dl.example.org/r", tmp_path / "d", packages=[_pkg("a")])


# -- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "followed"),
    [
        ("/rel/arc/moved/a.rpm", f"{BASE}/moved/a.rpm"),
        ("https://DL.example.org:443/x/a.rpm", "https://DL.example.org:443/x/a.rpm"),
        ("http://dl.example.org/rel/arc/a.rpm", None),  # never down to plain HTTP
        ("https://dl.example.org:8443/a.rpm", None),  # another port
        ("https://cdn.example.net/a.rpm", None),  # another host
        ("//169.254.169.254/latest/meta-data/", None),
    ],
)
def test_redirects_are_followed_only_within_the_host(location: str, followed: str | None) -> None:
    from_url = f"{BASE}/a.rpm"
    if followed is not None:
        assert https.check_redirect(from_url, location) == followed
        return
    with pytest.raises(sync_errors.HttpsFailed) as caught:
        https.check_redirect(from_url, location)
    assert not caught.value.transient


@responses.activate
def test_a_redirect_to_another_host_is_refused_before_connecting_there(tmp_path: Path) -> None:
    elsewhere = responses.get("https://internal.example.net/a.rpm", body=b"x")
    responses.get(
        f"{BASE}/a.rpm", status=302, headers={"Location": "https://internal.example.net/a.rpm"}
    )
    with pytest.raises(sync_errors.HttpsFailed) as caught:
        _https(tmp_path, [_pkg("a.rpm", b"x"), _pkg("b.rpm", b"y")])
    assert "redirects to https://internal.example.net:443/" in str(caught.value)
    assert "only within the host, scheme and port of the Sync-URL" in str(caught.value)
    assert not caught.value.transient
    assert elsewhere.call_count == 0
    assert len(responses.calls) == 1  # the host's answer: the other files are not tried


@responses.activate
def test_https_is_never_redirected_to_plain_http(tmp_path: Path) -> None:
    plain = responses.get("http://dl.example.org/rel/arc/a.rpm", body=b"x")
    responses.get(
        f"{BASE}/a.rpm", status=301, headers={"Location": "http://dl.example.org/rel/arc/a.rpm"}
    )
    with pytest.raises(sync_errors.HttpsFailed, match="HTTPS is never followed to plain HTTP"):
        _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert plain.call_count == 0


@responses.activate
def test_redirects_within_the_host_are_followed_a_few_times(tmp_path: Path) -> None:
    responses.get(f"{BASE}/a.rpm", status=302, headers={"Location": "/rel/arc/v2/a.rpm"})
    responses.get(f"{BASE}/v2/a.rpm", body=b"x")
    result = _https(tmp_path, [_pkg("a.rpm", b"x")])
    assert result.files == 1
    for n in range(https.MAX_REDIRECTS + 1):
        responses.get(f"{BASE}/loop{n}/b.rpm", status=307,
                      headers={"Location": f"/rel/arc/loop{n + 1}/b.rpm"})  # fmt: skip
    responses.get(f"{BASE}/b.rpm", status=307, headers={"Location": "/rel/arc/loop0/b.rpm"})
    with pytest.raises(sync_errors.HttpsFailed, match="more than 5 redirects"):
        _https(tmp_path / "2", [_pkg("b.rpm", b"y")])
