"""What classifying a complaint costs, next to segmenting it with plain ``jieba.lcut``.

Run ``python bench/classify.py [--data CSV] [--model PATH] [--limit N]`` from the
project root. Both sides get the same texts in the same run: the desk's whole
routing step (``normalise`` then ``Router.route``: classification, conduct and
urgency checks) with the keyword engine or, with ``--model``, the trained one,
against ``jieba.lcut`` alone, timed alternately text by text (see
``paired_rates``). The issue's budget is 1.3x jieba's cost.

The texts come from a CSV with ``title`` and ``text`` columns (by default the
measuring corpus in ``../shared/corpus``, never copied into the project). The
last line is machine-readable:
``docs_per_s=N jieba_docs_per_s=N cost_ratio=N.NN``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import jieba
from eval_keywords import paired_rates

from bot.config_file import load_desk_config
from handlers.nlp_setup import load_nlp
from handlers.routing import Router
from nlp.classifier import Classifier
from nlp.normalise import normalise

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "corpus" / "complaints_train.csv"


def read_texts(path: Path, limit: int) -> list[str]:
    """Title and text joined, as the desk reads a complaint."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:limit]
    return [f"{row.get('title') or ''}。{row['text']}".lstrip("。") for row in rows]


def engine(model: Path | None) -> Classifier | None:
    """The trained engine from ``model``, or None for the config's keyword engine."""
    if model is None:
        return None
    from nlp.trained import load_model

    return load_model(model)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", type=Path, help="a trained model file (default: keywords)")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = load_desk_config(None)
    started = time.perf_counter()
    load_nlp(config)
    router = Router(config, engine(args.model))
    load_seconds = time.perf_counter() - started
    texts = read_texts(args.data, args.limit)
    chars = sum(len(t) for t in texts) / len(texts)
    jieba.initialize()

    def jieba_only(text: str) -> object:
        return jieba.lcut(text)

    def desk(text: str) -> object:
        return router.route(normalise(text))

    # Warm both paths (caches, first-call set-up) before timing.
    for text in texts[:50]:
        jieba_only(text)
        desk(text)
    ours, theirs = paired_rates(desk, jieba_only, texts, args.rounds)
    ratio = theirs / ours
    print(f"texts: {len(texts)} from {args.data.name}, mean {chars:.0f} characters")
    print(
        f"engine: {router.classifier.name}; load (jieba + user words + engine): "
        f"{load_seconds:.2f} s (target <= 2 s warm)"
    )
    print(f"desk routing   {ours:10.0f} docs/s")
    print(f"jieba.lcut     {theirs:10.0f} docs/s")
    print(f"cost ratio     {ratio:10.2f}x jieba (target <= 1.30)")
    print(f"docs_per_s={ours:.0f} jieba_docs_per_s={theirs:.0f} cost_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
