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
# Files above this size are left out of a hand-in (in kB, nbgrader's unit). The course's exchange
# client names each file it leaves out, and why, in the student's log. 100 MB: the full-size music
# RNN's weights (~50 MB) fit, twice over, inside one upload (c.ExchangeService.max_upload_mb).
c.CourseDirectory.max_file_size = 100_000
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

# --- Deadlines, extensions and the late penalty (introdl/grading/record/late.py, docs/staff.md) -
# Due dates are nbgrader's (`nbgrader db assignment add LAB --duedate=...`); staff grant a student
# more time with `introdl extension LAB STUDENT --until TIME` or the check service's staff page.
# The penalty nbgrader stores (gradebook, export, feedback) comes from this policy: per started
# day after the (extended) due date, capped. 0 per day: nbgrader's own LateSubmissionPlugin rule.
c.AssignLatePenalties.plugin_class = "introdl.grading.record.late.LatePenalty"
c.LatePolicy.percent_per_day = 0  # e.g. 10: a hand-in 1 s to 24 h late loses 10% of its score
c.LatePolicy.max_percent = 50  # the cap, in percent of the score
c.LatePolicy.grace_minutes = 0  # minutes after the due date that still count as on time
# The check service's --state folder: grading reads staff's extensions there (staff.sqlite).
c.LatePolicy.check_state = ""

# --- "Check my work" before the deadline (introdl/checkwork/, docs/check.md) --------------------
# nbgrader ignores this section; the check service reads it.
c.CheckService.checks_per_day = 5  # per student and lab, in any 24 hours
c.CheckService.cooldown_seconds = 60  # between two checks of one lab by one student
c.CheckService.workers = 1  # gradings at once on this 2-core host; the rest wait, round-robin
c.CheckService.warm = 1  # warm sandboxed kernels per worker (each for one check; 0: start cold)

# --- The course exchange's archive limits (introdl/hub/archive.py, docs/hub.md) -------------
# nbgrader ignores this section; the exchange service (given it by `make hub` as limits.json),
# `nbgrader submit` and `nbgrader collect` through the course's exchange client read it. An
# archive past any bound is refused whole, naming the file and the bound.
c.ExchangeService.max_upload_mb = 200  # one packed hand-in; also the web server's body limit
c.ExchangeService.max_unpacked_mb = 500  # its files added up, unpacked
c.ExchangeService.max_ratio = 100  # unpacked / packed, judged past 16 MiB unpacked (bombs)
c.ExchangeService.max_files = 2000  # files and folders in one hand-in
c.ExchangeService.max_depth = 16  # folders deep
c.ExchangeService.max_name_bytes = 255  # one part of a name: what ext4/xfs/btrfs hold
c.ExchangeService.max_path_bytes = 1024  # a whole relative name
c.ExchangeService.quota_mb = 2048  # everything one student has handed in, as stored
c.ExchangeService.submissions_per_hour = 30  # hand-ins of one student, all labs together

# --- Grades to the LMS (introdl lms push|status|csv; docs/lms.md) ----------------------------
# nbgrader ignores this section. The key and client id files: mode 0600, the hub user's own.
# c.LTI.issuer = "https://canvas.instructure.com"
# c.LTI.client_id_file = "/etc/introdl/lti/client_id"
# c.LTI.deployment_id = "..."
# c.LTI.token_url = "https://canvas.example.edu/login/oauth2/token"
# c.LTI.platform_jwks_url = "https://canvas.example.edu/api/lti/security/jwks"
# c.LTI.lineitems_url = "https://canvas.example.edu/api/lti/courses/1234/line_items"
# c.LTI.memberships_url = "https://canvas.example.edu/api/lti/courses/1234/names_and_roles"
# c.LTI.private_key_file = "/etc/introdl/lti/tool.pem"
# c.LTI.state = "/srv/introdl/state"  # folder of lms.sqlite, the push records
