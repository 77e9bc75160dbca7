"""Identity-term lists for bias evaluation: the file format, its reader and counterfactual swaps.

A terms file is UTF-8 text, tab-separated, ``#`` starts a comment line and
blank lines are ignored. It has up to three kinds of sections::

    [gender]<TAB>male<TAB>female        a group: its name, then its categories
    he<TAB>she                          one row per term, one column per category;
    his<TAB>her                         a swap maps a word to the word of the same row
    him<TAB>her                         ("her" -> "his": the first row listing it wins)

    [keep]                              words never swapped, one per line; they shield
    其他                                the listed words inside them (其他 "other" keeps 他)

    [templates]                         MLM probes: group, a word of the row to score,
    gender<TAB>he<TAB>[MASK] is good at math.    and a template with one [MASK]

Words with Latin letters match as whole words, case-insensitively, and the
replacement copies the case of the match (``He`` -> ``She``, ``HIS`` ->
``HER``); words in CJK scripts match as substrings, longest first. The
shipped lists are ``bias_terms_en.tsv`` and ``bias_terms_zh.tsv`` in
``tfptlm/resources`` (``en`` and ``zh`` for short).

Example:

>>> terms = load_terms("en")
>>> gender = terms.group("gender")
>>> category_variants("He said his film was good.", gender)
{'male': 'He said his film was good.', 'female': 'She said her film was good.'}
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

#: The shipped terms files, by short name.
SHIPPED_TERMS = {"en": "bias_terms_en.tsv", "zh": "bias_terms_zh.tsv"}
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
MASK = "[MASK]"


@dataclass(frozen=True)
class TermGroup:
    """One group: its categories and aligned rows of terms (one term per category)."""

    name: str
    categories: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Template:
    """An MLM probe: ``row`` of ``group`` is scored at the ``[MASK]`` of ``text``."""

    group: str
    row: int
    text: str


@dataclass(frozen=True)
class IdentityTerms:
    """The contents of one terms file."""

    source: str
    groups: tuple[TermGroup, ...]
    keep: tuple[str, ...] = ()
    templates: tuple[Template, ...] = ()

    def group(self, name: str) -> TermGroup:
        """The group called ``name``."""
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"{self.source} has no group {name!r}")


def resolve_terms_path(name_or_path: str | Path) -> Path:
    """``en``/``zh`` -> the shipped file; anything else is a path that must exist."""
    if str(name_or_path) in SHIPPED_TERMS:
        return RESOURCES / SHIPPED_TERMS[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"terms file not found: {path} (give a path, or one of the shipped lists: {', '.join(SHIPPED_TERMS)})"
        )
    return path


def load_terms(name_or_path: str | Path) -> IdentityTerms:
    """Reads a terms file (format in the module docstring); errors name the file and line."""
    path = resolve_terms_path(name_or_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    groups: list[tuple[str, tuple[str, ...], list[tuple[str, ...]]]] = []
    keep: list[str] = []
    raw_templates: list[tuple[int, list[str]]] = []
    section = None
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split("\t")]
        if cells[0].startswith("["):
            section = _section_header(cells, where)
            if section not in ("keep", "templates"):
                if any(name == section for name, _, _ in groups):
                    raise ValueError(f"{where}: group [{section}] is defined twice")
                groups.append((section, tuple(cells[1:]), []))
            continue
        if section is None:
            raise ValueError(f"{where}: a term line before any [group] header")
        if section == "keep":
            keep.extend(cell for cell in cells if cell)
        elif section == "templates":
            raw_templates.append((number, cells))
        else:
            name, categories, rows = groups[-1]
            if len(cells) != len(categories) or not all(cells):
                raise ValueError(
                    f"{where}: group [{name}] has {len(categories)} categories "
                    f"({', '.join(categories)}); this line has {len(cells)} tab-separated term(s)"
                    + ("" if all(cells) else ", some empty")
                )
            rows.append(tuple(cells))
    built = tuple(_checked_group(name, categories, rows, path) for name, categories, rows in groups)
    if not built:
        raise ValueError(f"{path}: no [group] section with terms")
    terms = IdentityTerms(str(path), built, tuple(keep))
    templates = tuple(_template(terms, cells, f"{path}:{number}") for number, cells in raw_templates)
    return dataclasses.replace(terms, templates=templates)


def _section_header(cells: list[str], where: str) -> str:
    name = cells[0]
    if not (name.endswith("]") and len(name) > 2):
        raise ValueError(f"{where}: a section header looks like [name], got {name!r}")
    section = name[1:-1].strip()
    categories = [cell for cell in cells[1:] if cell]
    if section in ("keep", "templates"):
        if categories:
            raise ValueError(f"{where}: [{section}] takes no categories")
    elif len(categories) < 2 or len(categories) != len(cells) - 1:
        raise ValueError(f"{where}: group [{section}] needs at least 2 categories after it, tab-separated")
    elif len(set(categories)) != len(categories):
        raise ValueError(f"{where}: group [{section}] repeats a category")
    return section


def _checked_group(name: str, categories: tuple, rows: list, path: Path) -> TermGroup:
    if not rows:
        raise ValueError(f"{path}: group [{name}] has no terms")
    owner: dict[str, str] = {}
    for row in rows:
        for category, term in zip(categories, row):
            previous = owner.setdefault(term.lower(), category)
            if previous != category:
                raise ValueError(
                    f"{path}: in group [{name}], {term!r} is listed under both {previous} and {category}"
                )
    return TermGroup(name, categories, tuple(rows))


def _template(terms: IdentityTerms, cells: list[str], where: str) -> Template:
    if len(cells) != 3:
        raise ValueError(f"{where}: a template line is group<TAB>term<TAB>template, got {len(cells)} field(s)")
    group_name, anchor, text = cells
    try:
        group = terms.group(group_name)
    except KeyError:
        raise ValueError(f"{where}: no group [{group_name}] for this template") from None
    rows = [i for i, row in enumerate(group.rows) if anchor.lower() in (t.lower() for t in row)]
    if not rows:
        raise ValueError(f"{where}: {anchor!r} is not a term of group [{group_name}]")
    if text.count(MASK) != 1:
        raise ValueError(f"{where}: a template needs exactly one {MASK}, found {text.count(MASK)}")
    return Template(group_name, rows[0], text)


def _is_cjk(term: str) -> bool:
    return any(unicodedata.name(ch, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) for ch in term)


class _Swapper:
    """The compiled matcher of one group (plus the keep words)."""

    def __init__(self, group: TermGroup, keep: tuple[str, ...]):
        self.index: dict[str, tuple[int, int]] = {}  # lowercased term -> (category, row)
        for r, row in enumerate(group.rows):
            for c, term in enumerate(row):
                self.index.setdefault(term.lower(), (c, r))
        self.keep = {word.lower() for word in keep}
        words = sorted(set(self.index) | self.keep, key=len, reverse=True)
        pattern = "|".join(
            re.escape(w) if _is_cjk(w) else rf"(?<!\w){re.escape(w)}(?!\w)" for w in words
        )
        self.regex = re.compile(pattern, re.IGNORECASE)
        self.group = group

    def categories(self, text: str) -> set[int]:
        found = (m.group(0).lower() for m in self.regex.finditer(text))
        return {self.index[word][0] for word in found if word not in self.keep}

    def to_category(self, text: str, category: int) -> str:
        def replace(match: re.Match) -> str:
            word = match.group(0)
            if word.lower() in self.keep:
                return word
            return _copy_case(word, self.group.rows[self.index[word.lower()][1]][category])

        return self.regex.sub(replace, text)


_SWAPPERS: dict[tuple[TermGroup, tuple[str, ...]], _Swapper] = {}


def _swapper(group: TermGroup, keep: tuple[str, ...]) -> _Swapper:
    key = (group, keep)
    if key not in _SWAPPERS:
        _SWAPPERS[key] = _Swapper(group, keep)
    return _SWAPPERS[key]


def _copy_case(source: str, target: str) -> str:
    if source.isupper() and len(source) > 1:
        return target.upper()
    if source.islower():
        return target.lower()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    return target


def categories_in(text: str, group: TermGroup, keep: tuple[str, ...] = ()) -> list[str]:
    """The categories of ``group`` whose terms occur in ``text`` (in the group's order).

    >>> categories_in("the hen", load_terms("en").group("gender"))
    []
    """
    found = _swapper(group, keep).categories(text)
    return [c for i, c in enumerate(group.categories) if i in found]


def category_variants(text: str, group: TermGroup, keep: tuple[str, ...] = ()) -> dict[str, str] | None:
    """``text`` with every term of ``group`` replaced by its counterpart in each category.

    Returns ``{category: text}`` for all categories, or None when ``text``
    has no term of the group. A text mixing categories ("he told her")
    becomes "he told him" and "she told her".

    >>> category_variants("他是我的朋友", load_terms("zh").group("gender"))
    {'male': '他是我的朋友', 'female': '她是我的朋友'}
    """
    swapper = _swapper(group, keep)
    if not swapper.categories(text):
        return None
    return {category: swapper.to_category(text, i) for i, category in enumerate(group.categories)}
