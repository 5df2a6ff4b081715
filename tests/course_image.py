"""Build the course image (docker/Dockerfile) with podman on a machine without a registry.

Two steps, each timed:

1. the base: Debian bookworm from debootstrap (minbase + python3, python3-venv, ca-certificates),
   imported with ``podman import`` as `BASE_IMAGE`; built once and kept;
2. the image: ``podman build --build-arg BASE=<the base> --build-arg TF=cpu`` of
   docker/Dockerfile from the repository root, tagged `IMAGE`. pip and apt inside the build reach
   PyPI and Debian's mirror.

podman is configured by files as in tests/podman.py (runc, cgroupfs, ``default_ulimits``, storage
under ``$INTRODL_PODMAN_ROOT``), without the test image's bind mounts of the tests' Python.

The build needs neither ``--isolation chroot`` nor ``--network host`` here: podman 4.3's
defaults (OCI isolation through runc, the CNI bridge network) reach PyPI and Debian from RUN steps
(tried 2026-12-06). What it does need, found by trying: the host's extra CA certificates
(``/usr/local/share/ca-certificates/*.crt``) copied into the base, because HTTPS egress here goes
through an intercepting proxy whose CA only the host trusts (pip in the base fails "No matching
distribution" without it). On a host without extra CAs nothing is copied.

Run it with ``scripts/course-image`` (``--force`` rebuilds both, ``--force-image`` the image only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.podman import PODMAN_ROOT, debootstrap, podman, unusable_reason, write_config

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
BASE_IMAGE = "localhost/introdl-base:bookworm"
IMAGE = "localhost/introdl/course:cpu"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CAS = Path("/usr/local/share/ca-certificates")


def config_env(directory: Path) -> dict[str, str]:
    """podman's configuration for the course image (no bind mounts of the tests' Python)."""
    return write_config(directory, bind_python=False)


def image_exists(env: dict[str, str], name: str) -> bool:
    return podman(env, "image", "exists", name).returncode == 0


def image_id(env: dict[str, str], name: str) -> str | None:
    found = podman(env, "image", "inspect", "--format", "{{.Id}}", name)
    return found.stdout.strip() if found.returncode == 0 else None


SOURCE_LABEL = "introdl.source"


def source_hash() -> str:
    """A hash of what docker/Dockerfile copies into the image (pyproject.toml, README.md,
    introdl/, docker/student/) and of the Dockerfile: an image built from other sources is stale
    and is built again (so `make test-docker` never tests an image of older code)."""
    digest = hashlib.sha256()
    paths = [ROOT / "pyproject.toml", ROOT / "README.md", DOCKERFILE]
    for folder in ("introdl", "docker/student"):
        paths += sorted(
            p for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for path in paths:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def image_source(env: dict[str, str], name: str) -> str | None:
    """The source hash the image was built from (None: no image, or built before the label)."""
    found = podman(
        env, "image", "inspect", "--format", f'{{{{ index .Labels "{SOURCE_LABEL}" }}}}', name
    )
    label = found.stdout.strip() if found.returncode == 0 else ""
    return label if label and label != "<no value>" else None


def image_size(env: dict[str, str], name: str) -> int:
    """The image's size in bytes, as ``podman image inspect`` reports it."""
    found = podman(env, "image", "inspect", "--format", "{{.Size}}", name)
    return int(found.stdout.strip()) if found.returncode == 0 else 0


def unbuildable_reason() -> str | None:
    """Why the course image cannot be built here (podman or debootstrap missing), or None."""
    reason = unusable_reason()
    if reason is not None:
        return reason
    if shutil.which("debootstrap") is None:
        return "debootstrap is not installed: apt-get install -y debootstrap"
    return None


