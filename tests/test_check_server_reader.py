"""Reading a notebook from a student's server treats the answer as hostile (server_notebook.py).

The student's server runs code the student controls, so here a tiny local HTTP server stands in
for it, as an attacker would write it: an answer without end, a huge Content-Length, a server
that hangs or trickles, a redirect to elsewhere, answers that are not a notebook, a compressed
answer, and TLS with a private certificate. No hub here: tests/test_hub_check_server.py reads
through a real hub, with the token the hub makes.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from introdl.checkwork.notebook import MAX_NOTEBOOK_BYTES, NotebookError
from introdl.checkwork.server_notebook import fetch_contents, tls_context, wire_cap

LAB = "lab1_tensorflow"
SHOWN = f"~/{LAB}/{LAB}.ipynb"
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
TOKEN = "one-read-token"


class Seen:
    """What the stand-in saw and sent, for the test to check."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sent = 0
        self.ended = threading.Event()


Behaviour = Callable[[BaseHTTPRequestHandler, Seen], None]


@pytest.fixture
def student_server() -> Iterator[Callable[..., tuple[str, Seen]]]:
    """Start stand-ins for a student's server: (base URL, what it saw) for a behaviour."""
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour, context: ssl.SSLContext | None = None) -> tuple[str, Seen]:
        seen = Seen()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                seen.requests.append((self.path, dict(self.headers)))
                try:
                    behaviour(self, seen)
                except OSError:  # the reader hung up: what the test wants to see
                    pass
                finally:
                    seen.ended.set()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        scheme = "https" if context else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", headers.pop("content_type", "application/json"))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def model(content: Any, kind: str = "file", fmt: str = "text") -> bytes:
    return json.dumps(
        {"name": f"{LAB}.ipynb", "path": f"{LAB}/{LAB}.ipynb", "type": kind, "format": fmt,
         "content": content}
    ).encode()  # fmt: skip


def read(url: str, **kw: Any) -> bytes:
    path = f"{url}/user/st-ada/api/contents/{LAB}/{LAB}.ipynb?type=file&format=text&content=1"
    return asyncio.run(fetch_contents(path, TOKEN, shown=SHOWN, lab=LAB, **kw))


def test_a_good_answer_gives_the_notebook_and_the_server_sees_only_the_one_token(
    student_server,  # type: ignore[no-untyped-def]
) -> None:
    url, seen = student_server(lambda h, s: answer(h, 200, model(NOTEBOOK)))
    assert read(url) == NOTEBOOK.encode()
    path, headers = seen.requests[0]
    assert path.startswith(f"/user/st-ada/api/contents/{LAB}/{LAB}.ipynb?")
    assert headers["Authorization"] == f"token {TOKEN}"
    assert "Cookie" not in headers
    # A server that answers with the parsed notebook ("type": "notebook") is read as well.
    url, _ = student_server(lambda h, s: answer(h, 200, model(json.loads(NOTEBOOK), "notebook")))
    assert json.loads(read(url)) == json.loads(NOTEBOOK)


