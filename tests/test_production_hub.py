"""The production course, started whole on podman's Docker API (make test-docker).

docker/hub/jupyterhub_config.py runs unchanged (tests/production.py says what the environment file
holds): the containers' bridge network, a student's server from the course image, the exchange
over TLS through the proxy, check-my-work reading the notebook from the student's own server and
grading it in the course image, staff collecting and grading with `--backend docker --image`, and
the student reading their feedback, all in Debian's Chromium. Screenshots go to
build/screenshots/production/.

Isolation, tried from inside a student's container: the course, the exchange's and the services'
data and another student's volume are not there, the services on the host's loopback cannot be
reached, and another student's server refuses the request without its owner's token.
"""

from __future__ import annotations

import pwd
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests import production
from tests import production_students as students
from tests.hub import SCREENSHOTS, chromium, skip_reason
from tests.podman import podman

pytestmark = pytest.mark.docker

LAB = "lab1_tensorflow"
IMAGE, GATEWAY = production.IMAGE, production.GATEWAY
SHOTS = SCREENSHOTS.parent / "production"
ANSWER = students.ANSWER.rstrip("\n")  # typed into the cell
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def hub(course_engine: tuple[str, dict[str, str]]) -> Iterator[production.Production]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    with production.on_podman(
        course_engine, INTRODL_MEM_LIMIT="3G", INTRODL_CPU_LIMIT="2"
    ) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(SHOTS) as launched:
        yield launched


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def log_in(browser: Any, hub: production.Production, user: str) -> Any:
    context = browser.new_context(viewport={"width": 1300, "height": 850}, ignore_https_errors=True)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.password(user))
    page.click("#login_submit")
    return page


def open_assignments(page: Any) -> None:
    page.click(".lm-MenuBar-itemLabel:has-text('Nbgrader')")
    page.click(".lm-Menu-itemLabel:has-text('Assignment List')")
    page.wait_for_selector("#released_assignments_list")


