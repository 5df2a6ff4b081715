"""The check service's command line: where notebooks are read and how checks are graded."""

from __future__ import annotations

import logging
from pathlib import Path

import nbformat
import pytest

from introdl.checkwork.service import cluster_of, grade_options, parse_args
from introdl.checkwork.settings import course_settings
from introdl.checkwork.workers import Workers
from introdl.grading.grade import GradeOptions
from tests.check_driver import check_queue, serve_checks
from tests.corpus_course import LAB, answer, build_course

BASE = ["--course", "/srv/course", "--state", "/srv/check"]


def test_the_default_is_todays_service() -> None:
    args = parse_args(BASE)
    assert args.notebooks == "home"
    assert grade_options(args) == GradeOptions()


def test_server_mode_and_the_docker_backend_are_taken(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    args = parse_args([*BASE, "--notebooks", "server", "--public-url", "https://hub.example.edu",
                       "--ca-file", str(ca), "--backend", "docker", "--image", "introdl/course:gpu"])  # fmt: skip
    assert (args.notebooks, args.public_url, args.ca_file) == (
        "server",
        "https://hub.example.edu",
        str(ca),
    )
    assert grade_options(args) == GradeOptions(backend="docker", image="introdl/course:gpu")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--notebooks", "server"], "needs --public-url"),
        (["--notebooks", "server", "--public-url", "file:///etc/passwd"], "http:// or https://"),
        (["--notebooks", "server", "--public-url", "http://x", "--ca-file", "/nonexistent.pem"],
         "no such file"),
        (["--image", "introdl/course:gpu"], "--backend docker"),
        (["--backend", "none"], "invalid choice"),  # a check never runs student code unsandboxed
    ],
)  # fmt: skip
def test_unusable_options_are_refused_in_words(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args([*BASE, *argv])
    assert stopped.value.code == 2
    assert words in capsys.readouterr().err


def test_the_backend_and_image_reach_the_grading_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Does a check graded with --backend docker go to the docker backend, warm pool included?
    (No Docker engine here: the engine says so, where bwrap, the default here, would grade.)"""
    release = build_course(tmp_path / "course")
    queue = check_queue(tmp_path / "checks.sqlite")
    options = GradeOptions(backend="docker", image="introdl/not-built:check")
    workers = Workers(queue, tmp_path / "course", 1, warm=1, options=options)
    notebook = nbformat.writes(answer(release)).encode()
    with caplog.at_level(logging.ERROR, logger="introdl.checkwork"):
        [check] = serve_checks(workers, queue, [("ada", LAB, notebook)], bound=120)
    assert check.state == "done"
    assert check.results is not None
    assert check.results["errors"] == ["the check could not be graded (BadInput); ask staff"]
    # Here no engine answers; where one does, the image is missing: the docker backend's words.
    assert "no Docker engine answered" in caplog.text or "not-built:check is not" in caplog.text


def test_the_dask_cluster_comes_from_the_flag_else_the_course_setting(tmp_path: Path) -> None:
    """Does `--cluster` (else `c.CheckService.cluster`) send checks to a Dask scheduler, and does
    a service given neither grade on its own workers?"""
    (tmp_path / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CheckService.cluster = "tcp://10.0.0.5:8786"\n'
    )
    assert cluster_of(parse_args(BASE), course_settings(tmp_path / "none")) == ""
    assert cluster_of(parse_args(BASE), course_settings(tmp_path)) == "tcp://10.0.0.5:8786"
    flag = parse_args([*BASE, "--cluster", "tls://graders:8786"])
    assert cluster_of(flag, course_settings(tmp_path)) == "tls://graders:8786"
