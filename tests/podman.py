"""A real Docker-compatible engine for the docker backend's tests: podman, configured by files.

Nothing here changes how podman behaves machine-wide. The configuration lives in two files written
for each test session (`write_config`) and handed to podman through ``CONTAINERS_CONF`` and
``CONTAINERS_STORAGE_CONF``:

- the OCI runtime is ``runc`` (crun fails on this machine's hybrid cgroup setup), the cgroup
  manager is cgroupfs (no systemd), events go to a file;
- ``default_ulimits`` pins ``nofile`` and ``nproc`` below the hard limits, because podman otherwise
  asks runc for limits that root here is not allowed to raise to;
- images and containers live under ``$INTRODL_PODMAN_ROOT`` (default ``/var/lib/introdl-podman``),
  so the test image is built once and kept across runs.

The test image (`IMAGE`) is a minimal Debian bookworm root filesystem from debootstrap, imported
with ``podman import`` (there is no registry here), whose ``python`` runs the Python environment
of the tests. TEST-ONLY SHORTCUT: that environment (the venv and its base interpreter) is not copied
into the image but bind-mounted read-only at its own paths by the engine, through the ``volumes``
of the session's containers.conf (so the grader's code asks for nothing extra). The real course
image is docker/Dockerfile, which installs Python and the course's packages inside.

Build the image once with ``scripts/podman-test-image`` (a few minutes: debootstrap downloads
about 60 MB of Debian packages), which runs this module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PODMAN_ROOT = Path(os.environ.get("INTRODL_PODMAN_ROOT", "/var/lib/introdl-podman"))
# Debian packages the tests' Python needs beyond debootstrap's minbase (pyenv's build links these).
EXTRA_PACKAGES = (
    "libssl3",
    "libffi8",
    "libsqlite3-0",
    "libbz2-1.0",
    "liblzma5",
    "libreadline8",
    "libncursesw6",
    "zlib1g",
    "libgomp1",
)
DEBIAN_MIRROR = os.environ.get("INTRODL_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The host tools: podman and its runtime, catatonit (the container init the docker backend asks
# for with ``init=True``), debootstrap (only to build the image).
TOOLS = {"podman": "podman", "runc": "runc", "catatonit": "catatonit"}
RECIPE = 1  # bump when the image's recipe changes, so a stale image is not reused


def python_dirs() -> tuple[Path, Path]:
    """The running environment (a venv) and its base interpreter, bound into the containers."""
    return Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()


def image_name() -> str:
    """The test image for this Python environment (its paths are baked into the image's python)."""
    digest = hashlib.sha256(f"{RECIPE}:{python_dirs()}".encode()).hexdigest()[:12]
    return f"localhost/introdl-test-python:{digest}"


def unusable_reason() -> str | None:
    """Why podman cannot run the docker backend's tests here, or None when it can."""
    if os.geteuid() != 0:
        return "the podman tests run podman as root (rootless podman is not configured here)"
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if missing:
        return f"podman is not installed: apt-get install -y {' '.join(missing)}"
    for path in python_dirs():
        if path == Path("/") or path.is_relative_to("/usr"):
            return f"the test image binds the Python environment into containers; {path} is a system directory"
    return None


def write_config(directory: Path, *, bind_python: bool = True) -> dict[str, str]:
    """Write containers.conf and storage.conf into `directory`; the environment that selects them.

    `bind_python` binds the tests' Python environment into every container (the test image needs
    it; the course image, which has its own, does not).
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = python_dirs() if bind_python else ()
    volumes = ", ".join(f'"{path}:{path}:ro"' for path in paths)
    (directory / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n'
        f"volumes = [{volumes}]\n"
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'tmp_dir = "{PODMAN_ROOT}/run/libpod"\n'
    )
    (directory / "storage.conf").write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{PODMAN_ROOT}/storage"\n'
        f'runroot = "{PODMAN_ROOT}/run/storage"\n'
    )
    return {
        "CONTAINERS_CONF": str(directory / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(directory / "storage.conf"),
    }


def podman(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run the podman CLI under the given configuration."""
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        ["podman", *args], env={**os.environ, **env}, text=True, capture_output=True, **kwargs
    )


def image_exists(env: dict[str, str]) -> bool:
    return podman(env, "image", "exists", image_name()).returncode == 0


def debootstrap(rootfs: Path, packages: tuple[str, ...] | list[str]) -> Path:
    """A minimal Debian bookworm root filesystem with `packages` at `rootfs` (no registry here)."""
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(packages)}",
            "bookworm",
            str(rootfs),
            DEBIAN_MIRROR,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return rootfs


def build_image(env: dict[str, str]) -> str:
    """Debootstrap bookworm, add ``python`` for this environment, and import it as `image_name`."""
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is not installed: apt-get install -y debootstrap")
    venv, _ = python_dirs()
    PODMAN_ROOT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="introdl-rootfs-", dir=PODMAN_ROOT) as tmp:
        rootfs = debootstrap(Path(tmp) / "rootfs", EXTRA_PACKAGES)
        # The sandbox uid must reach the bind-mounted interpreter under /root/.pyenv.
        (rootfs / "root").chmod(0o755)
        # A wrapper, not a symlink: Python finds its venv from the path it was started as.
        python = rootfs / "usr" / "local" / "bin" / "python"
        python.write_text(f'#!/bin/sh\nexec {venv}/bin/python "$@"\n')
        python.chmod(0o755)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = podman(
            env,
            "import",
            "--quiet",
            "--change",
            f"LABEL introdl.test-python={venv}",
            "-",
            image_name(),
            stdin=tar.stdout,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SystemExit(f"podman import failed: {imported.stderr.strip()}")
    return image_name()


def main() -> int:
    reason = unusable_reason()
    if reason is not None:
        print(f"podman-test-image: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="introdl-podman-conf-") as conf:
        env = write_config(Path(conf))
        if image_exists(env) and "--force" not in sys.argv[1:]:
            print(f"{image_name()} is already built (--force rebuilds it)")
            return 0
        started = time.monotonic()
        if image_exists(env):
            podman(env, "rmi", "--force", image_name())
        name = build_image(env)
        print(f"built {name} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
