"""The course: nbgrader configuration for the introdl labs.

Every nbgrader command run from this directory (and every `introdl` command) reads this file.
"""

from pathlib import Path

from nbgrader.converters import GenerateAssignment

c = get_config()  # noqa: F821  (nbgrader injects get_config)

HERE = Path(__file__).resolve().parent

# --- The course -------------------------------------------------------------------------------
c.CourseDirectory.course_id = "introdl"
c.CourseDirectory.root = str(HERE)
# Gradebook: embedded SQLite by default; a real course may point this at PostgreSQL.
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"
# Files above this size are silently dropped by nbgrader (in kB). Model weights of the full-size
# music RNN are ~50 MB and students may save several checkpoints: allow 1 GB.
c.CourseDirectory.max_file_size = 1_000_000
# Data and checkpoints never travel with a release or a submission.
# results.json stays with the graders (generate_feedback would copy it to students).
c.CourseDirectory.ignore = [
    "results.json",
    "fingerprint.txt",
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    "data",
    "training_checkpoints",
    "tunes",  # the music lab's generated .abc/.mid/.wav files
]

# --- Student stubs ----------------------------------------------------------------------------
c.ClearSolutions.code_stub = {"python": "# TODO: your code here\nraise NotImplementedError"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# --- Releases say where they came from ------------------------------------------------------
c.GenerateAssignment.preprocessors = [
    *GenerateAssignment.class_traits()["preprocessors"].default(),
    "introdl.grading.release_stamp.StampRelease",
]

# --- Executing notebooks (nbgrader autograde / validate) --------------------------------------
# ML cells train models: a generous per-cell budget; the grading engine has its own budgets.
c.Execute.timeout = 1800
c.Execute.interrupt_on_timeout = True
c.Execute.extra_arguments = []
# TensorFlow, absl and Keras write warnings and progress bars to stderr. nbgrader scores a grade
# cell with any stderr output 0, so strip that noise before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = (
    r"(?s)^(.*(WARNING|I0000|E0000|W0000|oneDNN|cuda|TF_ENABLE|tensorflow|absl|keras|"
    r"All log messages before absl|Unable to register|rebuild TensorFlow|computation placer|"
    r"\d+/\d+ \[[=>.]*\]).*)$"
)
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# --- "Check my work" before the deadline (introdl/check/, docs/check.md) --------------------
# nbgrader ignores this section; the check service reads it.
c.CheckService.checks_per_day = 5  # per student and lab, in any 24 hours
c.CheckService.cooldown_seconds = 60  # between two checks of one lab by one student
c.CheckService.workers = 1  # gradings at once on this 2-core host; the rest wait, round-robin
c.CheckService.warm = 1  # warm sandboxed kernels per worker (each for one check; 0: start cold)
