"""Cross-validated accuracy of the trained engine, beside the shipped baseline in the same run.

Run ``python bench/cv_trained.py --data PATH [--folds 5] [--option NAME=VALUE ...]``
from the project root. Each stratified fold (shuffled, seed 0, the folds of
``../shared/tools/baseline_cv.py``) trains

- ours: ``nlp.trained.train`` on title+text of every training row plus, as
  extra short examples, the titles of the rows that have one
  (``nlp.trained.with_titles``);
- the baseline: TF-IDF of jieba words 1-2 and characters 1-4 with a
  LinearSVC, on the title three times and the text (``baseline_cv.py``);

and scores both on the held-out rows twice: title and text (``title。text``,
as the desk joins them), and the title alone (rows that have a title), the
length of an SMS complaint. ``--option`` passes a ``TrainOptions`` field to
``train`` (``--option c=0.5``) to compare settings. The data stays where it
is: nothing is written. The last line is machine-readable:
``macro_f1=0.xxx title_macro_f1=0.xxx baseline_macro_f1=0.xxx baseline_title_macro_f1=0.xxx``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jieba
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from nlp import segment
from nlp.normalise import normalise
from nlp.trained import TrainOptions, train, with_titles

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "corpus" / "complaints_train.csv"

Predict = Callable[[Sequence[str]], list[str]]


def read_rows(path: Path) -> list[dict[str, str]]:
    """Rows with ``title`` (may be empty), ``text`` and ``label``."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            {"title": row.get("title") or "", "text": row["text"], "label": row["label"]}
            for row in csv.DictReader(handle)
        ]


def joined(row: dict[str, str]) -> str:
    """Title and text as the desk reads a complaint."""
    return f"{row['title']}。{row['text']}" if row["title"] else row["text"]


def ours(rows: Sequence[dict[str, str]], options: dict[str, Any]) -> Predict:
    """Train the engine; a function predicting the best label of raw texts."""
    texts, labels, weights = with_titles(
        [joined(r) for r in rows], [r["title"] for r in rows], [r["label"] for r in rows]
    )
    model = train(texts, labels, weights, **options)

    def predict(batch: Sequence[str]) -> list[str]:
        return [(model.classify(normalise(t)) or [None])[0].category for t in batch]  # type: ignore[union-attr]

    return predict


_tokens: dict[str, list[str]] = {}


def _jieba_tokens(text: str) -> list[str]:
    if text not in _tokens:
        _tokens[text] = jieba.lcut(text)
    return _tokens[text]


def baseline(rows: Sequence[dict[str, str]]) -> Predict:
    """``baseline_cv.py``'s model, trained the way it trains it."""
    words = TfidfVectorizer(
        tokenizer=_jieba_tokens,
        token_pattern=None,
        lowercase=False,
        ngram_range=(1, 2),
        sublinear_tf=True,
        max_df=0.5,
    )
    chars = TfidfVectorizer(
        analyzer="char", ngram_range=(1, 4), sublinear_tf=True, min_df=2, max_df=0.5
    )
    model = make_pipeline(make_union(words, chars), LinearSVC(C=1.0))
    model.fit([(r["title"] + " ") * 3 + r["text"] for r in rows], [r["label"] for r in rows])

    def predict(batch: Sequence[str]) -> list[str]:
        return [str(label) for label in model.predict(list(batch))]

    return predict


def score(
    predict: Predict, rows: Sequence[dict[str, str]], texts: Sequence[str]
) -> tuple[float, float]:
    """Macro-F1 and accuracy of ``predict`` on ``texts`` against the rows' labels."""
    truth = [r["label"] for r in rows]
    guessed = predict(texts)
    return f1_score(truth, guessed, average="macro"), accuracy_score(truth, guessed)


def parse_option(text: str) -> tuple[str, Any]:
    """``name=value`` with the value typed as the ``TrainOptions`` field is."""
    name, _, value = text.partition("=")
    fields = TrainOptions.__dataclass_fields__
    if name not in fields:
        raise argparse.ArgumentTypeError(f"unknown option {name!r}; known: {', '.join(fields)}")
    default = getattr(TrainOptions(), name)
    if value in ("None", "none"):
        return name, None
    if default is None:
        return name, int(value) if value.isdigit() else value
    return name, type(default)(value)


def main() -> None:
    """Cross-validate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--option", type=parse_option, action="append", default=[])
    parser.add_argument("--no-baseline", action="store_true", help="only our engine (faster)")
    args = parser.parse_args()
    options = dict(args.option)

    segment.load()
    jieba.initialize()
    rows = read_rows(args.data)
    labels = [r["label"] for r in rows]
    splits = StratifiedKFold(args.folds, shuffle=True, random_state=0).split(rows, labels)
    results: dict[str, list[tuple[float, float, float, float]]] = {"ours": [], "baseline": []}
    print(f"{len(rows)} rows, {sum(1 for r in rows if r['title'])} with a title; options {options}")
    print("fold  engine     macro_f1 accuracy | title: macro_f1 accuracy   seconds")
    for fold, (train_at, test_at) in enumerate(splits, start=1):
        training = [rows[i] for i in train_at]
        testing = [rows[i] for i in test_at]
        titled = [r for r in testing if r["title"]]
        engines: list[tuple[str, Callable[[Sequence[dict[str, str]]], Predict]]] = [
            ("ours", lambda examples: ours(examples, options))
        ]
        if not args.no_baseline:
            engines.append(("baseline", baseline))
        for name, fit in engines:
            started = time.perf_counter()
            predict = fit(training)
            full = score(predict, testing, [joined(r) for r in testing])
            short = score(predict, titled, [r["title"] for r in titled])
            results[name].append((*full, *short))
            print(
                f"{fold:>4}  {name:<9} {full[0]:9.3f} {full[1]:8.3f} |"
                f" {short[0]:14.3f} {short[1]:8.3f} {time.perf_counter() - started:9.0f}",
                flush=True,
            )
    means = {
        name: [statistics.mean(column) for column in zip(*runs, strict=True)]
        for name, runs in results.items()
        if runs
    }
    for name, mean in means.items():
        print(f"mean  {name:<9} {mean[0]:9.3f} {mean[1]:8.3f} | {mean[2]:14.3f} {mean[3]:8.3f}")
    base = means.get("baseline", [float("nan")] * 4)
    print(
        f"macro_f1={means['ours'][0]:.3f} title_macro_f1={means['ours'][2]:.3f} "
        f"baseline_macro_f1={base[0]:.3f} baseline_title_macro_f1={base[2]:.3f}"
    )


if __name__ == "__main__":
    main()
