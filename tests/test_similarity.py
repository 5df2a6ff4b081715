"""`introdl similarity`: do disguised copies rank first, and independent work stay low?

Classes are generated from the project's own notebooks (tests/similarity_class.py): the
instructor's answers, the correct variants of tests/fixtures, random code unique per student, and
copies of these with renamed variables, reordered functions and reworded comments.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from introdl.cli import main
from introdl.similarity.command import SimilarityResult, similarity
from tests.similarity_class import (
    CORRECT_VARIANTS,
    build_course,
    disguise,
    random_answers,
    reference_answers,
    release_answers,
    submit,
    variant_answers,
)

ROOT = Path(__file__).resolve().parents[1]
LAB = "lab3_rl"
CHROMIUM = Path("/usr/lib/chromium/chromium")
SCREENSHOTS = ROOT / "build" / "screenshots" / "similarity"
# Measured 2026-12-06: disguised copies 100% (lab3_rl), independent correct solutions 0-9%.
COPY_AT_LEAST = 0.9
INDEPENDENT_BELOW = 0.2


def release_setup_code() -> str:
    """Code cells of the release that are not answers: pasting them into an answer is still template."""
    nb = json.loads((ROOT / "release" / LAB / f"{LAB}.ipynb").read_text())
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "code"
        and not c.get("metadata", {}).get("nbgrader", {}).get("solution")
    )


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab3_rl class: copies planted, independent solutions, template-only and broken notebooks,
    and a folder of public solutions one student copied from."""
    root = build_course(tmp_path_factory.mktemp("similarity") / "course", LAB)
    ref, alt = reference_answers(LAB), variant_answers(LAB)
    submit(root, LAB, "ref", ref)
    submit(root, LAB, "alt", alt)
    submit(root, LAB, "ref_copy", disguise(ref, seed=1))
    submit(root, LAB, "alt_copy", disguise(alt, seed=2))
    for n in range(3):
        submit(root, LAB, f"own{n}", random_answers(LAB, seed=n))
    submit(root, LAB, "eve", {})
    submit(root, LAB, "eve2", {})
    setup = release_setup_code()
    pasted = {gid: code + "\n" + setup for gid, code in release_answers(LAB).items()}
    submit(root, LAB, "paster", pasted)
    submit(root, LAB, "paster2", pasted)
    broken = root / "submitted" / "broken" / LAB / f"{LAB}.ipynb"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')
    public = root.parent / "public-solutions"
    public.mkdir()
    online = random_answers(LAB, seed=99)
    (public / "solution.py").write_text("\n\n".join(online.values()))
    (public / "mirror" / "solution.py").parent.mkdir()
    (public / "mirror" / "solution.py").write_text("\n\n".join(online.values()))
    submit(root, LAB, "web", disguise(online, seed=3))
    return root


@pytest.fixture(scope="module")
def result(course: Path) -> SimilarityResult:
    before = os.environ.get("INTRODL_COURSE_ROOT")
    os.environ["INTRODL_COURSE_ROOT"] = str(course)
    try:
        return similarity(lab=LAB, against=(str(course.parent / "public-solutions"),), top=1000)
    finally:
        if before is None:
            os.environ.pop("INTRODL_COURSE_ROOT")
        else:
            os.environ["INTRODL_COURSE_ROOT"] = before


def test_disguised_copies_rank_at_the_top(result: SimilarityResult) -> None:
    """Do renamed, reordered, recommented copies rank above every honest pair, near 100%?"""
    students = [p for p in result.pairs if p.kind == "students"]
    top = {frozenset((p.a, p.b)) for p in students[:2]}
    assert top == {frozenset(("ref", "ref_copy")), frozenset(("alt", "alt_copy"))}
    assert all(p.score >= COPY_AT_LEAST for p in students[:2]), students[:2]
    assert all(p.score < INDEPENDENT_BELOW for p in students[2:]), students[2:]


