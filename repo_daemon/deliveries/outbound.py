"""One POST of a delivery to a subscriber's endpoint, safely, and what it came to: the
destination checked on the address its host resolves to at connect time and the connection
made to exactly that address (``pinning``, judged by ``destinations``); no redirect followed;
at most ``body_cap`` bytes of the answer read; one deadline for all of it. The outcome is a
record with an error class, never an exception.

HTTP is ``requests`` over urllib3 with a pinning adapter. ``requests-hardened`` pins too, but
only knows "loopback allowed or not" (no allowlist of networks), connects to the resolver's
first answer only and folds DNS failures into connection errors, so it is not used.

It decides nothing about retries, stores nothing and signs nothing (``signing`` does). Error
texts name the host and the address, never a header value nor the URL's path and query
(where chat services put their tokens).
"""

from __future__ import annotations

import contextlib
import enum
import http.cookiejar
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3.exceptions

from bridge import printable
from repo_daemon.deliveries import destinations, pinning

logger = logging.getLogger(__name__)

DestinationPolicy = destinations.DestinationPolicy
check_url = destinations.check_url
ALLOW_SETTING = destinations.ALLOW_SETTING

RETRY_AFTER_CAP = 24 * 3600.0
"""The longest ``Retry-After`` honoured, in seconds; a longer one is cut to this."""
_TEXT_CAP = 200  # characters of text from the other side (a Location, a TLS reason) in an error


class ErrorClass(enum.Enum):
    """Why a delivery attempt failed. Each value has a description."""

    DNS = ("dns", "The endpoint's host name could not be resolved.")
    REFUSED = ("refused", "The endpoint's address refused the connection (nothing listening).")
    TLS = ("tls", "The TLS handshake failed: certificate not trusted or not for this host, "
                  "or the other side does not speak TLS.")  # fmt: skip
    TIMEOUT = ("timeout", "No complete answer within the delivery's deadline.")
    HTTP = ("http", "The endpoint answered with a status other than 2xx (a redirect too: "
                    "deliveries never follow one).")  # fmt: skip
    DESTINATION = ("destination", "Refused before connecting: the URL, or an address its host "
                                  "resolves to, is one deliveries may not reach.")  # fmt: skip
    CONNECTION = ("connection", "The connection failed otherwise (reset, closed early, "
                                "unreachable network).")  # fmt: skip

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

    @classmethod
    def parse(cls, label: str) -> ErrorClass:
        """The class stored as ``label`` (``ValueError`` for an unknown one)."""
        for kind in cls:
            if kind.label == label:
                return kind
        raise ValueError(f"unknown delivery error class {label!r}")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one attempt came to. ``status`` is the HTTP status when one was read (also when
    the body then failed); ``body`` at most ``body_cap`` bytes of the answer; ``duration`` in
    seconds; ``retry_after`` seconds asked by a 429 or 503 (capped at a day)."""

    status: int | None
    body: bytes
    duration: float
    error_class: ErrorClass | None
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Delivered: a 2xx answer read completely (only 2xx is success)."""
        return self.error_class is None and self.status is not None and 200 <= self.status < 300


