"""The engine's face for the services and commands above it (issue 26).

The check-my-work service (introdl/checkwork), the staff loop (introdl/staff), grade passback
(introdl/lms), the similarity report and the `introdl` command use the engine through this module
only (tests/test_imports.py keeps them to it), as lab authors use `introdl.grading.authoring`. What
is here is what they may rely on; the rest of introdl/grading/ may change without notice.

Names are loaded when first used (PEP 562): the engine's parts cost from 0.03 s (the course's
paths) to over 1 s (nbgrader's gradebook) to import, and a command that needs one should not pay
for the others. Type checkers see the imports below as ordinary ones.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from introdl.grading.batch import (
        Row as Row,
    )
    from introdl.grading.batch import (
        grade_class as grade_class,
    )
    from introdl.grading.batch import (
        land as land,
    )
    from introdl.grading.cluster.bundles import (
        Bundle as Bundle,
    )
    from introdl.grading.cluster.dask_run import (
        BundlePlugin as BundlePlugin,
    )
    from introdl.grading.cluster.dask_run import (
        grade_on_worker as grade_on_worker,
    )
    from introdl.grading.cluster.dask_run import (
        plugin_name as plugin_name,
    )
    from introdl.grading.cluster.same_code import (
        mismatch as mismatch,
    )
    from introdl.grading.cluster.same_code import (
        own_fingerprint as own_fingerprint,
    )
    from introdl.grading.cluster.same_code import (
        worker_code as worker_code,
    )
    from introdl.grading.cluster.shipping import (
        data_bundle as data_bundle,
    )
    from introdl.grading.cluster.shipping import (
        lab_bundle as lab_bundle,
    )
    from introdl.grading.cluster.shipping import (
        ship_notebook as ship_notebook,
    )
    from introdl.grading.cluster.shipping import (
        tree as tree,
    )
    from introdl.grading.cluster.warm import (
        TOPIC as TOPIC,
    )
    from introdl.grading.cluster.warm import (
        GradingStopped as GradingStopped,
    )
    from introdl.grading.cluster.warm import (
        WarmKernels as WarmKernels,
    )
    from introdl.grading.cluster.warm import (
        stop_task as stop_task,
    )
    from introdl.grading.course import (
        course_config as course_config,
    )
    from introdl.grading.course import (
        course_root as course_root,
    )
    from introdl.grading.course import (
        labs_with_source as labs_with_source,
    )
    from introdl.grading.course import (
        nbgrader as nbgrader,
    )
    from introdl.grading.course import (
        resolve_labs as resolve_labs,
    )
    from introdl.grading.course import (
        validate_source as validate_source,
    )
    from introdl.grading.errors import (
        BadInput as BadInput,
    )
    from introdl.grading.errors import (
        Stopped as Stopped,
    )
    from introdl.grading.grade import (
        Graded as Graded,
    )
    from introdl.grading.grade import (
        GradeOptions as GradeOptions,
    )
    from introdl.grading.grade import (
        grade_submission as grade_submission,
    )
    from introdl.grading.grade import (
        warm_pool as warm_pool,
    )
    from introdl.grading.kernel.cpu import (
        AGAIN as AGAIN,
    )
    from introdl.grading.kernel.launch import (
        sweep_stale as sweep_stale,
    )
    from introdl.grading.pool import (
        KernelPool as KernelPool,
    )
    from introdl.grading.pool import (
        PoolTimeout as PoolTimeout,
    )
    from introdl.grading.record.gradebook import (
        course_directory as course_directory,
    )
    from introdl.grading.record.gradebook import (
        export_grades as export_grades,
    )
    from introdl.grading.record.gradebook import (
        generate_feedback as generate_feedback,
    )
    from introdl.grading.record.gradebook import (
        open_gradebook as open_gradebook,
    )
    from introdl.grading.record.late import (
        Policy as Policy,
    )
    from introdl.grading.record.late import (
        course_policy as course_policy,
    )
    from introdl.grading.record.late import (
        parse_until as parse_until,
    )
    from introdl.grading.record.late import (
        recompute_penalties as recompute_penalties,
    )
    from introdl.grading.record.late import (
        set_extension as set_extension,
    )
    from introdl.grading.record.live import (
        Listener as Listener,
    )
    from introdl.grading.record.owner import (
        give_back as give_back,
    )
    from introdl.grading.record.results import (
        Results as Results,
    )
    from introdl.grading.record.results import (
        TestResult as TestResult,
    )
    from introdl.grading.record.results import (
        results_path as results_path,
    )
    from introdl.grading.sandbox.docker import (
        DEFAULT_IMAGE as DEFAULT_IMAGE,
    )
    from introdl.grading.sandbox.limits import (
        DEFAULT_LIMITS as DEFAULT_LIMITS,
    )
    from introdl.grading.sandbox.limits import (
        lab_limits as lab_limits,
    )
    from introdl.grading.sandbox.public_data import (
        lab_datasets as lab_datasets,
    )
    from introdl.grading.submission import (
        find_submissions as find_submissions,
    )
    from introdl.grading.submission import (
        grade_id as grade_id,
    )
    from introdl.grading.submission import (
        submission_at as submission_at,
    )

# name -> the engine module that defines it
WHERE: dict[str, str] = {
    "Row": "introdl.grading.batch",
    "grade_class": "introdl.grading.batch",
    "land": "introdl.grading.batch",
    "course_config": "introdl.grading.course",
    "course_root": "introdl.grading.course",
    "labs_with_source": "introdl.grading.course",
    "nbgrader": "introdl.grading.course",
    "resolve_labs": "introdl.grading.course",
    "validate_source": "introdl.grading.course",
    "BadInput": "introdl.grading.errors",
    "Stopped": "introdl.grading.errors",
    "GradeOptions": "introdl.grading.grade",
    "Graded": "introdl.grading.grade",
    "grade_submission": "introdl.grading.grade",
    "warm_pool": "introdl.grading.grade",
    "AGAIN": "introdl.grading.kernel.cpu",
    "sweep_stale": "introdl.grading.kernel.launch",
    "KernelPool": "introdl.grading.pool",
    "PoolTimeout": "introdl.grading.pool",
    "course_directory": "introdl.grading.record.gradebook",
    "export_grades": "introdl.grading.record.gradebook",
    "generate_feedback": "introdl.grading.record.gradebook",
    "open_gradebook": "introdl.grading.record.gradebook",
    "Policy": "introdl.grading.record.late",
    "course_policy": "introdl.grading.record.late",
    "parse_until": "introdl.grading.record.late",
    "recompute_penalties": "introdl.grading.record.late",
    "set_extension": "introdl.grading.record.late",
    "Listener": "introdl.grading.record.live",
    "give_back": "introdl.grading.record.owner",
    "Results": "introdl.grading.record.results",
    "TestResult": "introdl.grading.record.results",
    "results_path": "introdl.grading.record.results",
    "DEFAULT_IMAGE": "introdl.grading.sandbox.docker",
    "DEFAULT_LIMITS": "introdl.grading.sandbox.limits",
    "lab_limits": "introdl.grading.sandbox.limits",
    "find_submissions": "introdl.grading.submission",
    "grade_id": "introdl.grading.submission",
    "submission_at": "introdl.grading.submission",
    "Bundle": "introdl.grading.cluster.bundles",
    "BundlePlugin": "introdl.grading.cluster.dask_run",
    "grade_on_worker": "introdl.grading.cluster.dask_run",
    "plugin_name": "introdl.grading.cluster.dask_run",
    "mismatch": "introdl.grading.cluster.same_code",
    "own_fingerprint": "introdl.grading.cluster.same_code",
    "worker_code": "introdl.grading.cluster.same_code",
    "data_bundle": "introdl.grading.cluster.shipping",
    "lab_bundle": "introdl.grading.cluster.shipping",
    "lab_datasets": "introdl.grading.sandbox.public_data",
    "ship_notebook": "introdl.grading.cluster.shipping",
    "tree": "introdl.grading.cluster.shipping",
    "TOPIC": "introdl.grading.cluster.warm",
    "GradingStopped": "introdl.grading.cluster.warm",
    "WarmKernels": "introdl.grading.cluster.warm",
    "stop_task": "introdl.grading.cluster.warm",
}
__all__ = sorted(WHERE)


def __getattr__(name: str) -> Any:
    where = WHERE.get(name)
    if where is None:
        raise AttributeError(f"introdl.grading.api has no {name!r}: the engine's face is WHERE")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # the next lookup is a plain one
    return value
