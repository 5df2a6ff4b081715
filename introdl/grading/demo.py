"""`introdl demo` (make demo): the main job, a demo course run end to end on embedded defaults."""

from __future__ import annotations

from dataclasses import dataclass

import introdl.data as registry
from introdl.grading.paths import course_root, labs_with_source
from introdl.grading.release import generate
from introdl.grading.validate import validate_source


@dataclass(frozen=True)
class DemoResult:
    data: tuple[str, ...]
    releases: tuple[str, ...]
    validated: tuple[str, ...]

    def summary(self) -> str:
        lines = ["introdl demo: done", f"  offline data cached: {', '.join(self.data)}"]
        lines += [f"  release regenerated: {r}" for r in self.releases]
        lines += [f"  source validated:    {v}" for v in self.validated]
        return "\n".join(lines)


def demo(*, workdir: str = "") -> DemoResult:
    """Fetch the offline data, regenerate every release, validate every source notebook."""
    root = course_root()
    fetched = tuple(n for n, ds in registry.REGISTRY.items() if ds.offline and registry.fetch(n))
    labs = labs_with_source(root)
    releases: list[str] = []
    validated: list[str] = []
    for lab in labs:
        releases += [str(p.relative_to(root)) for p in generate(root, lab)]
        validated.append(validate_source(root, lab))
    return DemoResult(data=fetched, releases=tuple(releases), validated=tuple(validated))
