"""`introdl grade --image IMAGE --gpus {all,N}`: parsing, refusals, and the container they ask for.

Fast and engine-free; tests/test_docker_gpus.py (docker-marked) shows the request reaching a real
engine's API.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from introdl.cli import _commands, build_parser, main
from introdl.grading.commands.grade import NOT_SANDBOXED, docker_flags
from introdl.grading.errors import BadInput
from introdl.grading.grade import GradeOptions, pool_matches, warm_pool
from introdl.grading.sandbox import ALL_GPUS, SandboxSpec, make_sandbox
from introdl.grading.sandbox.docker import container_spec
from introdl.grading.sandbox.limits import TEST_LIMITS


def test_image_and_gpus_reach_the_grade_command_as_given() -> None:
    """Are --image and --gpus flags of `introdl grade`, None when not given?"""
    parser = build_parser(_commands())
    given = vars(parser.parse_args(["grade", "lab2_mnist", "--gpus", "all", "--image", "c:1"]))
    assert (given["gpus"], given["image"]) == ("all", "c:1")
    bare = vars(parser.parse_args(["grade", "lab2_mnist"]))
    assert (bare["gpus"], bare["image"]) == (None, None)


@pytest.mark.parametrize(
    ("backend", "image", "gpus", "expected"),
    [
        (None, None, None, (None, None)),  # nothing asked: the backend is chosen as before
        ("bwrap", None, None, ("bwrap", None)),
        ("docker", None, "all", ("docker", ALL_GPUS)),
        (None, None, "2", ("docker", 2)),  # either flag picks the docker backend
        (None, "course:1", None, ("docker", None)),
        ("docker", "course:1", "16", ("docker", 16)),
    ],
)
def test_gpus_all_is_minus_one_and_n_is_n(
    backend: str | None, image: str | None, gpus: str | None, expected: tuple[object, object]
) -> None:
    assert docker_flags(backend, image, gpus) == expected


@pytest.mark.parametrize(
    "value",
    ["0", "two", "-1", "2.5", " 2", "02", "", "ALL", "all,capabilities=utility", '"device=0,1"'],
)
def test_a_bad_gpu_count_is_refused_naming_the_flag(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--gpus 0`, `--gpus two`, a negative count or docker's device syntax: exit 2, saying what
    --gpus takes, before any course or sandbox is looked at."""
    assert main(["grade", "lab2_mnist", "--gpus", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"introdl grade: --gpus {value!r}: give `all`"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", ["bwrap", "none"])
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--gpus", "all"], "--gpus is"),
        (["--image", "course:1"], "--image is"),
        (["--image", "course:1", "--gpus", "2"], "--image and --gpus are"),
    ],
)
def test_image_or_gpus_with_another_backend_is_refused_naming_the_flag(
    backend: str, flags: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """bwrap (and none) run this machine's own Python: no image to run, no GPUs to ask for."""
    assert main(["grade", "lab2_mnist", "--backend", backend, *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"introdl grade: {named} for the docker backend only"), err
    assert f"--backend {backend}" in err
    assert NOT_SANDBOXED not in err  # refused before anything ran, even unsandboxed


def test_an_empty_image_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "lab2_mnist", "--image", ""]) == 2
    assert "--image needs an image name" in capsys.readouterr().err


def spec(tmp_path: Path) -> SandboxSpec:
    return SandboxSpec(workdir=tmp_path, uid=61999, name="t", limits=TEST_LIMITS)


@pytest.mark.parametrize(
    ("gpus", "requests"),
    [
        (None, None),
        (False, None),  # the bool this once was
        (True, [{"count": -1, "capabilities": [["gpu"]]}]),
        (ALL_GPUS, [{"count": -1, "capabilities": [["gpu"]]}]),
        (1, [{"count": 1, "capabilities": [["gpu"]]}]),
        (2, [{"count": 2, "capabilities": [["gpu"]]}]),
    ],
)
def test_container_spec_asks_for_what_docker_run_gpus_asks_for(
    tmp_path: Path, gpus: int | None, requests: list[dict[str, object]] | None
) -> None:
    """None: no device request at all; all: count -1; N: count N; always the gpu capability."""
    got = container_spec(spec(tmp_path), ["python"], image="course:1", gpus=gpus)
    assert got.get("device_requests") == requests
    assert got["image"] == "course:1"


@pytest.mark.parametrize("gpus", [0, -2])
def test_a_gpu_count_of_zero_or_below_minus_one_is_refused(tmp_path: Path, gpus: int) -> None:
    with pytest.raises(ValueError, match="a count of 1 or more"):
        container_spec(spec(tmp_path), ["python"], image="course:1", gpus=gpus)
    with pytest.raises(ValueError, match="a count of 1 or more"):
        GradeOptions(backend="docker", gpus=gpus)


def test_grade_options_carry_the_count_and_a_pool_for_other_gpus_is_refused(
    tmp_path: Path,
) -> None:
    """GradeOptions keep the count (True/False as all/none), and a warm pool built for other
    GPUs would grade differently from the cold path: it is refused like one for another image."""
    assert GradeOptions(gpus=True).gpus == ALL_GPUS
    assert GradeOptions(gpus=False).gpus is None
    assert GradeOptions(gpus=3).gpus == 3
    options = GradeOptions(backend="docker", image="course:1", gpus=2)
    with warm_pool(tmp_path, options, limit=0) as pool:  # limit 0: no kernel is started
        assert (pool.image, pool.gpus) == ("course:1", 2)
        pool_matches(pool, options)
        with pytest.raises(ValueError, match="built for other grading options"):
            pool_matches(pool, GradeOptions(backend="docker", image="course:1", gpus=ALL_GPUS))
        with pytest.raises(ValueError, match="built for other grading options"):
            pool_matches(pool, GradeOptions(backend="docker", image="course:1"))


@pytest.mark.parametrize("backend", ["bwrap", "none"])
def test_a_sandbox_without_images_refuses_an_image_or_gpus(tmp_path: Path, backend: str) -> None:
    """Below the CLI too (GradeOptions with backend=None resolve to bwrap without Docker): an
    image or GPUs asked of bwrap are refused, never silently left out."""
    with pytest.raises(BadInput, match=r"asked for: GPUs \(-1\)"):
        make_sandbox(backend, spec(tmp_path), gpus=ALL_GPUS)
    with pytest.raises(BadInput, match=r"asked for: image course:1\)"):
        make_sandbox(backend, spec(tmp_path), image="course:1")
