"""Helpers of the debiasing lab (Lab 2 Part 2): batches of the face set, group accuracies, pictures.

`FaceBatches` plays the part of upstream's ``mdl.lab2.TrainingDatasetLoader``: it keeps the
images as stored (uint8) and converts one batch at a time, so the full real set fits in memory.
When the set is the generated one (`introdl.data.generated`), it also knows each face's tone group,
which the lab uses only to *show* what the DB-VAE found, never to train.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from introdl.data.loaders import TrainFaces

Array = np.ndarray[Any, Any]


class FaceBatches:
    """Random training batches, half faces and half non-faces, like the upstream lab's loader."""

    def __init__(self, faces: TrainFaces, *, limit: int | None = None, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        order = self.rng.permutation(len(faces))
        if limit is not None:
            order = np.sort(order[:limit])  # a random subset, kept in file order
        self.raw = faces.rows(order)  # (N, 64, 64, 3) uint8 BGR: only these are read from the file
        self.labels = faces.labels[order]  # (N, 1) float32, 1.0 = face
        self.groups = _groups(faces)
        if self.groups is not None:
            self.groups = self.groups[order]
        self.pos = np.flatnonzero(self.labels[:, 0] == 1.0)  # indices of faces
        self.neg = np.flatnonzero(self.labels[:, 0] != 1.0)

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, indices: Any) -> Array:
        """Images at INDICES as RGB float32 in [0, 1]."""
        return self.raw[np.asarray(indices)][..., ::-1].astype(np.float32) / np.float32(255.0)

    def get_batch(self, n: int, p_pos: Array | None = None) -> tuple[Array, Array]:
        """N images (n//2 faces drawn with probabilities P_POS, n//2 non-faces) and their labels.

        Returns x (n, 64, 64, 3) float32 RGB and y (n, 1) float32.
        """
        faces = self.rng.choice(self.pos, size=n // 2, replace=False, p=p_pos)
        non_faces = self.rng.choice(self.neg, size=n - n // 2, replace=False)
        chosen = np.concatenate([faces, non_faces])
        return self.images(chosen), self.labels[chosen]

    def all_faces(self) -> Array:
        """Every face as RGB float32, in the order of `pos` (what `p_pos` is indexed by)."""
        return self.images(self.pos)

    def face_groups(self) -> Array | None:
        """The tone group name of every face (order of `pos`), or None for the real set."""
        if self.groups is None:
            return None
        names = np.array(["non-face", "light", "dark"])
        return names[self.groups[self.pos]]


def _groups(faces: TrainFaces) -> Array | None:
    import h5py

    with h5py.File(faces.path, "r") as f:
        return f["groups"][:] if "groups" in f else None


def detection_rates(
    predict_logits: Callable[[Array], Any], groups: Mapping[str, Array]
) -> dict[str, float]:
    """For each group, the fraction of images classified correctly (logit > 0 means "face").

    Groups named "non-face" count the images classified as non-faces; all others count faces.
    """
    rates = {}
    for name, images in groups.items():
        logits = np.asarray(predict_logits(np.asarray(images, dtype=np.float32))).reshape(-1)
        said_face = logits > 0
        rates[name] = float(np.mean(~said_face if name == "non-face" else said_face))
    return rates


def _show_photo(fig: Any) -> None:
    """Display a figure of photographs as a JPEG: a tenth of the bytes of a PNG.

    Graded notebooks keep about 100 kB of output per cell; a PNG grid of faces is several times that.
    """
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", dpi=72, pil_kwargs={"quality": 80})
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="jpeg"))


def show_images(
    images: Array, title: str = "", *, ncols: int = 10, labels: Sequence[str] | None = None
) -> None:
    """A grid of RGB images in [0, 1] (at most 4 rows), each with its label above it if given."""
    images = np.clip(np.asarray(images, dtype=np.float32)[: 4 * ncols], 0, 1)
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    grid, cells = _mosaic(images, ncols, gap_above=14 if labels is not None else 4)
    fig, ax = plt.subplots(figsize=(1.3 * ncols, 1.4 * nrows + 0.4))
    ax.imshow(grid)
    ax.axis("off")
    for label, (top, middle) in zip(labels or (), cells, strict=False):
        ax.text(middle, top - 2, label, ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _show_photo(fig)


def _mosaic(images: Array, ncols: int, gap_above: int) -> tuple[Array, list[tuple[float, float]]]:
    """IMAGES (n, h, w, 3) side by side on white, NCOLS a row: one picture, drawn in one axes (a
    grid of axes costs a tenth of a second each to lay out). Returns it and, per image, the row
    of its top edge and the column of its middle."""
    n, h, w = images.shape[:3]
    nrows = max(1, int(np.ceil(n / ncols)))
    gap = 4
    grid = np.ones((gap_above + nrows * (h + gap_above) - gap_above, ncols * (w + gap) - gap, 3))
    cells = []
    for i, image in enumerate(images):
        row, col = divmod(i, ncols)
        top, left = gap_above + row * (h + gap_above), col * (w + gap)
        grid[top : top + h, left : left + w] = image
        cells.append((float(top), left + w / 2))
    return grid, cells


def show_reconstructions(originals: Array, reconstructions: Array, n: int = 8) -> None:
    """Originals (top row) above their reconstructions (bottom row)."""
    pairs = np.concatenate([np.asarray(originals)[:n], np.asarray(reconstructions)[:n]])
    grid, cells = _mosaic(np.clip(pairs.astype(np.float32), 0, 1), n, gap_above=14)
    fig, ax = plt.subplots(figsize=(1.3 * n, 3.0))
    ax.imshow(grid)
    ax.axis("off")
    for (top, _), name in zip((cells[0], cells[n]), ("input", "reconstruction"), strict=True):
        ax.text(0, top - 2, name, ha="left", va="bottom", fontsize=9)
    fig.tight_layout()
    _show_photo(fig)


def plot_group_rates(results: Mapping[str, Mapping[str, float]], title: str) -> None:
    """Bars of `detection_rates` per group, one colour per model ({model: {group: rate}})."""
    models = list(results)
    groups = list(next(iter(results.values())))
    width = 0.8 / len(models)
    x = np.arange(len(groups))
    plt.figure(figsize=(1.6 * len(groups) + 2, 3.5))
    for k, model in enumerate(models):
        rates = [results[model][g] for g in groups]
        bars = plt.bar(x + k * width, rates, width, label=model)
        plt.bar_label(bars, fmt="%.2f", fontsize=8)
    plt.xticks(x + width * (len(models) - 1) / 2, groups)
    plt.ylim(0, 1.1)
    plt.ylabel("correctly classified")
    plt.title(title)
    plt.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    plt.tight_layout()
    plt.show()


def plot_loss(history: Sequence[float], title: str) -> None:
    """A training loss curve (log scale), smoothed by a running mean of 10 steps."""
    values = np.asarray(history, dtype=float)
    smooth = np.convolve(values, np.ones(10) / 10, mode="valid") if len(values) >= 10 else values
    plt.figure(figsize=(6, 3))
    plt.semilogy(values, alpha=0.3, label="per step")
    plt.semilogy(np.arange(len(smooth)) + len(values) - len(smooth), smooth, label="running mean")
    plt.xlabel("training step")
    plt.ylabel("loss")
    plt.title(title)
    plt.legend()
    plt.tight_layout()
    plt.show()
