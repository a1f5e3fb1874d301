"""Fetching by HTTPS (requests): the plan of one ``GET <Sync-URL>/<Path>`` per package of
release.xml (pure), and the do step that streams each body into scratch, never past the
promised size, keeping files an earlier attempt already fetched exactly as promised.

It never sends credentials, never fetches what release.xml does not name, and never decides
whether the files are right (``verify`` does); retries are the queue's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import quote

import requests
import urllib3

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import errors, progress, records, scratch, urls, verify


def plan_https(
    url: str, packages: Sequence[release_model.PackageFile], *, allow_http: bool = False
) -> list[tuple[str, release_model.PackageFile]]:
    """``(file URL, package)`` for every package: ``<url>/<path>`` with each component quoted.

    Refused: what ``urls.check_https_url`` refuses (``SyncUrlRefused``), and package paths
    that are not plain relative paths (``SyncRefused``).
    """
    base = urls.check_https_url(url, allow_http=allow_http)
    plan = []
    for package in packages:
        segments = package.path.split("/")
        if package.path.startswith("/") or any(s in ("", ".", "..") for s in segments):
            raise errors.SyncRefused(
                f"release.xml names an unsafe path {package.path!r}", [package.path]
            )
        plan.append((base + "/" + "/".join(quote(s, safe="") for s in segments), package))
    return plan


class _FileProblem(Exception):
    """One file cannot be fetched for a reason that will not go away by itself."""


def sync_https(
    url: str,
    dest: Path,
    packages: Sequence[release_model.PackageFile],
    *,
    options: records.SyncOptions,
    report: progress.Progress,
    session: requests.Session | None = None,
    on_file: Callable[[str], None] = lambda _path: None,
) -> records.SyncResult:
    """Fetch every package as ``<url>/<path>`` into ``dest``; see ``fetch.sync``.

    Each body is streamed to disk and read to at most the promised size + 1 byte: a longer one
    is cut and refused. Files already in ``dest`` with the promised size and SHA-256 are kept.
    Every file is tried; 4xx answers and over-long bodies are collected and raised together
    (permanent). A TLS failure stops at once (permanent), as does a 5xx, 408, 429 or network
    failure (transient).
    """
    plan = plan_https(url, packages, allow_http=options.allow_http)
    scratch.prepare_dest(dest)
    started = time.monotonic()
    own_session = session is None
    http = session or requests.Session()
    http.max_redirects = 5
    ca: str | bool = os.fspath(options.https_ca_file) if options.https_ca_file else True
    failures: list[tuple[str, str]] = []
    try:
        scratch.prune(dest, {p.path for p in packages})
        for file_url, package in plan:
            target = dest.joinpath(*package.path.split("/"))
            if _already_fetched(dest, package):
                report.add(package.size)
                continue
            try:
                _fetch_file(http, file_url, target, package, ca, options, report)
            except _FileProblem as exc:
                failures.append((package.path, str(exc)))
            else:
                on_file(package.path)
    finally:
        if own_session:
            http.close()
    if failures:
        raise errors.HttpsFailed(
            f"{len(failures)} of {len(plan)} files could not be fetched from {url}: "
            + "; ".join(f"{path}: {reason}" for path, reason in failures),
            transient=False,
            failures=failures,
        )
    summary = scratch.check_tree(dest)
    return records.SyncResult(files=summary.files, bytes=summary.bytes,
                      seconds=time.monotonic() - started)  # fmt: skip


def _already_fetched(dest: Path, package: release_model.PackageFile) -> bool:
    """Whether an earlier attempt left ``package`` in ``dest`` exactly as promised."""
    try:
        return verify.check_file(dest, package) is None
    except OSError:
        return False


def _fetch_file(
    http: requests.Session,
    file_url: str,
    target: Path,
    package: release_model.PackageFile,
    ca: str | bool,
    options: records.SyncOptions,
    report: progress.Progress,
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    part = scratch.part_name(target)
    headers = {"Accept-Encoding": "identity", "User-Agent": "rollout-bridge sync"}
    try:
        with http.get(
            file_url,
            stream=True,
            timeout=(options.connect_timeout, options.timeout),
            verify=ca,
            headers=headers,
        ) as response:
            _check_status(response, file_url, package.path)
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > package.size:
                raise _FileProblem(
                    f"the server announces {length} bytes, release.xml promises {package.size}"
                )
            received = 0
            with scratch.open_new(part) as out:
                while received <= package.size:
                    data = response.raw.read(
                        min(scratch.CHUNK, package.size + 1 - received), decode_content=False
                    )
                    if not data:
                        break
                    received += len(data)
                    if received > package.size:
                        raise _FileProblem(
                            f"the server sent more than the {package.size} bytes release.xml "
                            "promises; the download was cut"
                        )
                    out.write(data)
                    report.add(len(data))
        part.replace(target)
    except requests.exceptions.SSLError as exc:  # the host's, so every file's: stop here
        reason = f"TLS failed (untrusted or invalid certificate?): {_reason(exc)}"
        raise errors.HttpsFailed(f"fetching {file_url}: {reason}", transient=False,
                          failures=[(package.path, reason)]) from exc  # fmt: skip
    except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError) as exc:
        raise errors.HttpsFailed(f"fetching {file_url} timed out", transient=True,
                          failures=[(package.path, "timed out")]) from exc  # fmt: skip
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise errors.HttpsFailed(f"fetching {file_url} failed: {_reason(exc)}", transient=True,
                          failures=[(package.path, _reason(exc))]) from exc  # fmt: skip
    finally:
        part.unlink(missing_ok=True)


def _check_status(response: requests.Response, file_url: str, path: str) -> None:
    status = response.status_code
    if status == 200:
        return
    text = f"HTTP {status} {response.reason or ''}".strip()
    if status in (408, 429) or status >= 500:
        raise errors.HttpsFailed(
            f"fetching {file_url}: {text}", transient=True, failures=[(path, text)]
        )
    raise _FileProblem(text)


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, short."""
    for _ in range(10):
        inner = exc.__cause__ or (exc.args[0] if exc.args else None)
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return str(exc) or type(exc).__name__
