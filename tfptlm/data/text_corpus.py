"""Read and validate raw pretraining text before any training starts.

Two layouts are understood:

* BERT format (default): one sentence per line; a blank (or whitespace-only)
  line ends a document. Documents never span files.
* One document per line (``one_document_per_line=True``): every non-blank line
  is a document, cut into sentences by :func:`split_sentences`.

Files must be UTF-8 (a leading BOM and CRLF line ends are accepted). A bad byte
sequence is reported with the file name and line number.

Example:

>>> docs = read_documents("corpus/*.txt")  # doctest: +SKIP
>>> docs[0]  # doctest: +SKIP
['The first sentence.', 'The second one.']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tfptlm.text_files import expand_file_patterns, read_lines


# A sentence ends after . ! ? (possibly repeated, possibly followed by closing
# quotes or brackets) when whitespace and then a non-lowercase character
# follow, or after the CJK full stops 。！？ (with optional closing quotes).
# Requiring a non-lowercase start keeps "e.g. the" and "H. americanus" whole.
_SENTENCE_END = re.compile(
    r"""[.!?]+["'”’)\]]*(?=\s+[^\sa-z])"""
    r"""|[。！？]+[”’」』）]*"""
)


class CorpusError(ValueError):
    """The corpus cannot be used for the requested pretraining objective."""


def split_sentences(text: str) -> list[str]:
    """Splits ``text`` into sentences with a simple punctuation rule.

    A sentence ends after ``.``, ``!`` or ``?`` followed by whitespace (unless
    the next word starts with a lowercase letter), and after the Chinese /
    Japanese full stops ``。！？``. The punctuation stays with its sentence;
    pieces are stripped and empty pieces are never returned.

    Example:

    >>> split_sentences("Hi there! How are you? Fine.")
    ['Hi there!', 'How are you?', 'Fine.']
    >>> split_sentences("今天很好。我们走吧！")
    ['今天很好。', '我们走吧！']
    """
    pieces = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [piece.strip() for piece in pieces if piece.strip()]


def _read_file(path: str, one_document_per_line: bool) -> list[list[str]]:
    documents = []
    current: list[str] = []
    for line in read_lines(path):
        if one_document_per_line:
            if line:
                documents.append(split_sentences(line))
        elif line:
            current.append(line)
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    return documents


def validate_for_nsp(documents: list[list[str]], files: Sequence[str] | None = None) -> None:
    """Raises ``CorpusError`` unless next-sentence prediction is possible.

    NSP needs at least two documents (random "next" sentences come from another
    document) and at least one document with two or more sentences.

    Example:

    >>> validate_for_nsp([["A.", "B."], ["C."]])
    >>> try:
    ...     validate_for_nsp([["A.", "B."]])
    ... except CorpusError as error:
    ...     print(str(error)[:46])
    The pretraining corpus has only 1 document in
    """
    source = f"files {list(files)}" if files is not None else "the given documents"
    if not any(documents):
        raise CorpusError(f"The pretraining corpus is empty: no sentences in {source}.")
    if len(documents) < 2:
        raise CorpusError(
            f"The pretraining corpus has only {len(documents)} document in {source}; "
            "next-sentence prediction needs at least 2 documents (separate documents "
            "with a blank line, or use one_document_per_line=True)."
        )
    if not any(len(doc) >= 2 for doc in documents):
        raise CorpusError(
            f"No document in {source} has 2 or more sentences, so next-sentence "
            "prediction is impossible (BERT format wants one sentence per line)."
        )


def read_documents(
    patterns: str | Sequence[str],
    one_document_per_line: bool = False,
    check_nsp: bool = True,
) -> list[list[str]]:
    """Reads pretraining documents, each a list of sentences.

    Args:
        patterns: a file path or glob pattern, or a list of them.
        one_document_per_line: if False (BERT format), each line is a sentence
            and blank lines separate documents. If True, each non-blank line is
            a document split into sentences by :func:`split_sentences`.
        check_nsp: run :func:`validate_for_nsp` on the result (an empty corpus
            is always an error).

    Returns:
        A list of documents; each document is a non-empty list of stripped,
        non-empty sentences. Documents never span files.

    Raises:
        FileNotFoundError: a pattern matches nothing or a path is missing.
        ValueError: a file is not valid UTF-8 (names file and line).
        CorpusError: the corpus is empty or unusable for NSP.

    Example:

    >>> docs = read_documents(["wiki/*.txt"], one_document_per_line=True)  # doctest: +SKIP
    >>> len(docs), docs[0][:2]  # doctest: +SKIP
    (3760, ['Homarus gammarus is a lobster .', 'It is related ...'])
    """
    files = expand_file_patterns(patterns)
    documents = []
    for path in files:
        documents.extend(_read_file(path, one_document_per_line))
    if not documents:
        raise CorpusError(f"The pretraining corpus is empty: no sentences in files {files}.")
    if check_nsp:
        validate_for_nsp(documents, files)
    return documents