@pytest.mark.parametrize("lab", sorted(CORRECT_VARIANTS))
def test_independent_correct_solutions_score_low(tmp_path: Path, lab: str) -> None:
    """Do the instructor's answers and a correct variant, written apart, share little?"""
    root = build_course(tmp_path / "course", lab)
    submit(root, lab, "reference", reference_answers(lab))
    submit(root, lab, "variant", variant_answers(lab))
    submit(root, lab, "copy", disguise(variant_answers(lab), seed=4))
    os.environ["INTRODL_COURSE_ROOT"] = str(root)
    try:
        got = similarity(lab=lab, html=str(tmp_path / "r.html"), csv=str(tmp_path / "r.csv"))
    finally:
        os.environ.pop("INTRODL_COURSE_ROOT")
    scores = {frozenset((p.a, p.b)): p.score for p in got.pairs}
    assert scores.get(frozenset(("reference", "variant")), 0) < INDEPENDENT_BELOW, scores
    assert scores[frozenset(("copy", "variant"))] >= COPY_AT_LEAST, scores


def test_template_only_submissions_score_zero(result: SimilarityResult, course: Path) -> None:
    """Do untouched releases, and answers that only paste the release's own code, match nothing?"""
    names = {"eve", "eve2", "paster", "paster2"}
    assert not [p for p in result.pairs if {p.a, p.b} & names]
    rows = (course / "build" / "similarity" / f"{LAB}.csv").read_text().splitlines()
    assert not [r for r in rows if any(f",{n}," in f",{r}," for n in names)]


def test_copy_of_a_reference_file_is_found_through_against(result: SimilarityResult) -> None:
    """Is the student who copied a public solution matched with it, one way only?"""
    corpus = [p for p in result.pairs if p.kind == "corpus"]
    assert {(p.a, p.b) for p in corpus[:2]} == {
        ("web", "public-solutions/solution.py"),
        ("web", "public-solutions/mirror/solution.py"),
    }
    assert corpus[0].score >= COPY_AT_LEAST
    assert result.corpus_files == 2
    # the two identical corpus files are never a pair: every pair names a student first
    assert not [p for p in result.pairs if p.a.startswith("public-solutions/")]


def test_unreadable_notebook_is_reported_and_skipped(result: SimilarityResult) -> None:
    """Does a broken notebook become a note naming the file, while the class is still compared?"""
    assert len(result.skipped) == 1
    assert f"broken/{LAB}/{LAB}.ipynb is not a readable notebook" in result.skipped[0]
    assert result.submissions == 12