class Sender:
    """Posts deliveries. Thread-safe: each thread gets its own ``requests.Session`` (and so
    its own connection pool of ``pool_connections`` per host); ``close()`` closes them all.

    ``timeout`` bounds the whole attempt: resolving, connecting, TLS, sending, and reading
    the status, headers and up to ``body_cap`` bytes of body. ``ca_bundle`` is a PEM file of
    CAs to trust instead of the system's (for tests and private CAs). No proxy, ``.netrc`` or
    cookie is ever used."""

    def __init__(
        self,
        policy: DestinationPolicy,
        *,
        timeout: float = 15.0,
        body_cap: int = 4096,
        pool_connections: int = 16,
        ca_bundle: str | None = None,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self.body_cap = body_cap
        self._pool_connections = pool_connections
        self._verify: bool | str = ca_bundle if ca_bundle is not None else True
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._closed = False

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is not None:
            return session
        session = requests.Session()
        session.trust_env = False  # no proxies or .netrc from the environment
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = pinning.PinnedAdapter(self.policy, self._pool_connections)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with self._lock:
            if self._closed:
                session.close()
                raise RuntimeError("the Sender is closed")
            self._sessions.append(session)
        self._local.session = session
        return session

    def close(self) -> None:
        """Close every thread's connections; the Sender posts nothing afterwards."""
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """POST ``body`` with ``headers`` to ``url`` once; never raises for a failed delivery.

        A 2xx whose body then fails (reset, deadline) is a failure with its ``status`` kept:
        deliveries are at least once, and a receiver dedupes on ``webhook-id``."""
        start = time.monotonic()
        problem = destinations.check_url(url)
        if problem is not None:
            return _failed(start, ErrorClass.DESTINATION, problem)
        where = _where(url)
        status: int | None = None
        sending = dict(headers)
        sending.setdefault("Accept-Encoding", "identity")
        with pinning.bounded(self.timeout) as deadline:
            try:
                left = deadline.remaining()
                response = self._session().post(
                    url, data=body, headers=sending, timeout=(left, left),
                    allow_redirects=False, stream=True, verify=self._verify,
                )  # fmt: skip
                try:
                    status = response.status_code
                    content = response.raw.read(self.body_cap + 1, decode_content=True) or b""
                finally:
                    response.close()
            except pinning.DestinationRefused as exc:
                return _failed(start, ErrorClass.DESTINATION, f"refused destination: {exc}")
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                kind, text = _classify(exc, deadline, where)
                return _failed(start, kind, text, status=status)
            error_class, error = None, None
            location = response.headers.get("Location")
            if 300 <= status < 400 and location:
                error_class, error = self._redirect(url, where, status, location, deadline)
            elif not 200 <= status < 300:
                error_class, error = ErrorClass.HTTP, f"HTTP {status} from {where}"
        retry_after = None
        if status in (429, 503):
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), now=time.time())
        return Outcome(
            status=status, body=content[: self.body_cap], duration=time.monotonic() - start,
            error_class=error_class, error=error, retry_after=retry_after,
        )  # fmt: skip

    def _redirect(
        self, url: str, where: str, status: int, location: str, deadline: pinning.Deadline
    ) -> tuple[ErrorClass, str]:
        """A redirect is never followed; one to a place the policy refuses says so (its name
        is resolved, within the deadline, but nothing is connected to)."""
        target = urljoin(url, location)
        host = urlsplit(target).hostname or ""
        with contextlib.suppress(OSError, ValueError, TimeoutError):
            found = self.policy.first_refused(pinning.resolve(host, 80, deadline.remaining()))
            if found is not None:
                address, reason = found
                named = "" if address == host else f" ({address})"
                return ErrorClass.DESTINATION, (
                    f"refused destination: HTTP {status} from {where} redirects to "
                    f"{printable.escape(host)}{named}, {reason}; not followed"
                )
        # Only the target's origin: a path or query may carry a token of the receiver's.
        parts = urlsplit(target)
        origin = f"{parts.scheme}://{_where(target)}" + ("/…" if parts.path.strip("/") else "/")
        shown = printable.escape(origin)[:_TEXT_CAP]
        return ErrorClass.HTTP, (
            f"HTTP {status} from {where}: a redirect to {shown}, not followed "
            "(deliveries never follow redirects; subscribe the final URL)"
        )


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (delta-seconds or an HTTP-date, ``now``
    the Unix time), between 0 and ``RETRY_AFTER_CAP``; ``None`` when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = printable.escape(parts.hostname or "")
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


def _failed(start: float, kind: ErrorClass, text: str, *, status: int | None = None) -> Outcome:
    return Outcome(
        status=status, body=b"", duration=time.monotonic() - start, error_class=kind, error=text
    )


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it (causes, contexts, wrapped reasons)."""
    todo, seen = [exc], set()
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason:
            todo.append(current.reason)
        todo += [a for a in current.args if isinstance(a, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


_NEW_CONNECTION = urllib3.exceptions.NewConnectionError


def _classify(exc: BaseException, deadline: pinning.Deadline, where: str) -> tuple[ErrorClass, str]:
    """The error class and one line for a failed attempt (the deadline's expiry wins: a read
    it cut short fails with whatever the cut socket raised)."""
    found = list(_chain(exc))
    tried = deadline.address
    address = f" ({tried})" if tried and tried not in where else ""
    timed_out = f"no complete answer from {where} within {deadline.seconds:g} s"

    def first(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in found if isinstance(e, types)), None)

    if deadline.expired:
        return ErrorClass.TIMEOUT, timed_out
    if (dns := first(socket.gaierror)) is not None:
        reason = printable.escape(str(getattr(dns, "strerror", "") or dns))[:_TEXT_CAP]
        return ErrorClass.DNS, f"the host name of {where} could not be resolved: {reason}"
    if (tls := first(ssl.SSLError, ssl.CertificateError)) is not None:
        if isinstance(tls, ssl.SSLCertVerificationError):
            why = f"its certificate was not accepted: {tls.verify_message}"
        else:
            why = str(getattr(tls, "reason", None) or tls)
            if why == "WRONG_VERSION_NUMBER":
                why += " (does the endpoint speak TLS on this port?)"
        text = printable.escape(why)[:_TEXT_CAP]
        return ErrorClass.TLS, f"TLS with {where}{address} failed: {text}"
    if first(ConnectionRefusedError) is not None:
        return ErrorClass.REFUSED, f"connection refused by {where}{address}"
    timeouts = (TimeoutError, requests.Timeout, urllib3.exceptions.TimeoutError)
    # urllib3's NewConnectionError is a ConnectTimeoutError by descent, not by meaning.
    if any(isinstance(e, timeouts) and not isinstance(e, _NEW_CONNECTION) for e in found):
        return ErrorClass.TIMEOUT, timed_out
    inner = next((e for e in reversed(found) if isinstance(e, OSError) and e.strerror), None)
    reason = printable.escape(inner.strerror or "")[:_TEXT_CAP] if inner else type(exc).__name__
    return ErrorClass.CONNECTION, f"connection to {where}{address} failed: {reason}"
