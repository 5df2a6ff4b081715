"""`introdl similarity LAB`: which submissions share code, ranked, as HTML and CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from introdl.grading.api import BadInput, course_root, resolve_labs
from introdl.similarity.compare import Pair, compare
from introdl.similarity.extract import Document, Template, Unreadable, read_document, read_template
from introdl.similarity.fingerprint import Fingerprints, fingerprint, template_hashes
from introdl.similarity.normalise import vocabulary
from introdl.similarity.report import to_csv, to_html

CORPUS_SUFFIXES = (".ipynb", ".py")


@dataclass(frozen=True)
class SimilarityResult:
    lab: str
    submissions: int
    corpus_files: int
    skipped: tuple[str, ...]  # files that could not be read, with the reason
    pairs_total: int  # pairs sharing at least one fingerprint
    pairs: tuple[Pair, ...]  # the best `top`, best first
    html: str
    csv: str

    def summary(self) -> str:
        lines = [
            f"{self.lab}: {self.submissions} submission(s), {self.corpus_files} reference file(s), "
            f"{self.pairs_total} pair(s) sharing code"
        ]
        lines += [f"skipped: {s}" for s in self.skipped]
        width = max([len(p.a) for p in self.pairs] + [7])
        lines.append(f"{'score':>6}  {'student':<{width}}  with")
        for p in self.pairs:
            corpus = " (reference)" if p.kind == "corpus" else ""
            lines.append(f"{p.score:>6.0%}  {p.a:<{width}}  {p.b}{corpus}")
        lines += [f"report: {self.html}", f"all pairs: {self.csv}"]
        return "\n".join(lines)


def _corpus_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in CORPUS_SUFFIXES
        and p.is_file()
        and not p.is_symlink()
        and ".ipynb_checkpoints" not in p.parts
    )


def _output(path: str, default: Path) -> Path:
    out = Path(path).resolve() if path else default
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(f"cannot create the folder of {out} ({err}); choose another path") from err
    return out


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise BadInput(f"cannot write {path} ({err}); choose another path or free space") from err


def similarity(
    *,
    lab: str = "",
    against: tuple[str, ...] = (),
    html: str = "",
    csv: str = "",
    top: int = 20,
) -> SimilarityResult:
    """Rank pairs of LAB's submissions by shared code in their answers (template excluded)."""
    if not lab:
        raise BadInput("name the lab, e.g. `introdl similarity lab3_rl`")
    root = course_root()
    resolve_labs(root, lab)
    release = root / "release" / lab / f"{lab}.ipynb"
    if not release.is_file():
        raise BadInput(f"no release notebook {release}: run `introdl release {lab}` first")
    try:
        template: Template = read_template(release)
    except Unreadable as err:
        raise BadInput(f"{err}; regenerate it with `introdl release {lab}`") from err
    folders = sorted(p for p in (root / "submitted").glob(f"*/{lab}") if p.is_dir())
    if not folders:
        raise BadInput(
            f"no submissions under {root / 'submitted'}/*/{lab}: run `nbgrader collect {lab}` first"
        )
    corpus_dirs = [Path(d).resolve() for d in against]
    for folder in corpus_dirs:
        if not folder.is_dir():
            raise BadInput(
                f"--against {folder}: not a folder; give a folder of .ipynb or .py files"
            )
        if not _corpus_files(folder):
            raise BadInput(f"--against {folder}: no .ipynb or .py files in it")

    skipped: list[str] = []
    students: list[Document] = []
    for folder in folders:
        try:
            students.append(read_document(folder / f"{lab}.ipynb", folder.parent.name, template))
        except Unreadable as err:
            skipped.append(str(err))
    corpus: list[Document] = []
    for folder in corpus_dirs:
        for path in _corpus_files(folder):
            try:
                corpus.append(
                    read_document(path, f"{folder.name}/{path.relative_to(folder)}", template)
                )
            except Unreadable as err:
                skipped.append(str(err))

    known = vocabulary(template.code)
    boilerplate = template_hashes(template.code, known)
    student_prints = [fingerprint(d, known, boilerplate) for d in students]
    corpus_prints = [fingerprint(d, known, boilerplate) for d in corpus]
    pairs = compare(student_prints, corpus_prints)

    prints: dict[tuple[str, str], Fingerprints] = {
        ("students", f.document.name): f for f in student_prints
    }
    prints.update({("corpus", f.document.name): f for f in corpus_prints})
    reports = root / "build" / "similarity"
    html_path = _output(html, reports / f"{lab}.html")
    csv_path = _output(csv, reports / f"{lab}.csv")
    _write(csv_path, to_csv(pairs))
    notes = [f"Skipped: {s}" for s in skipped]
    _write(html_path, to_html(lab, pairs, prints, top=top, notes=notes))
    return SimilarityResult(
        lab,
        len(students),
        len(corpus),
        tuple(skipped),
        len(pairs),
        tuple(pairs[:top]),
        str(html_path),
        str(csv_path),
    )
