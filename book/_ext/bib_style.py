"""Sphinx extension: one citation style for the whole book, author-year in the text and in the lists.

The text cites author-year ("Kingma and Ba, 2015", via ``bibtex_reference_style: author_year``). By
default the bibliography lists would still label entries with pybtex's alpha labels ("[KB15]"), a second
style beside the first. This registers a pybtex formatting style, ``book``, whose labels are the same
author-year text as the citations and whose entries are sorted by author, year and title; ``_config.yml``
selects it with ``bibtex_default_style: book``.
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path

import latexcodec  # noqa: F401  (registers the "ulatex" codec; a dependency of pybtex)

from pybtex.database import parse_file
from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def plain(latex: str) -> str:
    """BibTeX text as a reader sees it: accents decoded, protective braces dropped ("{tecperson}" -> "tecperson")."""
    text = codecs.decode(latex, "ulatex")
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def _last(person) -> str:
    return plain(" ".join(person.prelast_names + person.last_names))


def author_year(entry) -> str:
    """"Kingma and Ba, 2015", "Goyal et al., 2017", "LeCun et al., 1998"; editors when there is no author."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    year = entry.fields.get("year", "n.d.")
    if not persons:
        names = plain(entry.fields.get("organization") or entry.fields.get("title", "Anonymous"))
    elif len(persons) == 1:
        names = _last(persons[0])
    elif len(persons) == 2:
        names = f"{_last(persons[0])} and {_last(persons[1])}"
    else:
        names = f"{_last(persons[0])} et al."
    return f"{names}, {year}"


_BIB = Path(__file__).resolve().parents[1] / "references.bib"


def _global_suffixes() -> dict[tuple[str, str], str]:
    """(author-year label, title) -> "a"/"b"/... for works whose label collides anywhere in references.bib.

    Labels must be unique across the whole book (every chapter's list and the references page), so the
    suffixes are decided once, on the whole file, ordered by title.
    """
    if not _BIB.exists():
        return {}
    database = parse_file(str(_BIB))
    groups: dict[str, list[str]] = {}
    for entry in database.entries.values():
        groups.setdefault(author_year(entry), []).append(entry.fields.get("title", ""))
    return {(label, title): "abcdefghijklmnopqrstuvwxyz"[i]
            for label, titles in groups.items() if len(titles) > 1
            for i, title in enumerate(sorted(titles))}


class AuthorYearLabelStyle(BaseLabelStyle):
    suffixes = None

    def format_labels(self, sorted_entries):
        if AuthorYearLabelStyle.suffixes is None:
            AuthorYearLabelStyle.suffixes = _global_suffixes()
        for entry in sorted_entries:
            label = author_year(entry)
            yield label + self.suffixes.get((label, entry.fields.get("title", "")), "")


class BookStyle(UnsrtStyle):
    default_label_style = "book_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "book_author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "book", BookStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
