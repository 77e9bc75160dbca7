"""Makes the quickstart corpus that ships in tfptlm/resources/ from WikiText-2.

WikiText-2 (Merity et al. 2016, CC BY-SA 3.0) comes tokenised, one paragraph
per line, with ` = Title = ` headings. This script keeps whole articles, drops
headings, undoes the tokenisation marks, splits paragraphs into sentences and
writes BERT's pretraining format: one sentence per line, a blank line between
documents (articles). Sentences with `<unk>` (rare words the dataset masked)
are dropped so that the model is not rewarded for predicting the mask marker.

    python scripts/make_quickstart_corpus.py tfptlm/resources/wikitext2_train.txt \
        ../shared/data/wikitext2/valid.txt ../shared/data/wikitext2/test.txt:0:42
    python scripts/make_quickstart_corpus.py tfptlm/resources/wikitext2_eval.txt \
        ../shared/data/wikitext2/test.txt:42:
"""

import argparse
import re

_MARKS = [(" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" , ", ", "), (" ; ", "; "),
          (" : ", ": "), ("( ", "("), (" )", ")"), (" 's ", "'s "), (" n't ", "n't ")]
_SENTENCE_END = re.compile(r"(?<=[.!?]) (?=[A-Z\"'(])")


def articles(lines):
    article = []
    for line in lines:
        text = line.strip()
        if re.fullmatch(r"= [^=].* =", text):  # a new article's title
            if article:
                yield article
            article = []
        elif text and not text.startswith("="):
            article.append(text)
    if article:
        yield article


def sentences(paragraph):
    text = f" {paragraph} "
    for mark, plain in _MARKS:
        text = text.replace(mark, plain)
    text = re.sub(r" ([.!?])(?= |$)", r"\1", text.strip())
    return [s for s in _SENTENCE_END.split(text) if "<unk>" not in s and len(s.split()) > 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("sources", nargs="+", help="FILE or FILE:FIRST:LAST (article range)")
    args = parser.parse_args()
    with open(args.output, "w", encoding="utf-8") as out:
        for source in args.sources:
            path, _, span = source.partition(":")
            first, _, last = span.partition(":")
            with open(path, encoding="utf-8") as f:
                chosen = list(articles(f))[int(first or 0):int(last) if last else None]
            for article in chosen:
                document = [s for paragraph in article for s in sentences(paragraph)]
                out.write("\n".join(document) + "\n\n")


if __name__ == "__main__":
    main()
