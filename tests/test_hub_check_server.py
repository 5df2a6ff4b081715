"""'Check my work' reading notebooks from the students' running servers (`--notebooks server`),
through a real JupyterHub 6 on loopback: how it runs where homes are not on the service's host.

The hub here runs the check service as the production hub does (introdl/hub/jupyterhub_config.py
with `check_notebooks = "server"`): for each read it asks the hub for a token of the one student,
sends it to that student's server through the proxy, and deletes it. One student is an attacker
whose server (their own code: a ~/.jupyter config) records every token sent to it and tries it at
once on the hub's API, another student's server and the course's services.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from introdl.checkwork.server_notebook import TOKEN_NOTE
from introdl.hub.local import Hub, running_hub
from tests import hub as hubs
from tests.corpus_course import LAB as CORPUS
from tests.corpus_course import answer
from tests.hub import CheckApi, install_corpus, start_servers
from tests.test_hub_error_pages import browser, form_token

ROOT = Path(__file__).resolve().parents[1]
# Accounts of the test hub that no other test module puts a notebook or a config in.
BEN, ADA, CY = "st-load26", "st-load27", "st-load28"  # ADA is the attacker

# ADA's server (her own code): every new token it is sent is tried elsewhere before it answers,
# and the answer waits until the test lets it go (so the test can ask again meanwhile).
ATTACKER_CONFIG = """
import asyncio, json, time, urllib.error, urllib.request
from pathlib import Path
from jupyter_server.base.handlers import JupyterHandler

PUBLIC, ME, OTHER = {public!r}, {me!r}, {other!r}
TRIES = [
    ("whoami", "GET", f"{{PUBLIC}}/hub/api/user"),
    ("my tokens", "GET", f"{{PUBLIC}}/hub/api/users/{{ME}}/tokens"),
    ("a new token", "POST", f"{{PUBLIC}}/hub/api/users/{{ME}}/tokens"),
    ("stop my server", "DELETE", f"{{PUBLIC}}/hub/api/users/{{ME}}/server"),
    ("list users", "GET", f"{{PUBLIC}}/hub/api/users"),
    ("another user", "GET", f"{{PUBLIC}}/hub/api/users/{{OTHER}}"),
    ("another server", "GET", f"{{PUBLIC}}/user/{{OTHER}}/api/contents/corpus/corpus.ipynb"),
    ("exchange", "GET", f"{{PUBLIC}}/services/exchange/api/submissions"),
    ("check service", "GET", f"{{PUBLIC}}/services/check/api/checks"),
]
_seen = set()
_prepare = JupyterHandler.prepare


