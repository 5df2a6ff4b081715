"""`introdl data list|fetch [NAME|all]`: the data registry from the command line."""

from __future__ import annotations

from dataclasses import dataclass

from introdl import data as registry
from introdl.grading.errors import BadInput


@dataclass(frozen=True)
class DataResult:
    action: str
    rows: tuple[tuple[str, str, str], ...]  # (name, status or path, description)

    def summary(self) -> str:
        width = max((len(r[0]) for r in self.rows), default=4)
        return "\n".join(f"{n:<{width}}  {s}  {d}" for n, s, d in self.rows)


def data(*, action: str = "list", name: str = "all") -> DataResult:
    """List the data sets the labs use, or fetch one (or all that can be had) into the cache."""
    names = list(registry.REGISTRY) if name == "all" else [name]
    unknown = [n for n in names if n not in registry.REGISTRY]
    if unknown:
        raise BadInput(f"no data set named {unknown[0]!r}; known: {', '.join(registry.REGISTRY)}")
    if action == "list":
        rows = tuple(
            (
                n,
                "cached" if registry.is_cached(n) else "not cached",
                registry.REGISTRY[n].description,
            )
            for n in names
        )
        return DataResult(action, rows)
    if action != "fetch":
        raise BadInput(
            f"unknown action {action!r}: use `introdl data list` or `introdl data fetch NAME|all`"
        )
    rows_list: list[tuple[str, str, str]] = []
    for n in names:
        ds = registry.REGISTRY[n]
        if name == "all" and not ds.offline:
            # `fetch all` takes what can be had; a network-only set that fails is reported, not fatal.
            try:
                rows_list.append((n, str(registry.fetch(n)), ds.description))
            except registry.DataUnavailable as err:
                rows_list.append((n, "unavailable: " + str(err).splitlines()[0], ds.description))
            continue
        try:
            rows_list.append((n, str(registry.fetch(n)), ds.description))
        except registry.DataUnavailable as err:
            raise BadInput(str(err)) from err
    return DataResult(action, tuple(rows_list))
