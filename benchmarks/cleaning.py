"""Corpus cleaning (`tfptlm clean`) on real corpora: what is removed and why, duplicate clusters, speed.

Three corpora of the workplace data folder, one document per line:

* WikiText-2 valid + test (English, one paragraph per line; headings ``= = x = =``),
  Latin script kept, paragraphs under 5 words dropped;
* CLUECorpusSmall sample (Chinese, one document per line), Han kept per document,
  documents under 20 characters dropped;
* the Chinese Wikipedia sample (WikiExtractor output with ``<doc>`` lines and
  ``-{zh-cn:..}-`` markers), Han + Latin kept, paragraphs under 10 characters dropped.

Each corpus is cleaned three times: as is (the removal table, near-duplicate
clusters and documents/s), without near-duplicate removal (its cost), and with
planted near duplicates appended (copies of seeded random long documents with
one word, or one Chinese character, replaced) to measure the recall of the
MinHash LSH step.

Usage (from the repository root; under a minute on 2 CPU cores)::

    python benchmarks/cleaning.py

Writes ``benchmarks/results/cleaning.{json,md}``; cleaned files go to ``--work-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
from importlib import metadata
from pathlib import Path

from results_io import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, RESULTS_DIR, Stopwatch, fmt, write_report

from tfptlm.data.cleaning import CleaningConfig, clean_corpus
from tfptlm.data.unicode_scripts import count_words
from tfptlm.text_files import read_lines

#: name -> (files under the data folder, cleaning settings, planted-duplicate minimum length in words)
CORPORA = {
    "wikitext2": (["wikitext2/valid.txt", "wikitext2/test.txt"],
                  dict(keep_scripts=("latin",), min_doc_words=5), 100),
    "clue_corpus_small_sample": (["clue_corpus_small_sample/CLUECorpusSmall_sampled.txt"],
                                 dict(keep_scripts=("han",), script_unit="document", min_doc_chars=20), 200),
    "zhwiki_sample": (["zhwiki_sample/wiki_00"],
                      dict(keep_scripts=("han", "latin"), min_doc_chars=10), 200),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR / "cleaning")
    parser.add_argument("--planted", type=int, default=100, help="near duplicates planted per corpus")
    parser.add_argument("--seed", type=int, default=0, help="which documents get planted copies")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR)
    return parser.parse_args(argv)


def plant_near_duplicates(files: list[Path], count: int, min_words: int, seed: int, path: Path) -> dict:
    """Writes ``count`` one-edit copies of random long lines of ``files`` to ``path``; returns
    planted line number -> (source file, source line)."""
    rng = random.Random(seed)
    long_lines = [(str(f), number, text) for f in files for number, text in enumerate(read_lines(str(f)), 1)
                  if count_words(text) >= min_words]
    chosen = rng.sample(long_lines, min(count, len(long_lines)))
    planted, sources = [], {}
    for file, number, text in chosen:
        words = text.split()
        if len(words) >= min_words:  # English: replace the middle word
            words[len(words) // 2] = "replaced"
            copy = " ".join(words)
        else:  # Chinese: replace the middle character
            middle = len(text) // 2
            copy = text[:middle] + ("好" if text[middle] != "好" else "坏") + text[middle + 1:]
        planted.append(copy)
        sources[len(planted)] = (file, number)
    path.write_text("\n".join(planted) + "\n", encoding="utf-8")
    return sources


def near_duplicate_examples(report, limit: int = 3) -> list[dict]:
    """A few removed near duplicates next to the kept document they repeat (texts cut to 100 characters)."""
    lines = {}
    examples = []
    for removal in report.removals:
        if removal.reason != "near_duplicate" or len(examples) == limit:
            continue
        kept = removal.duplicate_of
        if kept["file"] not in lines:
            lines[kept["file"]] = list(read_lines(kept["file"]))
        examples.append({"removed": f"{Path(removal.file).name}:{removal.line}", "similarity": removal.similarity,
                         "kept": f"{Path(kept['file']).name}:{kept['line']}",
                         "removed_text": removal.text[:100], "kept_text": lines[kept["file"]][kept["line"] - 1][:100]})
    return examples


def run_corpus(name: str, args, stopwatch: Stopwatch) -> dict:
    relative, options, min_words = CORPORA[name]
    files = [args.data_dir / f for f in relative]
    folder = args.work_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    config = CleaningConfig(one_document_per_line=True, **options)
    stopwatch.log(f"{name}: cleaning {', '.join(relative)}")
    report = clean_corpus([str(f) for f in files], folder / "clean.txt", config, folder / "report.json",
                          folder / "removed.jsonl", show_progress=False)
    stopwatch.log(f"{name}:\n{report.summary()}")
    no_near = clean_corpus([str(f) for f in files], folder / "clean_no_near.txt",
                           dataclasses.replace(config, near_dedup=False), show_progress=False)
    planted_path = folder / "planted.txt"
    sources = plant_near_duplicates(files, args.planted, min_words, args.seed, planted_path)
    with_planted = clean_corpus([str(f) for f in files] + [str(planted_path)], folder / "clean_planted.txt", config,
                                show_progress=False)
    caught = {r.line: r for r in with_planted.removals if r.file == str(planted_path)}
    duplicates = [r for r in caught.values() if r.reason in ("near_duplicate", "exact_duplicate")]
    to_source = [r for r in duplicates
                 if (r.duplicate_of["file"], r.duplicate_of["line"]) == sources[r.line]]
    recall = len(duplicates) / len(sources)
    stopwatch.log(f"{name}: planted near duplicates found {len(duplicates)}/{len(sources)}")
    return {
        "files": relative,
        "config": {k: v for k, v in dataclasses.asdict(config).items()
                   if v != getattr(CleaningConfig(), k) or k in ("threshold", "num_perm", "word_ngram", "char_ngram")},
        "documents_in": report.documents_in, "documents_out": report.documents_out,
        "lines_changed": dict(report.lines_changed), "removed": dict(report.removed.most_common()),
        "documents_emptied": report.documents_emptied,
        "exact_duplicate_groups": report.exact_duplicate_groups,
        "near_duplicate_clusters": report.near_duplicate_clusters,
        "characters_in": report.characters_in, "characters_out": report.characters_out,
        "seconds": round(report.seconds, 2), "documents_per_second": round(report.documents_in / report.seconds, 1),
        "seconds_without_near_dedup": round(no_near.seconds, 2),
        "documents_per_second_without_near_dedup": round(no_near.documents_in / no_near.seconds, 1),
        "planted": {"count": len(sources), "min_words": min_words, "found": len(duplicates),
                    "pointing_to_their_source": len(to_source), "recall": round(recall, 3),
                    "other_reasons": dict((r.reason, sum(1 for x in caught.values() if x.reason == r.reason))
                                          for r in caught.values() if r not in duplicates)},
        "near_duplicate_examples": near_duplicate_examples(report),
    }


def markdown(results: dict) -> list[str]:
    reasons = sorted({reason for r in results.values() for reason in r["removed"]})
    body = [
        "Each corpus cleaned with `tfptlm.data.cleaning.clean_corpus`, one document per line; defaults (NFKC, "
        "control characters, markup, exact dedup, MinHash LSH near dedup with auto shingles: 5-word or "
        f"5-character, threshold 0.8, 128 permutations, seed 1; datasketch {metadata.version('datasketch')}) "
        "plus the settings in the table. "
        "Measured under load: the 2-core machine was shared with other workers (load average in the header).",
        "",
        "| corpus | settings | documents in | out | " + " | ".join(reasons) + " | exact groups | near clusters | "
        "documents/s | documents/s without near dedup |",
        "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in reasons) + " | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        settings = ", ".join(f"{k}={v}" for k, v in r["config"].items()
                             if k not in ("threshold", "num_perm", "word_ngram", "char_ngram"))
        body.append(
            f"| {name} | {settings} | {fmt(r['documents_in'])} | {fmt(r['documents_out'])} | "
            + " | ".join(fmt(r["removed"].get(reason, 0)) for reason in reasons)
            + f" | {fmt(r['exact_duplicate_groups'])} | {fmt(r['near_duplicate_clusters'])} | "
            f"{fmt(r['documents_per_second'], 0)} | {fmt(r['documents_per_second_without_near_dedup'], 0)} |"
        )
    body += ["", "Lines changed by the repairs (a line can count under several):", ""]
    body += [f"- {name}: " + ", ".join(f"{k} {v:,}" for k, v in r["lines_changed"].items())
             for name, r in results.items()]
    body += ["", "Planted near duplicates (copies of seeded random documents of at least N words, where a Han "
             "character counts as a word, with the middle word or character replaced), appended as an extra file:",
             "", "| corpus | planted | min words | found as duplicates | pointing to their source | recall |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        p = r["planted"]
        body.append(f"| {name} | {p['count']} | {p['min_words']} | {p['found']} | {p['pointing_to_their_source']} | "
                    f"{p['recall']:.3f} |")
    body += ["", "Near duplicates found in the corpora as they are (first three, texts cut to 100 characters):", ""]
    for name, r in results.items():
        for e in r["near_duplicate_examples"]:
            body.append(f"- {name}: {e['removed']} ~ {e['kept']} (estimated Jaccard {e['similarity']}): "
                        f"`{e['removed_text']}` ~ `{e['kept_text']}`")
        if not r["near_duplicate_examples"]:
            body.append(f"- {name}: none")
    return body


def main(argv=None) -> None:
    args = parse_args(argv)
    stopwatch = Stopwatch()
    results = {}
    for name in CORPORA:
        results[name] = run_corpus(name, args, stopwatch)
        write_report("cleaning", "Corpus cleaning: removals per reason, duplicate clusters, throughput",
                     {"settings": {k: str(v) for k, v in vars(args).items()},
                      "datasketch": metadata.version("datasketch"), "corpora": results},
                     markdown(results), stopwatch, args.output_dir, complete=len(results) == len(CORPORA))
    stopwatch.log(f"Wrote {args.output_dir / 'cleaning.md'}")


if __name__ == "__main__":
    main()