def endless(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    """A JSON model whose content never ends (chunked, 64 KiB at a time, up to 1 GB)."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b'{"type": "file", "format": "text", "content": "' + b"x" * 65536
    while seen.sent < 10**9:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        seen.sent += len(chunk)
        chunk = b"x" * 65536


def test_an_answer_without_end_is_cut_at_the_cap(student_server) -> None:  # type: ignore[no-untyped-def]
    """Does the read stop at the cap (20 MiB of notebook, a quarter more for JSON's escapes)
    when a server streams for ever, instead of reading 30 MB, 1 GB...?"""
    url, seen = student_server(endless)
    started = time.monotonic()
    with pytest.raises(NotebookError, match="over the check's limit of 20 MiB: clear the outputs"):
        read(url)
    assert time.monotonic() - started < 10
    assert seen.ended.wait(10)
    # What the server got into the socket before it was hung up on: the cap and the buffers.
    assert seen.sent < wire_cap(MAX_NOTEBOOK_BYTES) + 16 * 2**20, seen.sent
    print(f"\nendless answer: cut after {seen.sent / 2**20:.1f} MiB sent by the server")


def test_a_huge_content_length_is_refused_before_its_body(student_server) -> None:  # type: ignore[no-untyped-def]
    def huge(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(30 * 10**6))
        handler.end_headers()
        while seen.sent < 30 * 10**6:
            handler.wfile.write(b"x" * 65536)
            seen.sent += 65536

    url, seen = student_server(huge)
    with pytest.raises(NotebookError, match="over the check's limit"):
        read(url)
    assert seen.ended.wait(10)
    assert seen.sent < 16 * 2**20, seen.sent


def test_a_notebook_over_the_limit_inside_the_wire_cap_is_refused(student_server) -> None:  # type: ignore[no-untyped-def]
    url, _ = student_server(lambda h, s: answer(h, 200, model("x" * 1100)))
    with pytest.raises(NotebookError, match="over the check's limit"):
        read(url, max_bytes=1000)


def hangs(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    time.sleep(8)


def trickles(handler: BaseHTTPRequestHandler, seen: Seen) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.1)


@pytest.mark.parametrize("behaviour", [hangs, trickles], ids=["hangs", "trickles"])
def test_a_server_that_hangs_or_trickles_is_given_up_on(student_server, behaviour) -> None:  # type: ignore[no-untyped-def]
    """Is the deadline for the whole read (a byte every 0.1 s never resets it)?"""
    url, _ = student_server(behaviour)
    started = time.monotonic()
    with pytest.raises(NotebookError, match=re.escape(f"did not hand over {SHOWN} within 1 s")):
        read(url, timeout=1.0)
    assert time.monotonic() - started < 4


def test_a_redirect_is_not_followed(student_server) -> None:  # type: ignore[no-untyped-def]
    """A server that redirects elsewhere (to collect the token there) gets nothing more."""
    elsewhere, caught = student_server(lambda h, s: answer(h, 200, model(NOTEBOOK)))
    url, _ = student_server(
        lambda h, s: answer(h, 302, b"", Location=f"{elsewhere}/steal?from=check")
    )
    with pytest.raises(NotebookError, match="answered with a redirect"):
        read(url)
    assert caught.requests == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "words"),
    [
        (200, b"<html><body>JupyterLab</body></html>", {"content_type": "text/html"}, "not the notebook"),
        (200, b'["a", "list"]', {}, "not the notebook"),
        (200, model([{"name": "x"}], "directory", "json"), {}, "not the notebook"),
        (200, model("eyJjZWxscyI6IFtdfQ==", "file", "base64"), {}, "not the notebook"),
        (200, model(None), {}, "not the notebook"),
        (200, b"[" * 200_000 + b"]" * 200_000, {}, "not the notebook"),
        (200, gzip.compress(model(NOTEBOOK)), {"Content_Encoding": "gzip"}, "not the notebook"),
        (424, b"{}", {}, "your server is not running"),
        (503, b"{}", {}, "your server is not running"),
        (404, b'{"message": "No such file"}', {}, f"fetch {LAB} first"),
        (403, b"{}", {}, "refused to hand over"),
        (500, b"Traceback", {}, "refused to hand over"),
    ],
    ids=["html", "list", "directory", "base64", "no-content", "deep", "gzip",
         "424", "503", "404", "403", "500"],
)  # fmt: skip
def test_answers_that_are_not_the_notebook_are_refused_in_words(
    student_server,  # type: ignore[no-untyped-def]
    status: int,
    body: bytes,
    headers: dict[str, str],
    words: str,
) -> None:
    url, _ = student_server(lambda h, s: answer(h, status, body, **headers))
    with pytest.raises(NotebookError, match=words) as refused:
        read(url)
    assert "Traceback" not in str(refused.value)


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_with_a_private_certificate_needs_the_ca_file(
    student_server,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    """A proxy on https with a self-signed certificate: refused without --ca-file, read with it."""
    cert, key = self_signed(tmp_path)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    url, _ = student_server(lambda h, s: answer(h, 200, model(NOTEBOOK)), server_side)
    with pytest.raises(NotebookError, match=r"TLS certificate .* --ca-file"):
        read(url, context=tls_context(None))
    assert read(url, context=tls_context(str(cert))) == NOTEBOOK.encode()
