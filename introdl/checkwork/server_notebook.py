"""Reading a student's notebook from their own running server, for hubs whose homes are not on
the service's host (DockerSpawner, KubeSpawner): `--notebooks server`.

The notebook is `~/<lab>/<lab>.ipynb` of the hub user who asked, fetched through the hub's proxy
with the Jupyter contents API: GET {public_url}/user/{name}/api/contents/{lab}/{lab}.ipynb. The
lab is a released lab of the course and the name is the hub's, so nothing of the path comes from
the request. docs/hub.md ("Where check-my-work reads a notebook") says why, and who could abuse it.

The student's server runs code the student controls, so the service's own token never goes there.
For each read the service asks the hub for a token of that one student that can reach only their
server (`access:servers!user=NAME`, expiring within a minute), sends it with the one request, and
deletes it whatever happens. The answer is hostile until proven otherwise: no redirect is
followed, nothing is decompressed, the bytes are counted as they arrive and the read stops at a
cap, the whole read has a deadline, and only a JSON file model holding the notebook is taken.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from introdl.checkwork.notebook import MAX_NOTEBOOK_BYTES, NotebookError, ReadInProgress

log = logging.getLogger("introdl.checkwork")
READ_TIMEOUT = 30.0  # seconds for the whole read from a student's server
HUB_TIMEOUT = 10.0  # seconds for each call to the hub's API
READS_AT_ONCE = 8  # reads in flight at once, each at most WIRE_CAP bytes in memory
TOKEN_NOTE = "check-my-work: one read of a notebook by the check service (deleted after it)"
BACKSTOP = 1 << 16  # bytes of headers at most; tornado's body bound is the cap plus this
NOT_RUNNING = (424, 502, 503)  # the proxy or the hub: no server behind /user/NAME/
REDIRECTS = (301, 302, 303, 307, 308)


class OverCap(Exception):
    """Raised inside the read's streaming callback to abandon an answer past the cap."""


def wire_cap(max_bytes: int) -> int:
    """Bytes read from the wire at most for a notebook of MAX_BYTES: the JSON model escapes the
    notebook's text (quotes, newlines), so it may take a quarter more; past that the read stops."""
    return max_bytes + max_bytes // 4


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's CAs, plus CA_FILE (PEM) when given (a private or self-signed certificate)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def not_running(shown: str) -> NotebookError:
    return NotebookError(
        f"your server is not running, so the check cannot read {shown} from it: start your "
        "server from the hub's home page (Start My Server), make sure the notebook is saved, "
        "then ask again"
    )


async def fetch_contents(
    url: str,
    token: str,
    *,
    shown: str,
    lab: str,
    context: ssl.SSLContext | None = None,
    timeout: float = READ_TIMEOUT,
    max_bytes: int = MAX_NOTEBOOK_BYTES,
) -> bytes:
    """The notebook in the contents-API answer at URL (a student's server), asked with TOKEN.

    SHOWN is the notebook's path as the student sees it (for the messages). Any answer that is
    not a JSON file model of at most MAX_BYTES, within TIMEOUT seconds, is a NotebookError.
    """
    cap = wire_cap(max_bytes)
    received = bytearray()
    over: list[bool] = []  # the answer went past the cap

    def take(chunk: bytes) -> None:  # past the cap: nothing is kept, the read is abandoned
        if over or len(received) + len(chunk) > cap:
            over.append(True)
            raise OverCap  # tornado closes the connection; the fetch ends in an error
        received.extend(chunk)

    def announced(line: str) -> None:  # a Content-Length past the cap: tornado stops at once
        name, _, value = line.partition(":")
        length = value.strip()
        if name.strip().lower() == "content-length" and length.isdigit() and int(length) > cap:
            over.append(True)

    request = HTTPRequest(
        url,
        headers={"Authorization": f"token {token}", "Accept": "application/json"},
        follow_redirects=False,
        decompress_response=False,  # a compressed answer is refused, never inflated
        connect_timeout=timeout,
        request_timeout=timeout,
        streaming_callback=take,
        header_callback=announced,
        ssl_options=context,
    )
    # tornado's own bound, well past ours, for what `take` never sees: a chunk whose announced
    # length alone is over it ends the read before its bytes ("too large" in the error). Close
    # to the cap it would race `take` at a chunk's boundary and hide why the read stopped.
    client = SimpleAsyncHTTPClient(
        force_instance=True, max_body_size=2 * cap + BACKSTOP, max_header_size=BACKSTOP
    )
    try:
        response = await asyncio.wait_for(
            client.fetch(request, raise_error=False), timeout=timeout + 5
        )
    except Exception as err:
        if over or "too large" in str(err):
            raise too_large(shown, max_bytes) from None
        raise failed_read(err, url, shown, timeout) from err
    finally:
        client.close()
    if over or "too large" in str(response.error or ""):
        raise too_large(shown, max_bytes)
    return notebook_of(response, bytes(received), shown=shown, lab=lab, max_bytes=max_bytes)


