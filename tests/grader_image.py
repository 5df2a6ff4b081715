"""The grading worker image (docker/grader.Dockerfile) built with podman, on the course image.

`ensure_built` builds `IMAGE` (localhost/introdl/grader:cpu) FROM the course image
(tests/course_image.py, built first when missing) when it is missing, or when it was built from
another course image, another recipe or other introdl code: labels on the image record the course
image's id, the Dockerfile's sha256 and the fingerprint of the checkout's introdl
(introdl/grading/cluster/same_code.py) with its pyproject.toml. So a rebuilt course image, an
edited recipe or a change to the grading code is never graded with a stale worker image. The
layers are thin (Debian's bubblewrap from deb.debian.org, the checkout's introdl installed over
the course image's without its dependencies): seconds.

The build context is the repository, of which the recipe copies pyproject.toml, README.md and
introdl/ only (never the course's source, releases or hidden tests).

Run it with ``scripts/grader-image`` (``--force`` rebuilds it without podman's layer cache); the
docker-marked Dask tests call `ensure_built` themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from introdl.grading.cluster.same_code import fingerprint
from tests import course_image
from tests.podman import podman

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "grader.Dockerfile"
IMAGE = "localhost/introdl/grader:cpu"
COURSE_LABEL = "org.introdl.course-image-id"
RECIPE_LABEL = "org.introdl.grader-recipe-sha256"
CODE_LABEL = "org.introdl.code-fingerprint"


def wanted_labels(env: dict[str, str]) -> dict[str, str]:
    """The labels an up-to-date grader image carries: its course image and its recipe."""
    course_id = course_image.image_id(env, course_image.IMAGE)
    if course_id is None:
        raise RuntimeError(f"{course_image.IMAGE} is missing: run scripts/course-image first")
    recipe = hashlib.sha256(DOCKERFILE.read_bytes()).hexdigest()
    code = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + fingerprint(ROOT / "introdl").encode()
    ).hexdigest()
    return {COURSE_LABEL: course_id, RECIPE_LABEL: recipe, CODE_LABEL: code}


def labels_of(env: dict[str, str], name: str) -> dict[str, str] | None:
    """The image's labels, or None when there is no such image."""
    found = podman(env, "image", "inspect", "--format", "{{json .Labels}}", name)
    if found.returncode != 0:
        return None
    labels = json.loads(found.stdout.strip() or "null")
    return dict(labels or {})


def build(env: dict[str, str], labels: dict[str, str], *, no_cache: bool = False) -> None:
    """``podman build`` of docker/grader.Dockerfile on the course image; output to our stdout."""
    label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    built = subprocess.run(
        [
            "podman",
            "build",
            "--format",
            "docker",  # the OCI format drops SHELL (bash with pipefail in the RUN)
            "--build-arg",
            f"COURSE={course_image.IMAGE}",
            *label_args,
            *(["--no-cache"] if no_cache else []),
            "--tag",
            IMAGE,
            "--file",
            str(DOCKERFILE),
            str(ROOT),
        ],
        env={**os.environ, **env},
    )
    if built.returncode != 0:
        raise SystemExit(f"podman build failed (exit {built.returncode}); its output is above")


def ensure_built(env: dict[str, str], *, force: bool = False) -> float | None:
    """Build the grader image when missing, stale or forced; the seconds it took (None: kept)."""
    course_image.ensure_built(env)  # a no-op when the course image exists
    labels = wanted_labels(env)
    current = labels_of(env, IMAGE)
    if not force and current is not None and all(current.get(k) == v for k, v in labels.items()):
        return None
    previous = course_image.image_id(env, IMAGE)
    started = time.monotonic()
    build(env, labels, no_cache=force)
    took = time.monotonic() - started
    if previous and previous != course_image.image_id(env, IMAGE):
        podman(env, "rmi", previous)  # the replaced layer; kept if a container still uses it
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="grader-image", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild the grader image")
    args = parser.parse_args(argv)
    reason = course_image.unbuildable_reason()
    if reason is not None:
        print(f"grader-image: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="introdl-podman-conf-") as conf:
        env = course_image.config_env(Path(conf))
        took = ensure_built(env, force=args.force)
        size = course_image.image_size(env, IMAGE) - course_image.image_size(
            env, course_image.IMAGE
        )
    if took is None:
        print(f"{IMAGE} is up to date with {course_image.IMAGE} and {DOCKERFILE.name}")
    else:
        print(f"built {IMAGE} in {took:.0f} s")
    print(f"{IMAGE}: {size / 1e6:.1f} MB on top of {course_image.IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
