"""Collecting a cell's outputs from the kernel's iopub messages, within byte caps.

The kernel decides what it prints, so everything kept is capped: per cell and per notebook.
Past a cap, stream text is cut with a note, rich outputs are replaced by a note, and later
outputs are only counted. Outputs are nbformat v4 output dicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

NOTE = "\n[output truncated by the grader: {reason}]\n"


@dataclass
class OutputBudget:
    """Bytes of output still allowed for the whole notebook."""

    remaining: int
    truncated_cells: int = 0


@dataclass
class OutputCollector:
    """The outputs of one execution, built from iopub messages and capped."""

    cell_bytes: int
    budget: OutputBudget
    outputs: list[dict[str, Any]] = field(default_factory=list)
    used: int = 0
    dropped_bytes: int = 0
    truncated: bool = False
    _clear_on_next: bool = False

    def handle(self, msg_type: str, content: dict[str, Any]) -> None:
        """Fold one iopub message (already known to belong to this execution) into the outputs."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_on_next = True
            else:
                self._clear()
            return
        if msg_type not in ("stream", "display_data", "execute_result", "error"):
            return
        if self._clear_on_next:
            self._clear()
        try:
            output = _to_output(msg_type, content)
        except (TypeError, ValueError, AttributeError):
            return  # a malformed message (the kernel can forge them): nothing worth keeping
        if output is not None:
            self._add(output)

    def _clear(self) -> None:
        self._clear_on_next = False
        # cleared bytes are given back: a progress bar redrawn 10,000 times is not huge output
        self.budget.remaining += self.used
        self.used = 0
        self.outputs.clear()

    def _room(self) -> int:
        return max(0, min(self.cell_bytes - self.used, self.budget.remaining))

    def _spend(self, size: int) -> None:
        self.used += size
        self.budget.remaining -= size

    def _mark_truncated(self, reason: str) -> None:
        if not self.truncated:
            self.truncated = True
            self.budget.truncated_cells += 1
            self.outputs.append(
                {"output_type": "stream", "name": "stderr", "text": NOTE.format(reason=reason)}
            )

    def lost(self, reason: str) -> None:
        """Outputs were lost on the way (not dropped by a cap): say so in the outputs."""
        self._mark_truncated(reason)

    def _reason(self) -> str:
        if self.budget.remaining <= self.cell_bytes - self.used:
            return "this notebook's output limit was reached"
        return f"more than {self.cell_bytes} bytes of output in one cell"

    def _add(self, output: dict[str, Any]) -> None:
        if self.truncated:
            self.dropped_bytes += _size(output)
            return
        room = self._room()
        if output["output_type"] == "stream":
            text: str = output["text"]
            size = len(text.encode("utf-8", "replace"))
            if size > room:
                output["text"] = text.encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
                self.dropped_bytes += size - room
                self._append_stream(output)
                self._spend(room)
                self._mark_truncated(self._reason())
                return
            self._append_stream(output)
            self._spend(size)
            return
        size = _size(output)
        if size > room:
            self.dropped_bytes += size
            self._mark_truncated(self._reason())
            return
        self.outputs.append(output)
        self._spend(size)

    def _append_stream(self, output: dict[str, Any]) -> None:
        # consecutive writes to one stream become one output, as in a saved notebook
        last = self.outputs[-1] if self.outputs else None
        if last is not None and last["output_type"] == "stream" and last["name"] == output["name"]:
            last["text"] += output["text"]
        elif output["text"]:
            self.outputs.append(output)


def _size(output: dict[str, Any]) -> int:
    return len(json.dumps(output, default=str))


def _to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    if msg_type == "stream":
        return {
            "output_type": "stream",
            "name": str(content.get("name", "stdout")),
            "text": str(content.get("text", "")),
        }
    if msg_type in ("display_data", "execute_result"):
        output: dict[str, Any] = {
            "output_type": msg_type,
            "data": dict(content.get("data", {})),
            "metadata": dict(content.get("metadata", {})),
        }
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", "")),
            "traceback": [str(line) for line in content.get("traceback", [])],
        }
    return None