def build_base(env: dict[str, str]) -> None:
    """debootstrap bookworm (minbase + `BASE_PACKAGES`) and import it as `BASE_IMAGE`."""
    PODMAN_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="introdl-base-", dir=PODMAN_ROOT) as tmp:
        rootfs = debootstrap(Path(tmp) / "rootfs", BASE_PACKAGES)
        cas = sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []
        if cas:
            target = rootfs / HOST_CAS.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            for ca in cas:
                (target / ca.name).write_bytes(ca.read_bytes())
            subprocess.run(
                ["chroot", str(rootfs), "update-ca-certificates"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        # debootstrap leaves its .deb files (~60 MB), apt lists and the host's resolv.conf behind.
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"):
            for leftover in rootfs.glob(pattern):
                leftover.unlink()
        (rootfs / "etc" / "resolv.conf").unlink(missing_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = podman(
            env,
            "import",
            "--quiet",
            "--change",
            'CMD ["/bin/bash"]',
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "-",
            BASE_IMAGE,
            stdin=tar.stdout,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SystemExit(f"podman import failed: {imported.stderr.strip()}")


def build_image(env: dict[str, str], *, tf: str = "cpu", tag: str = IMAGE) -> None:
    """``podman build`` of docker/Dockerfile on `BASE_IMAGE`; its output goes to our stdout."""
    built = subprocess.run(
        [
            "podman",
            "build",
            "--format",
            "docker",  # the OCI format drops SHELL (bash with pipefail in the Dockerfile's RUNs)
            "--build-arg",
            f"BASE={BASE_IMAGE}",
            "--build-arg",
            f"TF={tf}",
            "--label",
            f"{SOURCE_LABEL}={source_hash()}",
            "--tag",
            tag,
            "--file",
            str(DOCKERFILE),
            str(ROOT),
        ],
        env={**os.environ, **env},
    )
    if built.returncode != 0:
        raise SystemExit(f"podman build failed (exit {built.returncode}); its output is above")


def ensure_built(
    env: dict[str, str], *, force_base: bool = False, force_image: bool = False
) -> dict[str, float]:
    """Build what is missing (or forced); the seconds each step took, by step."""
    timings: dict[str, float] = {}
    if force_base or not image_exists(env, BASE_IMAGE):
        started = time.monotonic()
        if image_exists(env, BASE_IMAGE):
            podman(env, "rmi", "--force", BASE_IMAGE)
        build_base(env)
        timings["base"] = time.monotonic() - started
        force_image = True
    if image_exists(env, IMAGE) and image_source(env, IMAGE) != source_hash():
        print(f"{IMAGE} was built from other sources than this checkout's: building it again")
        force_image = True
    if force_image or not image_exists(env, IMAGE):
        previous = image_id(env, IMAGE)
        started = time.monotonic()
        build_image(env)
        timings["image"] = time.monotonic() - started
        if previous and previous != image_id(env, IMAGE):
            podman(env, "rmi", previous)  # the replaced build (2-3 GB); kept if a container uses it
    return timings


@contextmanager
def podman_service(home: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``podman system service`` on a socket in `home`, configured for the course image (built
    here when missing); its Docker address (``unix://...``) and podman's environment."""
    env = config_env(home / "conf")
    ensure_built(env)  # a no-op when scripts/course-image has built it (make test-docker does)
    sock = home / "podman.sock"
    log = home / "podman-service.log"
    with log.open("w") as out:
        service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{sock}"],
            env={**os.environ, **env},
            cwd=home,  # conmon may drop files in its working directory
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"podman system service did not start: {log.read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield f"unix://{sock}", env
    finally:
        service.terminate()
        try:
            service.wait(timeout=20)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course-image", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild the base and the image")
    parser.add_argument("--force-image", action="store_true", help="rebuild the image only")
    parser.add_argument("--json", action="store_true", help="print timings and size as JSON")
    args = parser.parse_args(argv)
    reason = unbuildable_reason()
    if reason is not None:
        print(f"course-image: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="introdl-podman-conf-") as conf:
        env = config_env(Path(conf))
        timings = ensure_built(env, force_base=args.force, force_image=args.force_image)
        size, base_size = image_size(env, IMAGE), image_size(env, BASE_IMAGE)
    seconds = {step: round(s) for step, s in timings.items()}
    if args.json:
        report = {
            "image": IMAGE,
            "size_bytes": size,
            "base": BASE_IMAGE,
            "base_size_bytes": base_size,
        }
        print(json.dumps({**report, "seconds": seconds}, indent=2))
        return 0
    for step, took in seconds.items():
        print(f"built {step} in {took} s")
    print(f"{IMAGE}: {size / 1e9:.2f} GB; {BASE_IMAGE}: {base_size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
