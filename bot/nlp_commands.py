"""The ``train`` and ``eval`` commands: learn a classifier from a labelled CSV, measure an engine.

Both read a CSV with ``text`` and ``label`` columns and an optional
``title``. ``train`` fits ``nlp.trained`` on title and text joined (as the desk
reads a complaint) plus every title alone, so that the model has also seen
texts as short as an SMS, and writes the model file. ``eval`` runs an engine
over the rows and prints accuracy, macro-F1, per-label figures, the confusion
matrix and throughput; its last line is ``macro_f1=... accuracy=...
docs_per_s=...`` for scripts. A bad file is an operator error: one line naming
the file (and line), exit 2.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.startup import StartupError
from handlers.desk_config import DeskConfig
from handlers.nlp_setup import load_nlp
from handlers.routing import keyword_classifier
from nlp.classifier import Classifier
from nlp.normalise import normalise

NO_CATEGORY = "(none)"
REQUIRED_COLUMNS = ("text", "label")


@dataclass(frozen=True, slots=True)
class Examples:
    """Labelled complaints from a CSV file; ``titles`` are empty strings where absent."""

    texts: tuple[str, ...]
    titles: tuple[str, ...]
    labels: tuple[str, ...]

    def joined(self) -> list[str]:
        """Title and text as the desk reads a complaint."""
        return [
            f"{title}。{text}" if title else text
            for title, text in zip(self.titles, self.texts, strict=True)
        ]


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``train`` and ``eval`` subcommands."""
    train = commands.add_parser(
        "train", help="learn a classifier model from a labelled CSV (text,label[,title])"
    )
    train.add_argument("--data", type=Path, metavar="FILE.csv")
    train.add_argument(
        "--from-history",
        action="store_true",
        help="learn from the desk's own corrected and resolved tickets (with --data: both)",
    )
    train.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="model file to write"
    )
    evaluate = commands.add_parser(
        "eval", help="measure an engine on a labelled CSV (default: the config's keywords)"
    )
    evaluate.add_argument("--data", type=Path, required=True, metavar="FILE.csv")
    evaluate.add_argument("--model", type=Path, metavar="PATH", help="a model from `train`")


def run(
    args: argparse.Namespace, config: DeskConfig, history: Sequence[tuple[str, str]] = ()
) -> int:
    """Run ``train`` or ``eval``; the exit code. ``history``: (text, label) from the desk."""
    if args.command == "train":
        if args.data is None and not args.from_history:
            raise StartupError("train needs --data FILE.csv, --from-history, or both")
        return train_command(args.data, args.out, config, history)
    return eval_command(args.data, args.model, config)


def train_command(
    data: Path | None,
    out: Path,
    config: DeskConfig,
    history: Sequence[tuple[str, str]] = (),
) -> int:
    """Train on ``data`` and/or the desk's history, write the model to ``out``, say what it used."""
    from nlp.trained import TITLE_WEIGHT, TrainingError, save_model, train, with_titles

    from_file = read_examples(data) if data is not None else Examples((), (), ())
    examples = Examples(
        from_file.texts + tuple(text for text, _ in history),
        from_file.titles + tuple("" for _ in history),
        from_file.labels + tuple(label for _, label in history),
    )
    source = (
        " + ".join(
            part
            for part, used in ((str(data), data is not None), ("the desk's history", bool(history)))
            if used
        )
        or "the desk's history"
    )
    if len(set(examples.labels)) < 2:
        found = f"only the label {examples.labels[0]!r}" if examples.labels else "no examples"
        raise StartupError(f"{source}: {found}: a classifier needs examples of two or more labels")
    texts, labels, weights = with_titles(examples.joined(), examples.titles, examples.labels)
    titles = len(texts) - len(examples.texts)
    load_nlp(config)
    started = time.perf_counter()
    try:
        model = train(texts, labels, weights)
    except TrainingError as exc:
        raise StartupError(f"{source}: {exc}") from exc
    try:
        save_model(model, out)
    except OSError as exc:
        raise StartupError(f"cannot write {out}: {exc.strerror or exc}") from exc
    counts = Counter(examples.labels)
    say(f"examples per label ({len(examples.texts)} rows from {source}):")
    width = max(_width(label) for label in counts)
    for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        say(f"  {_pad(label, width)}  {count:6d}")
    if titles:
        say(f"plus {titles} titles as short examples (weight {TITLE_WEIGHT:g})")
    unknown = sorted(set(counts) - set(config.category_by_code))
    if unknown:
        say(f"note: labels that are not categories of the desk config: {', '.join(unknown)}")
    say(f"model written to {out} ({time.perf_counter() - started:.1f} s)")
    return 0