def test_cli_output_is_byte_identical_across_runs(
    course: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Does the same class give the same JSON and CSV, byte for byte, run after run?"""
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))
    outputs = []
    for run in range(2):
        csv_path, html_path = tmp_path / f"{run}.csv", tmp_path / f"{run}.html"
        args = ["similarity", LAB, "--against", str(course.parent / "public-solutions")]
        args += ["--csv", str(tmp_path / "pairs.csv"), "--html", str(tmp_path / "report.html")]
        assert main([*args, "--json"]) == 0
        (tmp_path / "pairs.csv").rename(csv_path)
        (tmp_path / "report.html").rename(html_path)
        outputs.append((capsys.readouterr().out, csv_path.read_bytes(), html_path.read_bytes()))
    assert outputs[0] == outputs[1]
    payload = json.loads(outputs[0][0])
    assert payload["lab"] == LAB
    planted = [{"ref", "ref_copy"}, {"alt", "alt_copy"}, {"web", "public-solutions/solution.py"}]
    planted.append({"web", "public-solutions/mirror/solution.py"})
    assert [{p["a"], p["b"]} in planted for p in payload["pairs"][:4]] == [True] * 4
    assert outputs[0][1].startswith(b"rank,kind,a,b,score,shared,fingerprints_a,fingerprints_b\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["similarity"], "name the lab"),
        (["similarity", "lab9_nothing"], "no source notebook source/lab9_nothing"),
        (["similarity", "lab1_music"], "run `nbgrader collect lab1_music` first"),
        (["similarity", LAB, "--against", "/nonexistent"], "--against /nonexistent: not a folder"),
    ],
)
def test_bad_input_exits_2_with_what_to_do(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    """Does a missing lab, a lab nobody submitted, or a missing corpus folder exit 2 and say why?"""
    course = build_course(tmp_path / "course", LAB)
    build_course(course, "lab1_music")
    submit(course, LAB, "eve", {})
    monkeypatch.setenv("INTRODL_COURSE_ROOT", str(course))
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_report_in_chromium_shows_the_top_pair_highlighted(
    course: Path, result: SimilarityResult
) -> None:
    """Does the report open in a real browser, top pair first, with shared passages marked?"""
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: run scripts/setup-system as root (apt-get install chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    top = result.pairs[0]
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(result.html).as_uri())
            first_row = page.locator("table.rank tr").nth(1).inner_text()
            assert top.a in first_row
            assert top.b in first_row
            assert "100%" in first_row or f"{top.score:.0%}" in first_row
            pair = page.locator("#pair-1")
            sides = pair.locator("div.side")
            assert sides.count() == 2
            for side in (sides.nth(0), sides.nth(1)):
                assert side.locator("mark").count() > 0
            assert pair.locator("span.tpl").count() > 0  # the release's lines, greyed
            assert all(url.startswith("file:") for url in requests), requests  # self-contained
            page.screenshot(path=str(SCREENSHOTS / "report-top.png"))
            pair.screenshot(path=str(SCREENSHOTS / "pair-1.png"))
        finally:
            browser.close()
    assert (SCREENSHOTS / "pair-1.png").stat().st_size > 10_000


def test_corpus_notebooks_with_and_without_answer_cells(tmp_path: Path) -> None:
    """Are a tagged notebook (last term's source) and an untagged one (a public clone) both compared?"""
    root = build_course(tmp_path / "course", LAB)
    submit(root, LAB, "ref_copy", disguise(reference_answers(LAB), seed=5))
    submit(root, LAB, "own", random_answers(LAB, seed=6))
    corpus = tmp_path / "last-term"
    corpus.mkdir()
    (corpus / "source.ipynb").write_bytes((ROOT / "source" / LAB / f"{LAB}.ipynb").read_bytes())
    public = json.loads(submit(root, LAB, "tmp", random_answers(LAB, seed=6)).read_text())
    for cell in public["cells"]:
        cell["metadata"] = {}
    (corpus / "public-clone.ipynb").write_text(json.dumps(public))
    shutil.rmtree(root / "submitted" / "tmp")
    os.environ["INTRODL_COURSE_ROOT"] = str(root)
    try:
        got = similarity(lab=LAB, against=(str(corpus),))
    finally:
        os.environ.pop("INTRODL_COURSE_ROOT")
    best = {(p.a, p.b): p.score for p in got.pairs if p.kind == "corpus"}
    assert best[("ref_copy", "last-term/source.ipynb")] >= COPY_AT_LEAST, best
    assert best[("own", "last-term/public-clone.ipynb")] >= COPY_AT_LEAST, best
    assert best.get(("own", "last-term/source.ipynb"), 0) < INDEPENDENT_BELOW, best


def test_a_huge_answer_is_skipped_with_a_reason(tmp_path: Path) -> None:
    """Does a submission with megabytes of answer code get a note instead of stalling the class?"""
    root = build_course(tmp_path / "course", LAB)
    submit(root, LAB, "huge", {"compute_loss_answer": "x = 1\n" * 200_000})
    submit(root, LAB, "own", random_answers(LAB, seed=7))
    os.environ["INTRODL_COURSE_ROOT"] = str(root)
    try:
        got = similarity(lab=LAB)
    finally:
        os.environ.pop("INTRODL_COURSE_ROOT")
    assert got.submissions == 1
    assert "characters of answer code" in got.skipped[0]
    assert "look at it by hand" in got.skipped[0]


def test_report_of_hostile_code_has_no_markup_and_forbids_script() -> None:
    """Does student code full of markup reach the report as text, under a no-script CSP?"""
    from introdl.similarity.report import render_region, to_html

    code = "x = '</pre><script>alert(1)</script><img src=x onerror=alert(2)>'\n"
    body = render_region(code, frozenset(), [(0, len(code))])
    assert "<script" not in body
    assert "<img" not in body
    assert "&lt;script&gt;" in body
    page = to_html("lab<script>", [], {}, top=5, notes=["<img src=x onerror=alert(3)>"])
    assert "<script" not in page
    assert "<img" not in page
    assert "Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-" in page