def test_a_student_works_checks_submits_and_reads_feedback(
    browser: Any, hub: production.Production
) -> None:
    """The whole lab through the production hub, in the browser, graded in the course image."""
    teacher = hub.token("pr-teacher")
    # docs/deploy.md, section 4: regenerate the release (and the gradebook's record), then release.
    made = production.as_grader(hub, teacher, "introdl", "release", LAB)
    assert made.returncode == 0, made.stdout + made.stderr
    released = production.as_grader(hub, teacher, "nbgrader", "release_assignment", LAB, "--force")
    assert released.returncode == 0, released.stdout + released.stderr

    started = time.monotonic()
    page = log_in(browser, hub, "pr-ada")
    page.wait_for_url("**/user/pr-ada/lab**", timeout=180_000)
    page.wait_for_selector(".jp-LabShell")
    TIMINGS["login to JupyterLab (server from the image)"] = time.monotonic() - started
    shot(page, "01-student-server-from-the-image")

    open_assignments(page)
    page.locator(
        f"#released_assignments_list .list_item:has-text('{LAB}') button:has-text('Fetch')"
    ).click()
    page.locator(f"#fetched_assignments_list .list_item:has-text('{LAB}')").first.wait_for()
    shot(page, "02-fetched-through-the-exchange")

    page.goto(f"{hub.url}/user/pr-ada/lab/tree/{LAB}/{LAB}.ipynb")
    cell = page.locator(".jp-Cell:has-text('def func(a, b):')").first
    cell.wait_for()
    cell.scroll_into_view_if_needed()
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(ANSWER)
    page.keyboard.press("Escape")
    page.keyboard.press("Control+S")
    page.wait_for_timeout(2000)
    shot(page, "03-todo-filled")

    link = page.locator(".jp-RenderedMarkdown a:has-text('Check my work')").first
    link.wait_for()
    with page.context.expect_page() as opened:
        link.click()
    labs = opened.value
    labs.set_default_timeout(120_000)
    labs.wait_for_selector(f"#check-{LAB}")
    asked = time.monotonic()
    labs.click(f"#check-{LAB}")
    labs.wait_for_url("**/services/check/checks/*")
    labs.wait_for_selector("#score", timeout=900_000)
    TIMINGS["check: request to verdict (first, cold)"] = time.monotonic() - asked
    shot(labs, "04-check-verdict")
    assert labs.locator("#score").inner_text().startswith("1 / "), labs.content()[:3000]
    assert (
        "test_func_computes_the_graph_on_random_tensors\tpassed"
        in labs.locator("#tests").inner_text()
    )

    page.goto(f"{hub.url}/user/pr-ada/lab")
    page.wait_for_selector(".jp-LabShell")
    open_assignments(page)
    page.locator(
        f"#fetched_assignments_list .list_item:has-text('{LAB}') button:has-text('Submit')"
    ).first.click()
    page.locator(f"#submitted_assignments_list .list_item:has-text('{LAB}')").first.wait_for()
    shot(page, "05-submitted")

    collected = production.as_grader(hub, teacher, "nbgrader", "collect", LAB, "--update")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert (hub.course / "submitted" / "pr-ada" / LAB / f"{LAB}.ipynb").is_file()
    graded = subprocess.run(
        [
            hub.python,
            "-m",
            "introdl.cli",
            "grade",
            LAB,
            "--backend",
            "docker",
            "--image",
            IMAGE,
            "--feedback",
            "--export",
            "grades.csv",
            "--json",
        ],
        cwd=hub.course,
        env={**hub.env, "DOCKER_HOST": hub.docker_host, "INTRODL_COURSE_ROOT": str(hub.course)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    assert '"backend": "docker"' in graded.stdout or "docker" in graded.stdout
    # Graded as root, the course (the export too) is grader-introdl's again.
    for made in ("gradebook.db", "grades.csv"):
        assert (hub.course / made).stat().st_uid == pwd.getpwnam(production.GRADER).pw_uid, made
    fed = production.as_grader(hub, teacher, "nbgrader", "release_feedback", LAB)
    assert fed.returncode == 0, fed.stdout + fed.stderr

    page.reload()
    page.wait_for_selector(".jp-LabShell")
    open_assignments(page)
    fetch = page.locator(
        f"#submitted_assignments_list .list_item:has-text('{LAB}') "
        "button:has-text('Fetch Feedback')"
    ).first
    fetch.click()
    page.locator(
        f"#submitted_assignments_list .list_item:has-text('{LAB}') a:has-text('view feedback')"
    ).first.wait_for()
    shot(page, "06-feedback-fetched")
    # The feedback she fetched into her home, opened in her JupyterLab: her score and the hidden
    # tests' messages, never their source.
    found = students.in_container(
        hub, "pr-ada", "sh", "-c", f"ls {LAB}/feedback/*/{LAB}.html"
    ).splitlines()  # the folder is nbgrader's time stamp, spaces included
    assert len(found) == 1, found
    page.goto(f"{hub.url}/user/pr-ada/lab/tree/{urllib.parse.quote(found[0])}")
    feedback = page.frame_locator(".jp-HTMLViewer iframe").first
    feedback.locator("text=Score").first.wait_for()
    shot(page, "07-feedback")
    text = feedback.locator("body").inner_text()
    assert "Score: 1.0 / 11.0" in text, text[:2000]
    assert "PASSED  test_func_computes_the_graph_on_random_tensors" in text
    assert "def test_" not in feedback.locator("html").inner_html()
    print("timings:", {k: round(v, 1) for k, v in TIMINGS.items()}, file=sys.stderr)


def test_a_students_container_reaches_nothing_of_the_course(hub: production.Production) -> None:
    """From inside a student's container: no course, no exchange data, no loopback services, and
    another student's server (same bridge) refuses a request without its owner's token."""
    for user in ("pr-ada", "pr-ben"):
        students.start_server(hub, user, hub.token(user))
    ada_ip = podman(
        hub.podman_env,
        "inspect",
        production.container("pr-ada"),
        "--format",
        '{{(index .NetworkSettings.Networks "introdl-hub").IPAddress}}',
    ).stdout.strip()
    assert ada_ip.startswith("172.30.0."), ada_ip
    seen = students.in_container(
        hub,
        "pr-ben",
        "python",
        "-c",
        "import os, socket, urllib.request, urllib.error\n"
        f"print(os.path.exists({str(hub.srv)!r}), os.listdir('/srv'))\n"
        "print(sorted(os.listdir('/home')))\n"
        f"url = 'http://{ada_ip}:8888/user/pr-ada/api/contents/'\n"
        "try:\n"
        "    print('ada', urllib.request.urlopen(url, timeout=10).status)\n"
        "except urllib.error.HTTPError as err:\n"
        "    print('ada', err.code)\n"
        "for port in (10101, 10102, 9999, 8001):\n"
        "    for host in ('127.0.0.1', '" + GATEWAY + "'):\n"
        "        s = socket.socket(); s.settimeout(3)\n"
        "        print(host, port, s.connect_ex((host, port)))\n",
    )
    lines = seen.splitlines()
    assert lines[0] == "False []"  # the image's /srv is Debian's empty one
    assert lines[1] == "['jovyan']"
    assert lines[2] in ("ada 403", "ada 401"), lines[2]
    for line in lines[3:]:
        assert not line.endswith(" 0"), f"reachable from a student's container: {line}"


def test_a_student_cannot_hand_in_or_check_as_another(hub: production.Production) -> None:
    """nbgrader's two forgeries inside a container, and a check claimed for another, are refused
    by the production exchange and check service and file nothing."""
    ada, teacher = hub.token("pr-ada"), hub.token("pr-teacher")
    production.release(hub, LAB)
    students.start_server(hub, "pr-ada", ada)
    students.in_container(
        hub, "pr-ada", "sh", "-c", f"test -d {LAB} || nbgrader fetch_assignment {LAB}"
    )
    forgeries = {
        "JUPYTERHUB_USER": podman(
            hub.podman_env,
            "exec",
            "--env",
            "JUPYTERHUB_USER=pr-ben",
            production.container("pr-ada"),
            "nbgrader",
            "submit",
            LAB,
            timeout=120,
        ),
        "--student": podman(
            hub.podman_env,
            "exec",
            production.container("pr-ada"),
            "nbgrader",
            "submit",
            LAB,
            "--student",
            "pr-ben",
            timeout=120,
        ),
    }
    for how, done in forgeries.items():
        said = done.stdout + done.stderr
        assert done.returncode != 0, f"{how}: {said}"
        assert "pr-ada cannot submit as pr-ben" in said, f"{how}: {said}"
    listed = students.call(hub, teacher, "GET", f"/services/exchange/api/collect/{LAB}").json()
    assert "pr-ben" not in {row["student"] for row in listed}
    claimed = students.call(
        hub, ada, "POST", f"/services/check/api/labs/{LAB}/checks", params={"student": "pr-ben"}
    )
    assert claimed.status_code == 403, claimed.text
    assert "cannot check pr-ben's work" in claimed.text
