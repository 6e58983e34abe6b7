"""Chapters cite their article and papers the way a reader can find them (issue 19).

No notebook names the project's internal copies of the articles (``seeds/000_<hash>.txt``),
which mean nothing to a reader; every chapter cites its article by its title and its main
paper by its arXiv id, in a markdown cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FOUND = sorted(NOTEBOOKS.glob("*.ipynb"))

#: An internal file name: the folder, or the stored name itself (three digits, a hash).
INTERNAL_NAME = re.compile(r"seeds/|\b\d{3}_[0-9a-f]{8,}\.txt\b")

#: chapter prefix -> (words of the article's title as its text gives it, arXiv ids of the
#: papers the chapter is about). Chapter 05's article carries no title: its first sentence.
CHAPTERS = {
    "01_": ("Grad-CAM et convolution dilatée", ("1511.07122", "1705.09914")),
    "02_": ("Guided Grad-CAM", ("1610.02391", "1412.6806")),
    "03_": ("使用Python进行Grad-CAM ++:深度卷积网络的改进视觉解释", ("1710.11063",)),
    "04_": ("使用 Grad-CAM 視覺化卷積神經網路分類的關注位置", ("1610.02391",)),
    "05_": ("Bei der Bilderkennung ist es wichtig zu visualisieren", ("1706.03825",)),
}


def internal_names(path: Path) -> list[str]:
    """Internal seed file names anywhere in the notebook's file (any cell, outputs, metadata)."""
    return INTERNAL_NAME.findall(path.read_text(encoding="utf-8"))


def markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def arxiv_ids(text: str) -> set[str]:
    """Ids cited as ``arXiv:NNNN.NNNNN`` or as an arxiv.org/abs link."""
    return set(re.findall(r"(?:arXiv:\s?|arxiv\.org/abs/)(\d{4}\.\d{4,5})", text, re.IGNORECASE))


def test_every_chapter_is_checked():
    names = [p.name for p in FOUND]
    for prefix in CHAPTERS:
        assert sum(n.startswith(prefix) for n in names) == 1, (prefix, names)


@pytest.mark.parametrize("path", FOUND, ids=[p.name for p in FOUND])
def test_no_internal_file_names(path):
    assert internal_names(path) == [], f"{path.name} cites internal file names"


@pytest.mark.parametrize("prefix", sorted(CHAPTERS))
def test_chapter_cites_its_article_and_main_papers(prefix):
    path = next(p for p in FOUND if p.name.startswith(prefix))
    title, papers = CHAPTERS[prefix]
    text = markdown(path)
    assert title in text, f"{path.name}: the article's title {title!r} is not cited"
    missing = set(papers) - arxiv_ids(text)
    assert not missing, f"{path.name}: no arXiv id for {sorted(missing)}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """A notebook that cites a seed file and no arXiv id fails both checks."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "Source: `seeds/001_b7fb9dc5ef874dad.txt`, Selvaraju et al., arXiv 1610.02391"
        ),
        nbformat.v4.new_code_cell("open('002_c55c38c208673046.txt')"),
    ]
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, bad)
    assert internal_names(bad) == ["seeds/", "001_b7fb9dc5ef874dad.txt", "002_c55c38c208673046.txt"]
    assert arxiv_ids(markdown(bad)) == set()  # "arXiv 1610.02391" is not an id a reader can click
    assert arxiv_ids("[arXiv:1610.02391](https://arxiv.org/abs/1610.02391), arxiv.org/abs/1412.6806") == {
        "1610.02391",
        "1412.6806",
    }