def _try(token, method, url):
    body = b"{{}}" if method == "POST" else None
    request = urllib.request.Request(
        url, data=body, method=method, headers={{"Authorization": f"token {{token}}"}}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(3000).decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read(3000).decode(errors="replace")
    except Exception as err:
        return -1, repr(err)


async def prepare(self, *args, **kwargs):
    token = self.request.headers.get("Authorization", "").partition(" ")[2]
    if token and token not in _seen:
        _seen.add(token)
        tried = {{name: _try(token, method, url) for name, method, url in TRIES}}
        with (Path.home() / "stolen.jsonl").open("a") as out:
            out.write(json.dumps({{"token": token, "tried": tried}}) + "\\n")
        (Path.home() / "reading").touch()
        deadline = time.monotonic() + 15
        while not (Path.home() / "go-on").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    return await _prepare(self, *args, **kwargs)


JupyterHandler.prepare = prepare
"""


def home(user: str) -> Path:
    return Path(pwd.getpwnam(user).pw_dir)


def as_student(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def put_notebook(user: str, content: bytes) -> None:
    """Leave the corpus notebook where nbgrader fetch would, owned by the student."""
    folder = home(user) / CORPUS
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / f"{CORPUS}.ipynb").write_bytes(content)
    as_student(folder, user)
    as_student(folder / f"{CORPUS}.ipynb", user)


def attacker_files() -> list[Path]:
    return [home(ADA) / name for name in (".jupyter", "stolen.jsonl", "reading", "go-on")]


@pytest.fixture(scope="module")
def server_hub(hub: Hub) -> Iterator[Hub]:
    """A hub whose check service reads from the students' servers (no lab released through the
    exchange: the check needs only the course's release and hidden suite). It shares the Unix
    accounts of the session's hub (HUB), so it keeps their passwords: new ones would lock the
    later tests' browsers out of that hub."""
    reason = hubs.skip_reason()
    if reason:
        pytest.skip(reason)
    state = Path(tempfile.mkdtemp(prefix="introdl-hub-server-test-", dir="/tmp"))
    settings = dataclasses.replace(hubs.settings(ROOT, state), labs=(), check_notebooks="server")
    settings.hub_dir.mkdir(parents=True)
    shutil.copy(hub.settings.hub_dir / "accounts.json", settings.hub_dir / "accounts.json")
    try:
        with running_hub(settings) as running:
            yield running
    finally:
        shutil.rmtree(state, ignore_errors=True)
        for user in (BEN, ADA, CY):
            shutil.rmtree(home(user) / CORPUS, ignore_errors=True)
        for path in attacker_files():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def corpus(server_hub: Hub) -> nbformat.NotebookNode:
    return install_corpus(server_hub)


@pytest.fixture(scope="module")
def tokens(server_hub: Hub) -> dict[str, str]:
    return {name: server_hub.token_for(name, "test: check from servers") for name in (BEN, ADA, CY)}


@pytest.fixture(scope="module")
def servers(server_hub: Hub, corpus: nbformat.NotebookNode) -> None:
    """BEN's, ADA's (with her recording config) and CY's servers, running."""
    for path in attacker_files():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    config = home(ADA) / ".jupyter"
    config.mkdir()
    (config / "jupyter_server_config.py").write_text(
        ATTACKER_CONFIG.format(public=server_hub.settings.url, me=ADA, other=BEN)
    )
    as_student(config, ADA)
    as_student(config / "jupyter_server_config.py", ADA)
    started = time.monotonic()
    start_servers(server_hub, [BEN, ADA, CY])
    print(f"\nthree student servers ready in {time.monotonic() - started:.1f} s")


def read_tokens(hub: Hub, user: str) -> list[dict[str, Any]]:
    """USER's API tokens as the hub lists them (the admin service's view)."""
    return list(hub.admin("GET", f"users/{user}/tokens").json()["api_tokens"])


def check_tokens(hub: Hub, user: str) -> list[dict[str, Any]]:
    return [t for t in read_tokens(hub, user) if t.get("note") == TOKEN_NOTE]


def test_a_stopped_server_is_named_and_nothing_is_read_from_the_home(
    server_hub: Hub, tokens: dict[str, str], corpus: nbformat.NotebookNode
) -> None:
    """With CY's notebook in her home but no server running, does she read that she must start
    her server (and is no token made for her)?"""
    put_notebook(CY, nbformat.writes(answer(corpus)).encode())
    asked = CheckApi(server_hub, tokens[CY]).call("POST", f"labs/{CORPUS}/checks")
    assert asked.status_code == 404, asked.text
    message = asked.json()["message"]
    assert "your server is not running" in message
    assert "start your server from the hub's home page" in message
    assert f"~/{CORPUS}/{CORPUS}.ipynb" in message
    # The same, asked from the check page in a browser: a page of the service in those words.
    web = browser(server_hub, CY)
    asked_page = web.post(
        f"{server_hub.settings.url}/services/check/labs/{CORPUS}",
        data={"_xsrf": form_token(web, server_hub)},
        timeout=60,
    )
    assert asked_page.status_code == 404, asked_page.text[:500]
    assert "your server is not running" in asked_page.text
    assert "start your server from the hub&#x27;s home page (Start My Server)" in asked_page.text
    assert check_tokens(server_hub, CY) == []


def test_a_check_reads_the_notebook_from_the_running_server_and_grades_it(
    server_hub: Hub, tokens: dict[str, str], corpus: nbformat.NotebookNode, servers: None
) -> None:
    """Is BEN's notebook read from his server and graded, and the token made for it gone after?"""
    put_notebook(BEN, nbformat.writes(answer(corpus)).encode())
    ben = CheckApi(server_hub, tokens[BEN])
    started = time.monotonic()
    asked = ben.call("POST", f"labs/{CORPUS}/checks")
    read = time.monotonic() - started
    assert asked.status_code == 202, asked.text
    assert check_tokens(server_hub, BEN) == []  # deleted as soon as the read was done
    verdict = ben.verdict(asked.json()["id"], timeout=300)["verdict"]
    assert verdict["score"] == 2, verdict  # type: ignore[index]
    print(f"\nrequest answered (token made, notebook read, token deleted) in {read:.2f} s; "
          f"verdict after {time.monotonic() - started:.1f} s")  # fmt: skip


def test_the_token_sent_to_a_students_server_reaches_that_server_only(
    server_hub: Hub, tokens: dict[str, str], corpus: nbformat.NotebookNode, servers: None
) -> None:
    """ADA's own server records the token the check sends it and tries it at once: can it do
    anything but reach her own server (the hub's API, BEN's server, the exchange, the check
    service)? Is it a token of hers, never the service's? Is it dead after the read? Does a
    second request of hers while the first is being read get told to wait, and one within the
    cool-down get refused before her server is asked anything?"""
    put_notebook(ADA, nbformat.writes(answer(corpus, "return a - b")).encode())
    put_notebook(BEN, nbformat.writes(answer(corpus)).encode())
    ada = CheckApi(server_hub, tokens[ADA])
    first: dict[str, requests.Response] = {}
    asking = threading.Thread(
        target=lambda: first.setdefault("answer", ada.call("POST", f"labs/{CORPUS}/checks"))
    )
    asking.start()
    try:
        deadline = time.monotonic() + 60
        while not (home(ADA) / "reading").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (home(ADA) / "reading").exists(), "the check never reached ADA's server"
        assert len(check_tokens(server_hub, ADA)) == 1  # alive while the read is under way
        again = ada.call("POST", f"labs/{CORPUS}/checks")
        assert again.status_code == 429, again.text
        assert "still reading" in again.json()["message"]
    finally:
        (home(ADA) / "go-on").touch()
        asking.join(timeout=60)
    assert first["answer"].status_code == 202, first["answer"].text

    lines = (home(ADA) / "stolen.jsonl").read_text().splitlines()
    assert len(lines) == 1, lines  # one token, and only for this one read
    stolen = json.loads(lines[0])
    tried = {name: code for name, (code, _) in stolen["tried"].items()}
    whoami = json.loads(stolen["tried"]["whoami"][1])
    assert tried["whoami"] == 200, stolen["tried"]
    assert (whoami["name"], whoami["kind"]) == (ADA, "user")  # hers, not the service's
    # Her server, and what JupyterHub lets every token know of its owner: name and groups.
    assert set(whoami["scopes"]) == {
        f"access:servers!user={ADA}",
        f"read:users:name!user={ADA}",
        f"read:users:groups!user={ADA}",
    }, whoami
    refused = {name: code for name, code in tried.items() if name != "whoami"}
    assert all(code in (403, 404) for code in refused.values()), stolen["tried"]
    print("\nthe stolen token, tried while alive:", tried)

    assert check_tokens(server_hub, ADA) == []  # deleted after the read
    dead = requests.get(
        f"{server_hub.settings.url}/hub/api/user",
        headers={"Authorization": f"token {stolen['token']}"},
        timeout=30,
    )
    assert dead.status_code == 403
    # Her own server may still take it until its cache of tokens expires (JupyterHub's
    # HubAuth.cache_max_age, 5 minutes): only her own server, which she can use anyway.
    other = requests.get(
        f"{server_hub.settings.url}/user/{BEN}/api/contents",
        headers={"Authorization": f"token {stolen['token']}"},
        timeout=30,
    )
    assert other.status_code == 403
    verdict = ada.verdict(first["answer"].json()["id"], timeout=300)["verdict"]
    assert verdict["score"] == 0  # type: ignore[index]  # her own (wrong) answer, not BEN's
    # Within the cool-down she is refused before anything is read: no new token to her server.
    (home(ADA) / "go-on").unlink()
    cooling = ada.call("POST", f"labs/{CORPUS}/checks")
    assert cooling.status_code == 429, cooling.text
    assert "next check is allowed at" in cooling.json()["message"]
    assert len((home(ADA) / "stolen.jsonl").read_text().splitlines()) == 1


def test_a_student_cannot_get_anothers_notebook_checked(
    server_hub: Hub, tokens: dict[str, str], servers: None
) -> None:
    """CY links her notebook to ADA's and names ADA: her server (as her) cannot read it, and the
    check reads only from the server of the hub's name for her token."""
    folder = home(CY) / CORPUS
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    as_student(folder, CY)
    (folder / f"{CORPUS}.ipynb").symlink_to(home(ADA) / CORPUS / f"{CORPUS}.ipynb")
    cy = CheckApi(server_hub, tokens[CY])
    named = cy.call("POST", f"labs/{CORPUS}/checks", params={"student": ADA})
    assert named.status_code == 403
    assert f"{CY} cannot check {ADA}'s work" in named.json()["message"]
    linked = cy.call("POST", f"labs/{CORPUS}/checks")
    assert linked.status_code == 404, linked.text
    # Her server, run as her, cannot open a file in ADA's home (0700): it answers 500.
    assert f"your server refused to hand over ~/{CORPUS}/{CORPUS}.ipynb" in linked.json()["message"]
    assert cy.call("GET", "checks").json() == []
    assert check_tokens(server_hub, CY) == []
