"""Sphinx extension: one citation style for the whole book, author-year in the text and in the lists.

By default the bibliography lists would label entries with pybtex's alpha labels ("[KB15]") beside
author-year citations in the text, two styles. This registers a pybtex formatting style, ``book``
(``bibtex_default_style: book`` in ``_config.yml``), whose labels are author-year text ("Kingma and Ba,
2015", "LeCun et al., 1998b": a letter where one label would name two works; BibTeX's braces and
accents resolved) and whose entries are sorted by author, year and title; and a referencing style,
``book_author_year`` (``bibtex_reference_style``), sphinxcontrib-bibtex's author-year citations whose
year is the list label's ("1998b"), so a citation in the text names the same work as the list.
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path

import latexcodec  # noqa: F401  (registers the "ulatex" codec; a dependency of pybtex)

from dataclasses import dataclass, fields

from pybtex.database import parse_file
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle  # noqa: F401  (registers "author_year_title")
from pybtex.style.template import node
from sphinxcontrib.bibtex.plugin import register_plugin as register_bibtex_plugin
from sphinxcontrib.bibtex.style.referencing import GroupReferenceStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle
from sphinxcontrib.bibtex.style.referencing.basic_author_year import (
    BasicAuthorYearParentheticalReferenceStyle,
    BasicAuthorYearTextualReferenceStyle,
)
from sphinxcontrib.bibtex.style.referencing.extra_year import ExtraYearReferenceStyle
from sphinxcontrib.bibtex.style.template import join, join2, post_text, pre_text, reference


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


_SUFFIXES: dict[tuple[str, str], str] | None = None


def label(entry) -> str:
    """The entry's label on the site, in the text and the lists: "Kingma and Ba, 2015", "LeCun et al., 1998b"."""
    global _SUFFIXES
    if _SUFFIXES is None:
        _SUFFIXES = _global_suffixes()
    base = author_year(entry)
    return base + _SUFFIXES.get((base, entry.fields.get("title", "")), "")


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield label(entry)


class BookStyle(UnsrtStyle):
    default_label_style = "book_author_year"
    default_sorting_style = "author_year_title"


@node
def label_year(children, data):
    """The year as the entry's label in the lists writes it: "1998b" for "LeCun et al., 1998b"."""
    assert not children
    return Text(data["formatted_entry"].label.rsplit(", ", 1)[-1])


# sphinxcontrib-bibtex's author-year templates with the label's year (their code, `year` -> `label_year`)
@dataclass
class _Parenthetical(BasicAuthorYearParentheticalReferenceStyle):
    def inner(self, role_name):
        return join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[
            pre_text,
            reference[join(sep=self.author_year_sep)[
                self.person.author_or_editor_or_title(full="s" in role_name), label_year]],
            post_text,
        ]


@dataclass
class _Textual(BasicAuthorYearTextualReferenceStyle):
    def inner(self, role_name):
        return join(sep=self.text_reference_sep)[
            self.person.author_or_editor_or_title(full="s" in role_name),
            join[self.bracket.left,
                 join2(sep1=self.pre_text_sep, sep2=self.post_text_sep)[pre_text, reference[label_year], post_text],
                 self.bracket.right],
        ]


@dataclass
class _Year(ExtraYearReferenceStyle):
    def inner(self, role_name):
        return reference[label_year]


@dataclass
class BookReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's ``author_year`` citations, with the year of the entry's list label."""

    def __post_init__(self):
        super().__post_init__()
        swap = {BasicAuthorYearParentheticalReferenceStyle: _Parenthetical,
                BasicAuthorYearTextualReferenceStyle: _Textual, ExtraYearReferenceStyle: _Year}
        self.styles = [swap[type(s)](**{f.name: getattr(s, f.name) for f in fields(s)}) if type(s) in swap else s
                       for s in self.styles]
        self.role_style = {}
        GroupReferenceStyle.__post_init__(self)


register_plugin("pybtex.style.labels", "book_author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "book", BookStyle)
register_bibtex_plugin("sphinxcontrib.bibtex.style.referencing", "book_author_year", BookReferenceStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
