"""How well the keyword engine with the shipped dictionary routes real complaints, and how fast.

Run ``python bench/eval_keywords.py [--data PATH]`` from the project root. The
data is a CSV with ``id,title,text,label`` columns whose labels are first-level
categories (by default the measuring corpus in ``../shared/corpus``, which is
never copied into the project). Each message is read as the desk reads it,
``normalise(title + "。" + text)``; a prediction of a second-level category
counts as its parent, and no prediction or any other category counts as wrong.

Prints macro-F1, accuracy, per-class precision/recall/F1 and the confusion
matrix, the same figures on titles alone (rows that have a title), and the
classifier's throughput next to ``jieba.lcut`` on the same texts (the budget
for classification is 1.3 times jieba's cost). The last line is ``key=value``
pairs for scripts.
"""

from __future__ import annotations

import argparse
import csv
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)

from bot.config_file import load_desk_config
from nlp.keywords import CategoryKeywords, KeywordClassifier
from nlp.normalise import normalise

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "corpus" / "complaints_train.csv"
NONE = "(none)"


def build() -> tuple[KeywordClassifier, dict[str, str]]:
    """The classifier of the shipped config and each category's first-level ancestor."""
    config = load_desk_config(None)
    classifier = KeywordClassifier(
        [
            CategoryKeywords(c.code, c.keywords, tuple(c.negative_keywords))
            for c in config.categories
        ]
    )
    parents = {c.code: c.parent for c in config.categories}
    top: dict[str, str] = {}
    for code in parents:
        root = code
        while parents[root] is not None:
            root = str(parents[root])
        top[code] = root
    return classifier, top


def predict(classifier: KeywordClassifier, top: dict[str, str], texts: Sequence[str]) -> list[str]:
    """First-level category of the best guess for each text (``NONE`` when nothing matched)."""
    predicted = []
    for text in texts:
        ranked = classifier.classify(text)
        predicted.append(top[ranked[0].category] if ranked else NONE)
    return predicted


def report(
    title: str, gold: list[str], predicted: list[str], labels: list[str]
) -> tuple[float, float]:
    """Print the figures for one run; return its macro-F1 over the gold labels and accuracy."""
    macro = float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0))
    accuracy = float(accuracy_score(gold, predicted))
    print(f"== {title}: {len(gold)} messages")
    print(f"macro-F1 {macro:.3f}   accuracy {accuracy:.3f}")
    print(classification_report(gold, predicted, labels=labels, digits=3, zero_division=0))
    others = sorted(set(predicted) - set(labels))
    columns = labels + others
    matrix = confusion_matrix(gold, predicted, labels=columns)
    # Names go last: CJK characters are two columns wide and would break the alignment.
    print("confusion (rows: gold; columns: predicted, rolled up to first level)")
    print(" ".join(f"{i:>5}" for i in range(len(columns))))
    for index, row in enumerate(matrix[: len(labels)]):
        print(" ".join(f"{n:>5}" for n in row) + f"   {index}={columns[index]}")
    print("columns: " + ", ".join(f"{i}={c}" for i, c in enumerate(columns)))
    print()
    return macro, accuracy


def paired_rates(
    ours: Callable[[str], object],
    theirs: Callable[[str], object],
    texts: Sequence[str],
    passes: int,
) -> tuple[float, float]:
    """Docs/s of both, timed text by text in turn, from the pass with the median ratio.

    On a shared machine the speed drifts within seconds; timing the two
    alternately on each text puts both under the same conditions, where
    timing one whole run after the other measured ratios from 1.2 to 1.7.
    """
    runs: list[tuple[float, float]] = []
    clock = time.perf_counter
    for _ in range(passes):
        spent_ours = spent_theirs = 0.0
        for text in texts:
            start = clock()
            ours(text)
            middle = clock()
            theirs(text)
            spent_ours += middle - start
            spent_theirs += clock() - middle
        runs.append((spent_ours, spent_theirs))
    runs.sort(key=lambda run: run[0] / run[1])
    spent_ours, spent_theirs = runs[len(runs) // 2]
    return len(texts) / spent_ours, len(texts) / spent_theirs


def jieba_lcut() -> Callable[[str], object]:
    """``jieba.lcut`` initialised and quiet, so its warm-up is not timed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    lcut: Callable[[str], object] = jieba.lcut
    return lcut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()

    with args.data.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    classifier, top = build()
    labels = sorted({row["label"] for row in rows})
    texts = [normalise(f"{row['title']}。{row['text']}") for row in rows]
    gold = [row["label"] for row in rows]

    macro, accuracy = report("title + text", gold, predict(classifier, top, texts), labels)
    titled = [row for row in rows if row["title"].strip()]
    titles = [normalise(row["title"]) for row in titled]
    title_macro, _ = report(
        "titles only", [row["label"] for row in titled], predict(classifier, top, titles), labels
    )

    ours, theirs = paired_rates(classifier.classify, jieba_lcut(), texts, 3)
    print(f"throughput: keywords {ours:,.0f} docs/s, jieba.lcut {theirs:,.0f} docs/s")
    print(f"classification costs {theirs / ours:.2f}x jieba.lcut (budget 1.3x)")
    print(f"titles-only macro-F1 {title_macro:.3f} ({len(titled)} titled rows)")
    print(f"macro_f1={macro:.3f} accuracy={accuracy:.3f} docs_per_s={ours:.0f}")


if __name__ == "__main__":
    main()
