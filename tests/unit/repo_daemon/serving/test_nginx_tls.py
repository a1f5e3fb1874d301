"""``nginx.render_nginx`` and ``rollout repo nginx-conf`` with TLS: the HTTPS server block, the
plain-HTTP block that only redirects, and the combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon import cli
from repo_daemon.serving import nginx
from tests.support import paths

ROOT = Path("/srv/rollout/repo")
CERT, KEY = Path("/etc/ssl/rollout/fullchain.pem"), Path("/etc/ssl/rollout/key.pem")


def test_without_a_certificate_the_block_is_plain_http() -> None:
    conf = nginx.render_nginx(ROOT, listen="0.0.0.0:80")
    assert "listen 0.0.0.0:80;" in conf
    assert "ssl" not in conf and "return 301" not in conf
    assert conf.count("server {") == 1


def test_with_a_certificate_the_block_listens_with_tls() -> None:
    conf = nginx.render_nginx(
        ROOT, listen="0.0.0.0:443", server_name="repo.example.org", tls_cert=CERT, tls_key=KEY
    )
    assert "    listen 0.0.0.0:443 ssl;\n" in conf
    assert f"    ssl_certificate {CERT};\n    ssl_certificate_key {KEY};\n" in conf
    assert "    ssl_protocols TLSv1.2 TLSv1.3;\n" in conf
    # The server block is the same otherwise: no redirect without being asked for one.
    plain = nginx.render_nginx(ROOT, listen="0.0.0.0:443", server_name="repo.example.org")
    assert [line for line in conf.splitlines() if not line.startswith("    ssl_")] == [
        line.replace("0.0.0.0:443;", "0.0.0.0:443 ssl;") for line in plain.splitlines()
    ]
    assert conf.count("server {") == 1


@pytest.mark.parametrize(
    ("listen", "server_name", "target"),
    [
        ("0.0.0.0:443", "repo.example.org", "https://repo.example.org$request_uri"),
        ("443", "_", "https://$host$request_uri"),
        ("[::]:8443", "repo.example.org", "https://repo.example.org:8443$request_uri"),
        ("127.0.0.1:8443", "a.example.org b.example.org", "https://$host:8443$request_uri"),
        ("8443", "*.example.org", "https://$host:8443$request_uri"),
    ],
)
def test_plain_http_only_redirects_to_https(listen: str, server_name: str, target: str) -> None:
    conf = nginx.render_nginx(
        ROOT, listen=listen, server_name=server_name, tls_cert=CERT, tls_key=KEY,
        redirect_listen="80",
    )  # fmt: skip
    assert conf.count("server {") == 2
    redirect = conf[conf.rindex("server {") :]
    assert redirect == (
        "server {\n"
        "    listen 80;\n"
        f"    server_name {server_name};\n"
        "    server_tokens off;\n"
        f"    return 301 {target};\n"
        "}\n"
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"tls_cert": CERT}, "both a certificate and its key"),
        ({"tls_key": KEY}, "both a certificate and its key"),
        ({"redirect_listen": "80"}, "redirect needs TLS"),
        ({"tls_cert": Path("cert.pem"), "tls_key": KEY}, "must be absolute"),
        ({"tls_cert": Path("/etc/ssl/a;b.pem"), "tls_key": KEY}, "not safe"),
        ({"tls_cert": CERT, "tls_key": KEY, "redirect_listen": "80; include x"}, "not safe"),
    ],
)
def test_tls_combinations_that_make_no_sense_are_refused(
    kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        nginx.render_nginx(ROOT, **kw)  # type: ignore[arg-type]


def test_the_whole_conf_carries_both_blocks(tmp_path: Path) -> None:
    conf = nginx.render_nginx_conf(
        ROOT, workdir=tmp_path, listen="127.0.0.1:8443", tls_cert=CERT, tls_key=KEY,
        redirect_listen="127.0.0.1:8080",
    )  # fmt: skip
    assert "        listen 127.0.0.1:8443 ssl;\n" in conf
    assert "        return 301 https://$host:8443$request_uri;\n" in conf


def test_nginx_conf_command_takes_a_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    monkeypatch.chdir(tmp_path)
    argv = ["repo", "nginx-conf", "--listen", "443", "--server-name", "repo.example.org"]
    tls = ["--tls-cert", "tls/cert.pem", "--tls-key", str(KEY), "--http-redirect", "80"]
    assert cli.main([*argv, *tls]) == 0
    conf = capsys.readouterr().out
    assert "listen 443 ssl;" in conf
    assert f"ssl_certificate {tmp_path / 'tls/cert.pem'};" in conf  # made absolute
    assert "return 301 https://repo.example.org$request_uri;" in conf

    assert cli.main([*argv, "--tls-cert", str(CERT)]) == 2
    assert "both a certificate and its key" in capsys.readouterr().err


def test_docs_serving_md_shows_what_the_command_prints() -> None:
    """The HTTPS example of docs/serving.md, line by line in order ("…" stands for the
    locations), is what ``rollout repo nginx-conf`` prints for the command shown there."""
    doc = (paths.ROOT / "docs" / "serving.md").read_text()
    example = doc.split("```nginx\n", 1)[1].split("```", 1)[0]
    live = Path("/etc/letsencrypt/live/repo.example.org")
    conf = nginx.render_nginx(
        Path("/var/lib/rollout/repo"), listen="443", server_name="repo.example.org",
        tls_cert=live / "fullchain.pem", tls_key=live / "privkey.pem", redirect_listen="80",
    ).splitlines()  # fmt: skip
    at = 0
    for line in example.splitlines():
        if "…" in line:
            continue
        assert line in conf[at:], f"{line!r} is not what the command prints (after line {at})"
        at = conf.index(line, at) + 1
