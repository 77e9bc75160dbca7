"""Tokenizer throughput and the pretraining input pipeline's throughput, in one run.

Part 1, tokenizers (``tokenize_speed.py``): WordPiece (tfptlm vs keras-hub vs
Hugging Face ``tokenizers``, the all-MiniLM-L6-v2 ``vocab.txt``), byte-level
BPE (tfptlm vs HF ``ByteLevelBPETokenizer``, one vocabulary trained on the
benchmark texts) and SentencePiece (tfptlm vs the ``sentencepiece`` library,
one unigram model trained on them), on WikiText-2 paragraphs (valid + test)
and SST-2 train sentences, in batches of ``--batch-size`` texts. Per family
and text set, every contender tokenizes all texts once per round (one block),
``--rounds`` rounds, the order rotating every round; the figures are medians
over the blocks, per second and per CPU-second (all threads of the process).
The ids of every contender are compared with the reference (HF tokenizers,
or the sentencepiece library) on all texts.

Part 2, the pretraining input pipeline alone (``tokenize_pipeline.py``): the
path of ``tfptlm pretrain`` with ``configs/bert_small_pretrain.yaml`` (batch
32 x 128, 20 predictions) on WikiText-2 valid + test (one document per line)
and the MiniLM vocabulary: reading (``load_corpora``), the one-off corpus
tokenization (``TokenizedCorpus.build``), the setup of each recipe's datasets
(``make_datasets``), then the steady state of the per-step pipeline (pairs or
packs, masking, batching) for BERT NSP, NSP with whole-word masking, ALBERT
SOP (single pieces, and whole-word 3-grams) and RoBERTa full sentences,
interleaved over ``--rounds`` blocks of ``--pipeline-batches`` batches, each
block from a fresh iterator after ``--warmup-batches`` untimed batches. The
steady state is compared with training consumption: the best tfptlm training
tokens/s in ``results/peers.json`` when it has one, else
``--training-tokens-per-second``; the target is 20x.

Usage (from the repository root)::

    python benchmarks/tokenize.py            # full run
    python benchmarks/tokenize.py --quick    # smoke run: small subsets, 2 rounds
    python benchmarks/tokenize.py --families wordpiece --skip-pipeline

Writes ``benchmarks/results/tokenize.{json,md}`` (``--quick``:
``tokenize_quick.*``), rewritten after each part. The code is in
``tokenize_benchmark.py``; this file only keeps the standard library's
``tokenize`` module importable (see below).
"""

import os
import sys

# This script has the name of the standard library's ``tokenize`` module, which
# inspect, linecache and TensorFlow import, and Python puts the script's folder
# first on sys.path: for this script and for every other script in this folder.
_HERE = os.path.dirname(os.path.abspath(__file__))
_OTHERS = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

if __name__ == "__main__":
    # Run as a script: the folder moves to the end of sys.path (for the helpers
    # next to this file), after the standard library.
    sys.path[:] = _OTHERS + [_HERE]
    from tokenize_benchmark import main

    main()
elif __name__ == "tokenize":
    # Imported as ``tokenize`` by another script of this folder: the standard
    # library's module takes this one's place (the import returns what
    # sys.modules holds once this file has run).
    import importlib.machinery
    import importlib.util

    _spec = importlib.machinery.PathFinder.find_spec(__name__, _OTHERS)
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[__name__] = _module
    _spec.loader.exec_module(_module)
