"""`introdl grade --backend docker --image IMAGE --gpus {all,N}` against a real engine.

There is no GPU here, so what is checked is the engine's API call: a recording proxy
(tests/docker_proxy.py) sits between the grader's Docker SDK and podman's Docker API socket and
keeps every request's body. What podman 4.3 then does with a GPU request is part of the record:
it accepts the container and drops the request (the container has no DeviceRequests and no
devices), so the grader refuses to grade on it, saying so and naming --gpus.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import introdl.grading.course
from introdl.cli import main
from tests.corpus_course import LAB, answer, build_course, submit
from tests.docker_proxy import RecordingProxy
from tests.podman import image_name

pytestmark = pytest.mark.docker


@pytest.fixture
def proxy(
    engine: Any, podman_socket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RecordingProxy]:
    """The grader (and every process it starts) talks to podman through the recording proxy."""
    short = Path(tempfile.mkdtemp(prefix="introdl-proxy-", dir="/tmp"))  # socket paths: 107 bytes
    try:
        with RecordingProxy(short / "docker.sock", upstream=podman_socket) as recording:
            monkeypatch.setenv("DOCKER_HOST", recording.address)
            yield recording
        left = engine.containers.list(all=True, filters={"label": "introdl.sandbox"})
        assert left == [], f"containers left behind: {[c.name for c in left]}"
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The one-exercise course (tests/corpus_course.py) with ada's and ben's right answers."""
    course = tmp_path / "course"
    release = build_course(course)
    for student in ("ada", "ben"):
        submit(course, student, answer(release))
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))
    monkeypatch.setattr(introdl.grading.course, "LABS", (*introdl.grading.course.LABS, LAB))
    return course


def gpu_request(count: int) -> list[dict[str, Any]]:
    """HostConfig.DeviceRequests as `docker run --gpus all` (count -1) or `--gpus N` send it."""
    return [
        {"Driver": "", "Count": count, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}
    ]


@pytest.mark.parametrize(
    ("flag", "count", "warm"),
    [("all", -1, []), ("2", 2, ["--no-warm"])],  # a warm pool's kernels, then cold ones
)
def test_gpus_reach_the_engine_and_a_dropped_request_is_refused_in_words(
    course: Path,
    proxy: RecordingProxy,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    count: int,
    warm: list[str],
) -> None:
    """Does `--gpus all` (`--gpus 2`) put the device request `docker run --gpus` sends into the
    container the kernel runs in, in the image asked for? And when the engine drops it (podman
    4.3 does), does the grade stop with one sentence naming --gpus, no traceback, nothing graded?"""
    code = main(
        [
            "grade",
            LAB,
            "--backend",
            "docker",
            "--image",
            image_name(),
            "--gpus",
            flag,
            "--workers",
            "1",
            *warm,
        ]
    )
    said = capsys.readouterr()
    assert code == 2, said.err
    creates = proxy.bodies("POST", "/containers/create")
    assert creates, "no container was created"
    for create in creates:
        assert create["Image"] == image_name()
        assert create["HostConfig"]["DeviceRequests"] == gpu_request(count)
        assert create["HostConfig"]["NetworkMode"] == "none"
    assert "dropped its GPU request (the container has no DeviceRequests" in said.err
    assert f"so --gpus {flag} cannot be honoured" in said.err
    assert "Traceback" not in said.err
    assert not (course / "autograded").exists()


def test_without_gpus_the_image_asked_for_grades_and_no_device_is_requested(
    course: Path, proxy: RecordingProxy, capsys: pytest.CaptureFixture[str]
) -> None:
    """Is the proxy transparent (the class grades as without it), does --image pick the image
    (and imply nothing about GPUs), and does the summary name the image?"""
    code = main(["grade", LAB, "--image", image_name(), "--workers", "1", "--json"])
    said = capsys.readouterr()
    assert code == 0, said.err
    result = json.loads(said.out)
    assert (result["backend"], result["image"], result["gpus"]) == ("docker", image_name(), None)
    assert {row["student"]: row["score"] for row in result["rows"]} == {"ada": 2, "ben": 2}
    creates = proxy.bodies("POST", "/containers/create")
    assert len(creates) == 2
    for create in creates:
        assert create["Image"] == image_name()
        assert not create["HostConfig"].get("DeviceRequests")


def test_a_dask_worker_asks_its_engine_for_the_image_and_gpus(
    course: Path,
    proxy: RecordingProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With --scheduler, do --image and --gpus travel with the task (GradeOptions) to the worker,
    whose own engine gets the request, and does the worker's refusal come back in words?"""
    from distributed import LocalCluster, default_client

    monkeypatch.setenv("INTRODL_BUNDLE_DIR", str(tmp_path / "bundles"))
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:  # its worker process inherits DOCKER_HOST: the proxy
        code = main(
            ["grade", LAB, "--backend", "docker", "--image", image_name(), "--gpus", "2",
             "--scheduler", cluster.scheduler_address]
        )  # fmt: skip
        # the batch stopped, and its Dask client is closed now, not at the grader's exit (it
        # used to wait there 30 s for a scheduler that had gone)
        with pytest.raises(ValueError, match="No clients found"):
            default_client()
    said = capsys.readouterr()
    assert code == 2, said.err
    creates = proxy.bodies("POST", "/containers/create")
    assert creates, "the worker created no container"
    for create in creates:
        assert create["Image"] == image_name()
        assert create["HostConfig"]["DeviceRequests"] == gpu_request(2)
    assert "so --gpus 2 cannot be honoured" in said.err
    assert not (course / "autograded").exists()
