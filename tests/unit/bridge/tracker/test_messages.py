"""A transaction's message, on an httpx2 mock transport answering as RT 5.0.3 did for a mail
piped into ``rt-mailgate`` (the real one is read in tests/integration/test_mail_intake_rt.py):
the text of its inline text/plain parts, never its attached files, and how it reached RT."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import pytest

from bridge import errors
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker import messages
from bridge.tracker.client import TrackerClient

BODY = b"Please publish.\n\nSync-URL: rsync://rsync.example.org/arc/\n"
MAILED_PARTS = [
    {
        "id": "1",
        "ContentType": "multipart/mixed",
        "Filename": "",
        "Headers": 'Content-Type: multipart/mixed; boundary="XYZ"\nFrom: Pat '
        "<pat@provider.example>\nX-RT-Interface: Email\nContent-Length: 0",
    },
    {"id": "2", "ContentType": "text/plain", "Filename": "", "Headers": "Content-Length: 59"},
    {"id": "3", "ContentType": "application/xml", "Filename": "release.xml", "Headers": ""},
    {"id": "4", "ContentType": "text/plain", "Filename": "notes.txt", "Headers": ""},
    {"id": "5", "ContentType": "text/html", "Filename": "", "Headers": ""},
]


class FakeRT:
    """Answers the two requests a message read makes; records which parts were fetched."""

    def __init__(self, parts: list[dict[str, Any]], contents: dict[str, bytes]) -> None:
        self.parts = parts
        self.contents = contents
        self.fetched: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/transaction/51/attachments"):
            return httpx2.Response(200, json={"items": self.parts, "total": len(self.parts)})
        if "/attachment/" in path:
            part = path.rsplit("/", 1)[1]
            self.fetched.append(part)
            encoded = base64.encodebytes(self.contents[part]).decode()
            return httpx2.Response(200, json={"id": int(part), "Content": encoded})
        return httpx2.Response(404, json={"message": "Not Found"})


def _client(rt: FakeRT) -> TrackerClient:
    settings = TrackerSettings(url="https://rt.example.org/", token=Secret("1-2-3"), retries=0)
    return TrackerClient(settings, transport=httpx2.MockTransport(rt))


def test_a_mailed_message_is_its_plain_text_and_says_it_came_by_mail() -> None:
    rt = FakeRT(MAILED_PARTS, {"2": BODY})
    client = _client(rt)
    message = client.message(7, 51)
    assert message == messages.Message(
        transaction_id=51, interface="Email", text=BODY.decode(), truncated=False
    )
    assert message.by_mail
    assert rt.fetched == ["2"]  # not release.xml, not the attached notes.txt, not the HTML
    assert client.round_trips["message"] == 2


def test_a_message_made_in_rt_is_not_by_mail() -> None:
    parts = [
        {"id": "9", "ContentType": "text/plain", "Filename": "", "Headers": "X-RT-Interface: REST"}
    ]
    message = _client(FakeRT(parts, {"9": b"Sync-URL: x"})).message(7, 51)
    assert (message.interface, message.by_mail, message.text) == ("REST", False, "Sync-URL: x")


def test_only_so_much_text_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messages, "MAX_TEXT_BYTES", 10)
    message = _client(FakeRT(MAILED_PARTS, {"2": BODY})).message(7, 51)
    assert message.text == "Please pub"
    assert message.truncated


def test_text_that_is_not_utf8_is_read_with_replacement_characters() -> None:
    message = _client(FakeRT(MAILED_PARTS, {"2": b"Gr\xfc\xdfe"})).message(7, 51)
    assert message.text == "Gr\ufffd\ufffde"


def test_a_transaction_rt_does_not_show_is_not_found() -> None:
    rt = FakeRT(MAILED_PARTS, {})
    with pytest.raises(errors.TrackerNotFound):
        _client(rt).message(7, 52)
