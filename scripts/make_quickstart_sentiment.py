"""Makes the quickstart's small sentiment sample in tfptlm/resources/ from SST-2.

SST-2 (Socher et al. 2013, GLUE release) labels movie-review sentences
negative (0) or positive (1). The training file is mostly sub-phrases of the
parse trees; this sample keeps only whole sentences of 8 words or more,
balanced between the labels, and renames the labels to words:

    python scripts/make_quickstart_sentiment.py ../shared/data/sst2 tfptlm/resources
"""

import argparse
import csv
import random
from pathlib import Path

LABELS = {"0": "negative", "1": "positive"}


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(text.strip(), LABELS[label]) for text, label in rows]


def write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("text\tlabel\n")
        f.writelines(f"{text}\t{label}\n" for text, label in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sst2_dir", type=Path)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--train-per-label", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sentences = [r for r in read(args.sst2_dir / "train.tsv") if len(r[0].split()) >= 8]
    random.Random(args.seed).shuffle(sentences)
    train = []
    for label in LABELS.values():
        train += [r for r in sentences if r[1] == label][: args.train_per_label]
    random.Random(args.seed).shuffle(train)
    write(args.output_dir / "sst2_sample_train.tsv", train)
    write(args.output_dir / "sst2_sample_dev.tsv", read(args.sst2_dir / "dev.tsv"))


if __name__ == "__main__":
    main()