def eval_command(data: Path, model: Path | None, config: DeskConfig) -> int:
    """Classify every row of ``data`` and print how well and how fast."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    examples = read_examples(data)
    load_nlp(config)
    engine = _engine(model, config)
    texts = [normalise(text) for text in examples.joined()]
    truth = list(examples.labels)
    known = sorted(set(truth))
    # A second-level category (城管执法) counts as its parent (城乡建设) when the
    # file is labelled with first-level categories only.
    parents = {c.code: c.parent for c in config.categories if c.parent and c.code not in known}
    started = time.perf_counter()
    ranked = [engine.classify(text) for text in texts]
    seconds = time.perf_counter() - started
    guessed = [parents.get(r[0].category, r[0].category) if r else NO_CATEGORY for r in ranked]

    accuracy = accuracy_score(truth, guessed)
    macro = f1_score(truth, guessed, labels=known, average="macro", zero_division=0)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guessed, labels=known, zero_division=0
    )
    say(f"engine {engine.name} on {len(texts)} rows of {data}")
    say(f"accuracy {accuracy:.3f}  macro-F1 {macro:.3f} (over the file's {len(known)} labels)")
    width = max(_width(label) for label in [*known, NO_CATEGORY, "label"])
    say(f"{_pad('label', width)}  precision  recall      F1  support")
    for i, label in enumerate(known):
        say(
            f"{_pad(label, width)}  {precision[i]:9.3f} {recall[i]:7.3f} {f1[i]:7.3f}"
            f" {int(support[i]):8d}"
        )
    columns = known + sorted(set(guessed) - set(known))
    matrix = confusion_matrix(truth, guessed, labels=columns)
    say("confusion matrix (rows: true label; columns: predicted, numbered as the rows):")
    say(f"{'':>3} {_pad('', width)} " + "".join(f"{j:>6}" for j in range(1, len(columns) + 1)))
    for i, label in enumerate(columns):
        row = matrix[i] if i < len(known) else [0] * len(columns)
        say(f"{i + 1:>3} {_pad(label, width)} " + "".join(f"{n:>6}" for n in row))
    rate = len(texts) / seconds if seconds else float("inf")
    mean_chars = sum(map(len, texts)) / len(texts)
    say(f"throughput {rate:.0f} docs/s (classification only, mean {mean_chars:.0f} characters)")
    say(f"macro_f1={macro:.3f} accuracy={accuracy:.3f} docs_per_s={rate:.0f}")
    return 0


def read_examples(path: Path) -> Examples:
    """The rows of a labelled CSV; ``StartupError`` naming the file (and line) if unusable."""
    columns, numbered = _read_csv(path)
    if not columns:
        raise StartupError(f"{path}: empty file (expected a header row: title,text,label)")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise StartupError(
            f"{path}: missing column {', '.join(map(repr, missing))} "
            f"(columns found: {', '.join(columns)})"
        )
    rows = []
    for line, row in numbered:
        if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
            continue
        for column in REQUIRED_COLUMNS:
            if not (row.get(column) or "").strip():
                raise StartupError(f"{path}:{line}: empty {column}")
        rows.append(row)
    if not rows:
        raise StartupError(f"{path}: no examples (only a header row)")
    return Examples(
        texts=tuple(row["text"].strip() for row in rows),
        titles=tuple((row.get("title") or "").strip() for row in rows),
        labels=tuple(row["label"].strip() for row in rows),
    )


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row) pairs, or ``StartupError`` if the file cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            return columns, [(reader.line_num, row) for row in reader]
    except FileNotFoundError as exc:
        raise StartupError(f"{path}: file not found") from exc
    except UnicodeDecodeError as exc:
        raise StartupError(
            f"{path}: not UTF-8 text (byte {exc.start} of the file): save it as UTF-8 CSV"
        ) from exc
    except csv.Error as exc:
        raise StartupError(f"{path}: not a readable CSV file: {exc}") from exc
    except OSError as exc:
        raise StartupError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc


def say(line: str = "") -> None:
    """Write one line of command output to stdout."""
    sys.stdout.write(line + "\n")


def _engine(model: Path | None, config: DeskConfig) -> Classifier:
    if model is None:
        return keyword_classifier(config)
    from nlp.trained import ModelFileError, load_model

    try:
        return load_model(model)
    except ModelFileError as exc:
        raise StartupError(f"{model}: {exc}") from exc
    except OSError as exc:
        raise StartupError(f"{model}: cannot read the file: {exc.strerror or exc}") from exc


def _width(text: str) -> int:
    # Chinese characters take two columns in a terminal.
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
