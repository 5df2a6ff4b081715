"""`introdl grade LAB`: grade a class's collected submissions into the gradebook."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from introdl.grading.batch import default_workers, grade_class
from introdl.grading.course import course_root, resolve_labs
from introdl.grading.errors import BadInput, DiskFull, disk_full_errno
from introdl.grading.grade import GradeOptions
from introdl.grading.kernel.launch import sweep_stale
from introdl.grading.progress import Progress
from introdl.grading.record.row import Row
from introdl.grading.sandbox import ALL_GPUS, BACKENDS
from introdl.grading.submission import find_submissions, undated

NOT_SANDBOXED = (
    "WARNING: --backend none: student code ran WITHOUT a sandbox, as the grader's own user."
)
NO_WORKDIR_QUOTA = "note: the working copy had no total size quota (it needs a root grader: introdl/grading/sandbox/working_copy.py)"


def check_backend(
    backend: str | None, *, image: str | None = None, gpus: str | None = None
) -> None:
    """A known backend, and one that can take --image and --gpus when they are given."""
    if backend and backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    docker_flags(backend, image, gpus)  # refused before anything is said or started
    if backend == "none":
        print(NOT_SANDBOXED, file=sys.stderr)


GPU_COUNT = re.compile(r"[1-9][0-9]*")  # --gpus N: no sign, no spaces, no leading zeros


def docker_flags(
    backend: str | None, image: str | None, gpus: str | None
) -> tuple[str | None, int | None]:
    """--image and --gpus, the docker backend's: (the backend, the GPU count for GradeOptions).

    ``--gpus all`` is ALL_GPUS (-1), ``--gpus N`` N; either flag without --backend picks docker,
    and with another backend is refused: bwrap runs this machine's own Python, no image, no GPUs.
    """
    given = [flag for flag, value in (("--image", image), ("--gpus", gpus)) if value is not None]
    if not given:
        return backend, None
    if backend not in (None, "docker"):
        raise BadInput(
            f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for the docker backend "
            f"only: --backend {backend} runs the kernel on this machine's own Python, with no "
            f"container image and no GPU requests. Use --backend docker, or leave out "
            f"{' and '.join(given)}"
        )
    if image is not None and not image.strip():
        raise BadInput("--image needs an image name, e.g. --image introdl/course:gpu")
    count = None
    if gpus is not None:
        if gpus == "all":
            count = ALL_GPUS
        elif GPU_COUNT.fullmatch(gpus):
            count = int(gpus)
        else:
            raise BadInput(
                f"--gpus {gpus!r}: give `all` (every GPU of the host) or how many GPUs each "
                "kernel's container gets (1 or more); leave --gpus out for none"
            )
    return "docker", count


@dataclass(frozen=True)
class ClassResult:
    lab: str
    backend: str
    rows: tuple[Row, ...]
    feedback: tuple[str, ...] = ()
    export: str = ""
    swept: tuple[str, ...] = ()  # what a stopped grader had left in /tmp, removed first
    image: str | None = None  # --image, as given
    gpus: str | None = None  # --gpus, as given

    def summary(self) -> str:
        width = max([len(r.student) for r in self.rows] + [7])
        asked = [f"image {self.image}"] if self.image else []
        asked += [f"--gpus {self.gpus}"] if self.gpus else []
        sandbox = f"{self.backend} ({', '.join(asked)})" if asked else self.backend
        lines = [f"{self.lab}: {len(self.rows)} submission(s), sandbox: {sandbox}"]
        if self.swept:
            lines.append(f"removed {len(self.swept)} leftover(s) of a stopped grader first")
        if self.backend == "none":
            lines.append(NOT_SANDBOXED)
        lines.append(f"{'student':<{width}}  {'score':>11}  status     note")
        for r in self.rows:
            score = f"{r.score:g} / {r.max_score:g}"
            lines.append(f"{r.student:<{width}}  {score:>11}  {r.status:<9}  {r.message[:100]}")
        lines += [f"feedback: {f}" for f in self.feedback]
        if self.export:
            lines.append(f"grades exported to {self.export}")
        return "\n".join(lines)


def grade(
    *,
    lab: str | None = None,
    student: tuple[str, ...] = (),
    backend: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    seed: int | None = None,
    force: bool = False,
    feedback: bool = False,
    export: str | None = None,
    warm: int | None = None,
    no_warm: bool = False,
    image: str | None = None,
    gpus: str | None = None,
) -> ClassResult:
    """Grade what `nbgrader collect` put under submitted/ for LAB, sandboxed, into the gradebook.

    Progress goes to standard output as it happens (a live bar on a terminal, one line per
    submission elsewhere). Ctrl-C stops cleanly and keeps what landed: run the same command again.
    --image and --gpus are the docker backend's (on a Dask cluster, each worker's own engine).
    """
    if not lab:
        raise BadInput("name the lab to grade, e.g. `introdl grade lab1_tensorflow`")
    check_backend(backend, image=image, gpus=gpus)
    backend, gpu_count = docker_flags(backend, image, gpus)
    root = course_root()
    resolve_labs(root, lab)
    subs = find_submissions(root, lab, student)
    if not subs:
        raise BadInput(
            f"no submissions under {root / 'submitted'}/*/{lab}: run `nbgrader collect {lab}` first"
        )
    # A submission without its time stamp would be graded as on time: refused, in words.
    refused = {
        s.student: Row(s.student, 0.0, 0.0, "error", why) for s in subs if (why := undated(s))
    }
    for row in refused.values():
        print(f"{row.student}: {row.message}", file=sys.stderr)
    order = [s.student for s in subs]
    subs = [s for s in subs if s.student not in refused]
    workers = workers or default_workers()
    warm = 0 if no_warm else warm_size(warm)
    where = f"the Dask cluster at {scheduler}" if scheduler else f"{workers} worker(s)"
    progress = Progress(lab, len(subs), where, stream=sys.stdout)  # at once: a TA sees it start
    try:
        # A grader killed mid-batch (SIGKILL, a reboot of the worker) leaves working copies (tmpfs
        # mounts: memory), sandbox state and cgroups; clear those before starting a new batch.
        swept = tuple(sweep_stale())
        options = GradeOptions(backend=backend, seed=seed, image=image, gpus=gpu_count)
        rows = grade_class(
            root,
            subs,
            options,
            workers=workers,
            scheduler=scheduler,
            force=force,
            progress=progress,
            warm=warm,
        )
    finally:
        progress.close()
    graded = {row.student: row for row in rows}
    rows = [graded.get(student) or refused[student] for student in order]
    from introdl.grading.record.gradebook import export_grades, generate_feedback

    made: list[str] = []
    try:
        if feedback:
            for row in rows:
                if row.status != "error":
                    made.append(str(generate_feedback(root, lab, row.student).relative_to(root)))
        csv = str(export_grades(root, Path(export))) if export else ""
    except Exception as err:
        if disk_full_errno(err):
            raise DiskFull(
                f"no space left on the device writing feedback or the export ({err}); the grades "
                f"are in the gradebook. Free space (`df -h {root}`) and run the same command again "
                "(graded submissions are not regraded)."
            ) from err
        raise
    hand_back(root, extra=(Path(csv),) if csv else ())
    return ClassResult(
        lab, options.backend_name(), tuple(rows), tuple(made), csv, swept, image, gpus
    )


DEFAULT_WARM = 1  # kernels warming per worker while it grades (BENCHMARKS.md: warm sandboxes)


def warm_size(warm: int | None) -> int:
    """--warm N, else $INTRODL_WARM, else DEFAULT_WARM; 0 turns warm sandboxes off."""
    if warm is None:
        text = os.environ.get("INTRODL_WARM", "").strip()
        if not text:
            return DEFAULT_WARM
        try:
            warm = int(text)
        except ValueError:
            raise BadInput(
                f"INTRODL_WARM={text!r} is not a number: set it to how many warm kernels each "
                "worker keeps (0 = none), or unset it"
            ) from None
    if warm < 0:
        raise BadInput(f"--warm {warm}: give 0 (no warm kernels) or more")
    return warm


# What grading writes in the course directory.
WRITTEN = ("autograded", "feedback", "gradebook.db", "submitted")


def hand_back(root: Path, extra: tuple[Path, ...] = ()) -> None:
    """A root grader leaves the course to its owner (the instructor of `make hub`, whose
    formgrader and `nbgrader release_feedback` must go on writing the gradebook and reading
    feedback), EXTRA files too when they are inside the course (an --export CSV). Nothing to do
    when the grader is the owner."""
    owner = root.stat()
    if os.geteuid() != 0 or owner.st_uid == 0:
        return
    for path in extra:
        inside = path.resolve()
        if inside.is_relative_to(root.resolve()) and inside.is_file() and not path.is_symlink():
            os.chown(inside, owner.st_uid, owner.st_gid)
    for name in WRITTEN:
        top = root / name
        if not top.exists():
            continue
        for path in (top, *top.rglob("*")):
            if not path.is_symlink():
                os.chown(path, owner.st_uid, owner.st_gid)
