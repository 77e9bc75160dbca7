"""Line-level text repairs for pretraining corpora: Unicode form, control characters, markup.

Each function takes one line (the corpus format puts one sentence or one
document on a line, so a line never holds a newline) and returns the repaired
line. :func:`cleaning_steps` lists them in the order the cleaner applies them.

Example:

>>> remove_markup(remove_control_characters("<b>Café</b> &amp; [[Tea house|tea]]\\x00 {{cite web}}"))
'Café & tea'
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable

#: Unicode normalization forms accepted by ``normalization`` / ``--normalization``.
NORMALIZATIONS = ("NFKC", "NFC", "none")

# Control characters that separate words become a space: CR, vertical tab, form feed,
# the information separators U+001C-U+001F, NEL, and the line / paragraph separators.
_SEPARATORS = frozenset("\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029")
# Format characters that are kept: zero-width joiner and non-joiner change how emoji
# sequences and Persian / Indic words are written.
_KEPT_FORMAT = frozenset("\u200c\u200d")

_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_BLOCK_TAG = re.compile(r"</?(?:br|p|div|li|ul|ol|tr|td|th|table|h[1-6]|doc|ref|references)\b[^<>]*>", re.I)
_TAG = re.compile(r"</?([A-Za-z][\w:.-]*)(\s[^<>]*)?/?>")
#: Placeholder tokens of language-model corpora (``<unk>`` in WikiText, ``<s>``...): kept when bare.
PLACEHOLDER_TOKENS = frozenset({"unk", "s", "pad", "mask", "cls", "sep", "bos", "eos", "eod"})
_WIKI_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_WIKI_TABLE = re.compile(r"\{\|[^{}]*\|\}")
_WIKI_SPECIAL_LINK = re.compile(  # file and category links, possibly with links in their captions
    r"\[\[(?:File|Image|Category|Media|文件|檔案|图像|圖像|分类|分類)\s*:"
    r"[^\[\]]*(?:\[\[[^\[\]]*\]\][^\[\]]*)*\]\]",
    re.I,
)
_WIKI_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]")
_EXTERNAL_LINK = re.compile(r"\[(?:https?|ftp)://[^\s\]]+(?:\s+([^\]]*))?\]")
_WIKI_HEADING = re.compile(r"^(?:=\s*)+(.+?)(?:\s*=)+$")
_WIKI_EMPHASIS = re.compile(r"'{2,5}")
_LANGUAGE_VARIANTS = re.compile(r"-\{(?:[^{}]*?:)?([^{};]*)[^{}]*\}-")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"]+", re.I)
_SPACES = re.compile(r" {2,}")


def normalize_unicode(text: str, form: str = "NFKC") -> str:
    """Applies a Unicode normalization form (``"NFKC"``, ``"NFC"`` or ``"none"``).

    NFKC also folds compatibility forms (full-width letters and digits, ligatures,
    full-width CJK punctuation such as ``，`` -> ``,``); NFC only composes accents.

    Example:

    >>> normalize_unicode("ﬁ ＡＢ１", "NFKC"), normalize_unicode("ﬁ", "NFC")
    ('fi AB1', 'ﬁ')
    """
    if form not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {form!r}; choose one of {', '.join(NORMALIZATIONS)}")
    return text if form == "none" else unicodedata.normalize(form, text)


def remove_control_characters(text: str) -> str:
    """Removes control (Cc) and format (Cf) characters.

    Kept: tab, and the zero-width (non-)joiner U+200C / U+200D. Control
    characters that separate words (CR, vertical tab, form feed, U+001C-U+001F,
    NEL, U+2028, U+2029) become a space. Everything else of category Cc or Cf
    (NUL, escape, DEL, C1 controls, soft hyphen, BOM, bidi marks, zero-width
    space...) is deleted. Newlines never reach here: they delimit the units.

    Example:

    >>> remove_control_characters("a\\x00b\\rc\\u00add\\u200be\\tf")
    'ab cde\\tf'
    """
    if text.isprintable():  # no Cc / Cf at all (the common case)
        return text
    kept = []
    for character in text:
        if character == "\t" or character in _KEPT_FORMAT:
            kept.append(character)
        elif character in _SEPARATORS:
            kept.append(" ")
        elif unicodedata.category(character) not in ("Cc", "Cf"):
            kept.append(character)
    return "".join(kept)


def remove_markup(text: str) -> str:
    """Removes HTML/XML tags and comments, decodes HTML entities and strips wiki markup.

    Wiki markup: ``[[target|text]]`` -> ``text``, ``[[target]]`` -> ``target``,
    file and category links and ``{{templates}}`` (also nested) and ``{| tables |}``
    are dropped, ``[http://x label]`` -> ``label``, ``== Heading ==`` ->
    ``Heading``, ``'''bold'''`` -> ``bold``, and the Chinese variant marker
    ``-{zh-cn:A;zh-tw:B}-`` -> ``A``. Tags are removed before entities are
    decoded, so an escaped ``&lt;b&gt;`` survives as the text ``<b>``. Bare
    placeholder tokens such as ``<unk>`` or ``</s>`` (:data:`PLACEHOLDER_TOKENS`)
    are not markup and stay.

    Example:

    >>> remove_markup("== History == "), remove_markup("a <unk> </s> <span class='x'>b</span>")
    ('History', 'a <unk> </s> b')
    >>> remove_markup("x<br/>y &lt;b&gt; {{a|{{b}}}}[[Category:Z]] '''[[Paris|the city]]'''")
    'x y <b> the city'
    """
    original = text
    text = _HTML_COMMENT.sub(" ", text)
    text = _BLOCK_TAG.sub(" ", text)
    text = _TAG.sub(_drop_tag, text)
    previous = None
    while previous != text:  # innermost templates first
        previous = text
        text = _WIKI_TEMPLATE.sub("", _WIKI_TABLE.sub("", text))
    text = _WIKI_SPECIAL_LINK.sub("", text)
    text = _WIKI_LINK.sub(r"\1", text)
    text = _EXTERNAL_LINK.sub(lambda m: m.group(1) or "", text)
    text = _LANGUAGE_VARIANTS.sub(r"\1", text)
    text = _WIKI_EMPHASIS.sub("", text)
    text = _WIKI_HEADING.sub(r"\1", collapse_spaces(html.unescape(text)))
    return original if text == collapse_spaces(original) else text  # spacing alone is not markup


def _drop_tag(match: re.Match) -> str:
    bare_placeholder = match.group(1).lower() in PLACEHOLDER_TOKENS and not match.group(2)
    return match.group(0) if bare_placeholder else ""


def remove_urls(text: str) -> str:
    """Removes ``http(s)://``, ``ftp://`` and ``www.`` addresses.

    Example:

    >>> remove_urls("see https://example.com/a?b=1 now")
    'see now'
    """
    return collapse_spaces(_URL.sub(" ", text))


def collapse_spaces(text: str) -> str:
    """Runs of spaces become one space; the ends are stripped (tabs are kept).

    Example:

    >>> collapse_spaces("  a   b ")
    'a b'
    """
    return _SPACES.sub(" ", text).strip()


def cleaning_steps(
    normalization: str = "NFKC",
    control: bool = True,
    markup: bool = True,
    urls: bool = False,
) -> list[tuple[str, Callable[[str], str]]]:
    """The repairs to apply to every line, in order, as ``(name, function)`` pairs.

    Normalization runs first so that compatibility forms of ``<`` or ``{`` are
    seen by the markup rules, and control characters go before markup so that
    they cannot hide a tag; ``whitespace`` (:func:`collapse_spaces`) comes last.

    Example:

    >>> text = "ＨＴＭＬ <i>text</i>\x07 at www.example.com"
    >>> for name, step in cleaning_steps(urls=True):
    ...     text = step(text)
    >>> text
    'HTML text at'
    """
    steps: list[tuple[str, Callable[[str], str]]] = []
    if normalization != "none":
        steps.append(("unicode_normalization", functools.partial(normalize_unicode, form=normalization)))
    if control:
        steps.append(("control_characters", remove_control_characters))
    if markup:
        steps.append(("markup", remove_markup))
    if urls:
        steps.append(("urls", remove_urls))
    return steps + [("whitespace", collapse_spaces)]