def failed_read(err: Exception, url: str, shown: str, timeout: float) -> NotebookError:
    """What a student reads when the read from their server failed with ERR."""
    if isinstance(err, HTTPTimeoutError | TimeoutError):
        return NotebookError(
            f"your server did not hand over {shown} within {timeout:.0f} s: if a cell is still "
            "running, wait for it (or restart the kernel), save, then ask again"
        )
    if isinstance(err, ssl.SSLError):
        log.error("reading %s: TLS: %s", url, err)
        return NotebookError(
            "the check service could not verify the TLS certificate of the hub's proxy; tell "
            "staff (the check service's --ca-file)"
        )
    log.warning("reading %s: %s: %s", url, type(err).__name__, err)
    return NotebookError(
        f"the check service could not read {shown} from your server ({type(err).__name__}): "
        "ask again in a minute, and tell staff if it goes on"
    )


def too_large(shown: str, max_bytes: int) -> NotebookError:
    return NotebookError(
        f"{shown} is over the check's limit of {max_bytes / 2**20:.0f} MiB: clear the outputs "
        "(Edit > Clear Outputs of All Cells) and save, then ask again"
    )


def notebook_of(
    response: HTTPResponse, body: bytes, *, shown: str, lab: str, max_bytes: int
) -> bytes:
    """The notebook's bytes from a contents-API answer, or why there are none."""
    code = response.code
    if code in NOT_RUNNING:
        raise not_running(shown)
    if code in REDIRECTS:
        raise NotebookError(
            f"your server answered with a redirect instead of {shown}: stop and start your "
            "server from the hub's home page, then ask again"
        )
    if code == 404:
        raise NotebookError(
            f"there is no {shown} in your server: fetch {lab} first (Nbgrader > Assignment List "
            "> Fetch), work in that notebook, save it, then ask again"
        )
    if code != 200:
        raise NotebookError(
            f"your server refused to hand over {shown} (HTTP {code}): stop and start your "
            "server from the hub's home page, then ask again"
        )
    try:
        model = json.loads(body)
    except (ValueError, RecursionError):
        model = None
    content = model.get("content") if isinstance(model, dict) else None
    kind = model.get("type") if isinstance(model, dict) else None
    if kind == "file" and isinstance(content, str) and model.get("format") == "text":
        data = content.encode("utf-8", errors="surrogatepass")
    elif kind == "notebook" and isinstance(content, dict):
        data = json.dumps(content).encode()
    else:
        raise NotebookError(
            f"your server's answer for {shown} was not the notebook (not a Jupyter file model "
            "with its text): stop and start your server from the hub's home page, then ask again"
        )
    if len(data) > max_bytes:
        raise too_large(shown, max_bytes)
    return data


@dataclass
class ServerNotebooks:
    """Read notebooks from students' running servers through the proxy at PUBLIC_URL.

    HUB_API and SERVICE_TOKEN are the service's own (JUPYTERHUB_API_URL, JUPYTERHUB_API_TOKEN):
    used with the hub only. CA_FILE: a PEM trusted beside the system's CAs for PUBLIC_URL and
    HUB_API.
    """

    hub_api: str
    service_token: str
    public_url: str
    ca_file: str | None = None
    timeout: float = READ_TIMEOUT
    max_bytes: int = MAX_NOTEBOOK_BYTES
    kind: str = "server"
    _reading: set[str] = field(default_factory=set, repr=False)
    _slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(READS_AT_ONCE), repr=False
    )

    def __post_init__(self) -> None:
        self.context = tls_context(self.ca_file)

    def url_of(self, student: str, lab: str) -> str:
        path = f"{quote(lab, safe='')}/{quote(lab, safe='')}.ipynb"
        return (
            f"{self.public_url.rstrip('/')}/user/{quote(student, safe='')}/api/contents/{path}"
            "?type=file&format=text&content=1"
        )

    async def read(self, student: str, lab: str) -> bytes:
        """STUDENT's `~/LAB/LAB.ipynb` from their running server, with a token made for it."""
        shown = f"~/{lab}/{lab}.ipynb"
        if student in self._reading:
            raise ReadInProgress(
                f"the check service is still reading {shown} for your previous request: wait "
                "for it, then ask again"
            )
        self._reading.add(student)
        try:
            async with self._slots:
                await self.require_running(student, shown)
                token_id, token = await self.mint(student)
                try:
                    return await fetch_contents(
                        self.url_of(student, lab),
                        token,
                        shown=shown,
                        lab=lab,
                        context=self.context,
                        timeout=self.timeout,
                        max_bytes=self.max_bytes,
                    )
                finally:
                    await asyncio.shield(self.revoke(student, token_id))
        finally:
            self._reading.discard(student)

    async def hub(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the hub's API with the service's own token: (status, JSON answer or None)."""
        request = HTTPRequest(
            f"{self.hub_api.rstrip('/')}/{path}",
            method=method,
            headers={"Authorization": f"token {self.service_token}"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            follow_redirects=False,
            connect_timeout=HUB_TIMEOUT,
            request_timeout=HUB_TIMEOUT,
            ssl_options=self.context,
        )
        client = SimpleAsyncHTTPClient(force_instance=True)
        try:
            response = await client.fetch(request, raise_error=False)
        except (HTTPClientError, OSError) as err:
            log.error("hub API %s %s: %s", method, path, err)
            return 599, None
        finally:
            client.close()
        try:
            return response.code, json.loads(response.body) if response.body else None
        except ValueError:
            return response.code, None

    async def require_running(self, student: str, shown: str) -> None:
        """A NotebookError unless the hub says STUDENT's server is up."""
        code, model = await self.hub("GET", f"users/{quote(student, safe='')}")
        if code != 200 or not isinstance(model, dict) or "servers" not in model:
            log.error("the hub answered %s for %s's servers (role read:servers?)", code, student)
            raise NotebookError(
                "the check service could not ask the hub whether your server runs; tell staff"
            )
        server = (model.get("servers") or {}).get("")
        if not isinstance(server, dict):
            raise not_running(shown)
        if not server.get("ready"):
            raise NotebookError(
                f"your server is {server.get('pending') or 'not ready'}: wait until JupyterLab "
                f"opens, save {shown}, then ask again"
            )

    async def mint(self, student: str) -> tuple[str, str]:
        """A token of STUDENT for their own server only, expiring soon: (its id, the token)."""
        body = {
            "note": TOKEN_NOTE,
            "expires_in": int(self.timeout) + 30,
            "scopes": [f"access:servers!user={student}"],
        }
        code, made = await self.hub("POST", f"users/{quote(student, safe='')}/tokens", body)
        if code not in (200, 201) or not isinstance(made, dict) or "token" not in made:
            log.error("the hub refused a token for %s's server: HTTP %s %s", student, code, made)
            raise NotebookError(
                "the hub would not give the check service a token to read your notebook; "
                "tell staff (the service's role needs tokens!group=...)"
            )
        return str(made["id"]), str(made["token"])

    async def revoke(self, student: str, token_id: str) -> None:
        """Delete the token (it expires anyway; a failure is logged for staff)."""
        path = f"users/{quote(student, safe='')}/tokens/{quote(token_id, safe='')}"
        code, _ = await self.hub("DELETE", path)
        if code not in (200, 204, 404):
            log.error("could not delete %s's read token %s: HTTP %s", student, token_id, code)
