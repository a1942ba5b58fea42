"""The trained engine: TF-IDF of jieba words and characters, a linear SVM, calibrated.

Learning is scikit-learn's: two ``TfidfVectorizer`` blocks (jieba words, and
character 1-2-grams, which catch what jieba splits badly: place names, new
words, typos), a ``LinearSVC`` with balanced class weights, and temperature
scaling (``CalibratedClassifierCV``) so that confidences mean something to the
triage threshold. Short texts (an SMS, a title) carry few words; there a
``ComplementNB`` on the word block is the better judge, so below
``short_text_chars`` its calibrated probabilities are averaged in.

Prediction needs none of scikit-learn's objects: the fitted vocabularies, IDF
weights and coefficients are plain arrays, and ``classify`` is one jieba
segmentation (without jieba's HMM: half the cost, and the character n-grams
catch the unknown words it would have guessed), a dictionary look-up per
distinct word, a vectorised search per distinct character n-gram and a dot
product. Evidence is the text's jieba
words with the largest contribution to a label's score. The arrays are also
the model file (``nlp.model_file``): loading one never runs code from it.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nlp import segment
from nlp.classifier import CategoryScore
from nlp.model_file import ModelFileError, read_arrays, write_arrays
from nlp.normalise import normalise

__all__ = [
    "ModelFileError",
    "TrainedClassifier",
    "TrainingError",
    "load_model",
    "save_model",
    "train",
    "with_titles",
]

FORMAT = "complaint-desk/trained-classifier"
FORMAT_VERSION = 1
MAX_EVIDENCE = 5
# A title taught as an example of its own counts half: it repeats its text's
# label, and at full weight it pulls long texts toward title-like wording
# (5-fold CV, titles alone: 0.868 at 0.5 against 0.863 at 1).
TITLE_WEIGHT = 0.5
# Evidence is worked out for the best few labels only: the ones routing shows.
EXPLAINED_LABELS = 3
# Character n-grams are code points packed 21 bits apiece into one int64: three fit.
# The default is two: trigrams cost time and gained nothing measurable.
_CODE_BITS = 21
MAX_CHAR_NGRAM = 3
_VOCAB_SEPARATOR = "\n"
# A word worth showing staff: two or more letters (Chinese or not), no digits.
_READABLE = re.compile(r"[^\W\d_]{2,}")
_WORD = re.compile(r"\w")

FloatArray = npt.NDArray[np.float32]


class TrainingError(ValueError):
    """The examples cannot train a model; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """How a model is trained (kept in the model file's header)."""

    c: float = 1.0
    char_ngram_max: int = 2
    class_weight: str | None = "balanced"
    word_min_df: int = 2
    word_max_df: float = 0.5
    char_min_df: int = 2
    char_max_df: float = 0.5
    char_max_features: int | None = 50_000
    nb_alpha: float = 0.3
    short_text_chars: int = 60
    short_text_nb_weight: float = 0.5
    calibration_folds: int = 3
    # The word block's share of the features: characters carry more of the
    # signal (5-fold CV: macro-F1 +0.005, titles alone +0.009 at 0.5).
    word_weight: float = 0.5
    # jieba without its HMM for unknown words: half the segmentation cost, and
    # the character n-grams see those words anyway (5-fold CV: macro-F1 within 0.001).
    word_hmm: bool = False


@dataclass(frozen=True, slots=True)
class _Arrays:
    """Everything prediction needs, exactly as saved."""

    labels: tuple[str, ...]
    word_terms: tuple[str, ...]
    char_codes: npt.NDArray[np.int64]  # sorted n-gram codes (see ``_char_codes``)
    idf: FloatArray  # (1 + words + chars,): row 0 is "unknown", weight 0
    coef: FloatArray  # (1 + words + chars, labels)
    intercept: FloatArray  # (labels,)
    nb_coef: FloatArray  # (1 + words, labels)
    beta: float
    nb_beta: float
    char_ngram_max: int
    short_text_chars: int
    short_text_nb_weight: float
    word_hmm: bool
    metadata: dict[str, Any] = field(default_factory=dict)


class TrainedClassifier:
    """Ranks the labels it was trained on; build it with ``train`` or ``load_model``."""

    name = "trained"

    def __init__(self, arrays: _Arrays) -> None:
        self._arrays = arrays
        self.labels = arrays.labels
        self.metadata = arrays.metadata
        terms = arrays.word_terms
        self._words = {term: row for row, term in enumerate(terms, start=1)}
        if len(self._words) != len(terms):
            raise ModelFileError("the word vocabulary lists a word twice")
        self._terms = ("", *terms)
        # One row per feature holding its IDF and then its coefficients, so
        # that a feature costs one memory fetch (jieba has evicted ours from
        # the cache by the time we look). A word staff cannot read as evidence
        # (digits, one character) carries its IDF negated.
        readable = np.fromiter((bool(_READABLE.fullmatch(t)) for t in self._terms), dtype=bool)
        sign = np.ones(arrays.idf.shape, dtype=np.float32)
        sign[: len(self._terms)][~readable] = -1
        table = np.hstack([(sign * arrays.idf)[:, None], arrays.coef])
        self._word_table = table[: len(self._terms)]
        self._char_table = table[len(self._terms) :]
        # A sentinel above every code: a search never runs off the end.
        self._char_sorted = np.append(arrays.char_codes, np.iinfo(np.int64).max)
        self._intercept = arrays.intercept
        self._nb_coef = arrays.nb_coef
        self._n_max = arrays.char_ngram_max

    def classify(self, text: str) -> list[CategoryScore]:
        """Every label, most probable first, with the words that speak for it.

        ``text`` is normalised complaint text; empty when no word or character
        of it was seen in training.
        """
        lowered = text.lower()
        words = Counter(segment.segment(lowered, hmm=self._arrays.word_hmm))
        rows = np.fromiter(map(self._words.get, words, repeat(0)), dtype=np.intp, count=len(words))
        known = rows.nonzero()
        rows = rows[known]
        word = self._word_table[rows]
        tf = np.fromiter(words.values(), dtype=np.float32, count=len(words))[known]
        word_weights = _normalised((1 + np.log(tf)) * np.abs(word[:, 0]))

        grams, counts = np.unique(_char_codes(lowered, self._n_max), return_counts=True)
        at = self._char_sorted.searchsorted(grams)
        hit = (self._char_sorted[at] == grams).nonzero()
        char = self._char_table[at[hit]]
        char_weights = _normalised((1 + np.log(counts[hit].astype(np.float32))) * char[:, 0])
        if not rows.size and not char.size:
            return []

        scores = self._intercept + word_weights @ word[:, 1:] + char_weights @ char[:, 1:]
        probabilities = _softmax(self._arrays.beta * scores)
        if len(text) <= self._arrays.short_text_chars and rows.size:
            nb = _softmax(self._arrays.nb_beta * (word_weights @ self._nb_coef[rows]))
            share = self._arrays.short_text_nb_weight
            probabilities = (1 - share) * probabilities + share * nb
        order = np.argsort(-probabilities, kind="stable").tolist()
        top = order[:EXPLAINED_LABELS]
        shown = word[:, 0] > 0
        evidence = self._evidence(
            rows[shown], (word_weights[shown, None] * word[shown][:, 1:]).T[top]
        )
        evidence += [()] * (len(order) - len(top))
        labels = self.labels
        return [
            CategoryScore(labels[k], round(float(probabilities[k]), 3), words)
            for k, words in zip(order, evidence, strict=True)
        ]

    def _evidence(self, rows: npt.NDArray[np.intp], pull: FloatArray) -> list[tuple[str, ...]]:
        """Per label explained, the text's words that push its score up the most.

        ``pull`` is (labels explained, readable words): each word feature's
        contribution to the label's score. Words only, never character n-grams:
        staff read them on the ticket card.
        """
        best = np.argsort(-pull, axis=1, kind="stable")[:, :MAX_EVIDENCE]
        positive = (np.take_along_axis(pull, best, axis=1) > 0).tolist()
        terms, found = self._terms, rows.tolist()
        return [
            tuple(terms[found[j]] for j, keep in zip(order, keep_row, strict=True) if keep)
            for order, keep_row in zip(best.tolist(), positive, strict=True)
        ]


def with_titles(
    texts: Sequence[str], titles: Sequence[str], labels: Sequence[str]
) -> tuple[list[str], list[str], list[float]]:
    """Training examples: each text (title and text joined), plus each title alone.

    Titles are about the length of an SMS complaint, so the model learns what
    short texts look like too; they count ``TITLE_WEIGHT`` each. Returns
    texts, labels and weights for ``train``.
    """
    titled = [(t, label) for t, label in zip(titles, labels, strict=True) if t]
    return (
        [*texts, *(t for t, _ in titled)],
        [*labels, *(label for _, label in titled)],
        [1.0] * len(texts) + [TITLE_WEIGHT] * len(titled),
    )


def train(
    texts: Sequence[str],
    labels: Sequence[str],
    weights: Sequence[float] | None = None,
    **options: Any,
) -> TrainedClassifier:
    """Learn a classifier from examples (any source: a CSV, the ticket history).

    ``texts`` are complaint texts (normalised here); ``weights`` how much each
    example counts (default 1); ``options`` are the fields of ``TrainOptions``.
    Slow (seconds per thousand texts): jieba segments every text and four
    models are fitted for calibration.
    """
    # scikit-learn is imported only to train: serving a model never needs it.
    from scipy import sparse
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import StratifiedKFold
    from sklearn.naive_bayes import ComplementNB
    from sklearn.svm import LinearSVC

    settings = TrainOptions(**options)
    if not 1 <= settings.char_ngram_max <= MAX_CHAR_NGRAM:
        raise TrainingError(f"char_ngram_max must be 1 to {MAX_CHAR_NGRAM}")
    if not settings.word_weight > 0:
        raise TrainingError("word_weight must be positive")
    if not 0 <= settings.short_text_nb_weight <= 1:
        raise TrainingError("short_text_nb_weight must be between 0 and 1")
    started = time.perf_counter()
    y = np.asarray(labels, dtype=str)
    counts = _check_examples(texts, y)
    folds = min(settings.calibration_folds, min(counts.values()))
    docs = [normalise(text) for text in texts]
    lowered = [d.lower() for d in docs]
    word_docs = [
        [w for w in segment.segment(d, hmm=settings.word_hmm) if _WORD.search(w)] for d in lowered
    ]
    char_docs = [_char_codes(d, settings.char_ngram_max).tolist() for d in lowered]
    word_vectorizer = TfidfVectorizer(
        analyzer=_identity,
        sublinear_tf=True,
        min_df=settings.word_min_df if len(docs) > 50 else 1,
        max_df=_df(settings.word_max_df, len(docs)),
    )
    char_vectorizer = TfidfVectorizer(
        analyzer=_identity,
        sublinear_tf=True,
        min_df=settings.char_min_df if len(docs) > 50 else 1,
        max_df=_df(settings.char_max_df, len(docs)),
        max_features=settings.char_max_features,
    )
    try:
        word_matrix = word_vectorizer.fit_transform(word_docs)
        char_matrix = char_vectorizer.fit_transform(char_docs)
    except ValueError as exc:  # an empty vocabulary: nothing but punctuation
        raise TrainingError(f"the texts have no usable words: {exc}") from exc
    matrix = sparse.hstack([settings.word_weight * word_matrix, char_matrix]).tocsr()
    if weights is not None and len(weights) != len(texts):
        raise TrainingError(f"{len(texts)} texts but {len(weights)} weights")
    sample_weight = None if weights is None else np.asarray(weights, dtype=np.float64)

    def splitter() -> StratifiedKFold:
        return StratifiedKFold(folds, shuffle=True, random_state=0)

    svm = CalibratedClassifierCV(
        LinearSVC(C=settings.c, class_weight=settings.class_weight),
        method="temperature",
        cv=splitter(),
        ensemble=False,
    ).fit(matrix, y, sample_weight=sample_weight)
    bayes = CalibratedClassifierCV(
        ComplementNB(alpha=settings.nb_alpha), method="temperature", cv=splitter(), ensemble=False
    ).fit(word_matrix, y, sample_weight=sample_weight)
    svm_fit, bayes_fit = svm.calibrated_classifiers_[0], bayes.calibrated_classifiers_[0]
    coef = np.asarray(svm_fit.estimator.coef_, dtype=np.float64).T
    intercept = np.asarray(svm_fit.estimator.intercept_, dtype=np.float64).reshape(-1)
    if len(svm.classes_) == 2:
        # A binary SVM scores the second class only; calibration reads it as (-s, s).
        coef, intercept = np.hstack([-coef, coef]), np.concatenate([-intercept, intercept])
    zero = np.zeros((1, len(svm.classes_)))
    # Columns of the character block in ascending code order, as prediction looks them up.
    vocabulary = sorted(char_vectorizer.vocabulary_.items())
    codes = np.array([code for code, _ in vocabulary], dtype=np.int64)
    columns = np.array([column for _, column in vocabulary], dtype=np.intp)
    n_words = len(word_vectorizer.vocabulary_)
    order = np.concatenate([np.arange(n_words), n_words + columns]).astype(np.intp)
    coef = coef[order]
    # Prediction weighs raw TF-IDF: the word block's scaling moves into its coefficients.
    coef[:n_words] *= settings.word_weight
    idf = np.concatenate([[0.0], word_vectorizer.idf_, char_vectorizer.idf_[columns]])
    arrays = _Arrays(
        labels=tuple(str(label) for label in svm.classes_),
        word_terms=tuple(word_vectorizer.get_feature_names_out()),
        char_codes=codes,
        idf=idf.astype(np.float32),
        coef=np.vstack([zero, coef]).astype(np.float32),
        intercept=intercept.astype(np.float32),
        nb_coef=np.vstack([zero, bayes_fit.estimator.feature_log_prob_.T]).astype(np.float32),
        beta=float(svm_fit.calibrators[0].beta_),
        nb_beta=float(bayes_fit.calibrators[0].beta_),
        char_ngram_max=settings.char_ngram_max,
        short_text_chars=settings.short_text_chars,
        short_text_nb_weight=settings.short_text_nb_weight,
        word_hmm=settings.word_hmm,
        metadata={
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "examples": len(docs),
            "examples_per_label": dict(sorted(counts.items())),
            "options": {k: getattr(settings, k) for k in TrainOptions.__dataclass_fields__},
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return TrainedClassifier(arrays)


def save_model(model: TrainedClassifier, path: Path) -> None:
    """Write ``model`` to ``path`` (numpy arrays and a JSON header; never a pickle)."""
    a = model._arrays
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "labels": list(a.labels),
        "words": len(a.word_terms),
        "chars": len(a.char_codes),
        "beta": a.beta,
        "nb_beta": a.nb_beta,
        "char_ngram_max": a.char_ngram_max,
        "short_text_chars": a.short_text_chars,
        "short_text_nb_weight": a.short_text_nb_weight,
        "word_hmm": a.word_hmm,
        "metadata": a.metadata,
    }
    write_arrays(
        path,
        header,
        {
            "word_terms": _encode_terms(a.word_terms),
            "char_codes": a.char_codes,
            "idf": a.idf,
            "coef": a.coef,
            "intercept": a.intercept,
            "nb_coef": a.nb_coef,
        },
    )


def load_model(path: Path) -> TrainedClassifier:
    """The model saved at ``path``; ``ModelFileError`` if it is not one, or damaged."""
    header, arrays = read_arrays(path)
    if header.get("format") != FORMAT:
        raise ModelFileError(f"not a complaint-desk classifier (format {header.get('format')!r})")
    if header.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"model format version {header.get('version')!r}; this version reads only "
            f"{FORMAT_VERSION}: train the model again"
        )
    expected = {"word_terms", "char_codes", "idf", "coef", "intercept", "nb_coef"}
    if set(arrays) != expected:
        raise ModelFileError(f"model arrays {sorted(arrays)}, expected {sorted(expected)}")
    labels = header.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelFileError("model labels must be two or more distinct names")
    word_terms = _decode_terms(arrays["word_terms"], _count(header, "words"), "word")
    char_codes = _char_vocabulary(arrays["char_codes"], _count(header, "chars"))
    n_rows, n_labels = 1 + len(word_terms) + len(char_codes), len(labels)
    _check(arrays, "idf", (n_rows,))
    _check(arrays, "coef", (n_rows, n_labels))
    _check(arrays, "intercept", (n_labels,))
    _check(arrays, "nb_coef", (1 + len(word_terms), n_labels))
    metadata = header.get("metadata", {})
    return TrainedClassifier(
        _Arrays(
            labels=tuple(labels),
            word_terms=word_terms,
            char_codes=char_codes,
            idf=arrays["idf"],
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            nb_coef=arrays["nb_coef"],
            beta=_number(header, "beta", positive=True),
            nb_beta=_number(header, "nb_beta", positive=True),
            char_ngram_max=_ngram_max(header),
            short_text_chars=int(_number(header, "short_text_chars", integer=True)),
            short_text_nb_weight=_number(header, "short_text_nb_weight", at_most_one=True),
            word_hmm=_word_hmm(header),
            metadata=metadata if isinstance(metadata, dict) else {},
        )
    )


def _check_examples(texts: Sequence[str], y: npt.NDArray[np.str_]) -> Counter[str]:
    if len(texts) != len(y):
        raise TrainingError(f"{len(texts)} texts but {len(y)} labels")
    if not len(texts):
        raise TrainingError("no examples")
    counts = Counter(str(label) for label in y)
    if "" in counts:
        raise TrainingError("an example has an empty label")
    if len(counts) < 2:
        raise TrainingError(
            f"only one label ({next(iter(counts))}): a classifier needs two or more"
        )
    scarce = sorted(label for label, n in counts.items() if n < 2)
    if scarce:
        raise TrainingError(f"labels with a single example (need two or more): {', '.join(scarce)}")
    return counts


def _char_codes(lowered: str, n_max: int) -> npt.NDArray[np.int64]:
    """Character 1..n_max-grams of lower-cased text, whitespace left out, as int64 codes.

    The code points of a gram packed 21 bits apiece: numpy builds, counts and
    looks them up without a Python step per gram. A longer gram's code is at
    least 2**21, so grams of different lengths never share a code.
    """
    joined = "".join(lowered.split()).encode("utf-32-le")
    points = np.frombuffer(joined, dtype="<u4").astype(np.int64)
    parts, gram = [points], points
    for n in range(2, n_max + 1):
        gram = (gram[:-1] << _CODE_BITS) | points[n - 1 :]
        parts.append(gram)
    return np.concatenate(parts)


def _normalised(weights: FloatArray) -> FloatArray:
    norm = float(np.sqrt(weights @ weights))
    return weights / norm if norm else weights


def _softmax(logits: FloatArray) -> FloatArray:
    shifted = np.exp(logits - logits.max())
    result: FloatArray = shifted / shifted.sum()
    return result


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _df(fraction: float, n_docs: int) -> float | int:
    # On a handful of examples a fraction drops words that simply recur: keep them all.
    return fraction if n_docs > 50 else 1.0


def _encode_terms(terms: Sequence[str]) -> npt.NDArray[np.uint8]:
    if any(_VOCAB_SEPARATOR in term for term in terms):
        raise ValueError("a vocabulary term contains a line break")
    return np.frombuffer(_VOCAB_SEPARATOR.join(terms).encode("utf-8"), dtype=np.uint8)


def _decode_terms(array: npt.NDArray[Any], count: int, what: str) -> tuple[str, ...]:
    if array.dtype != np.uint8 or array.ndim != 1:
        raise ModelFileError(f"{what} vocabulary has dtype {array.dtype}, expected uint8 text")
    try:
        text = array.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{what} vocabulary is not UTF-8: {exc}") from exc
    terms = tuple(text.split(_VOCAB_SEPARATOR)) if count else ()
    if len(terms) != count:
        raise ModelFileError(f"{what} vocabulary has {len(terms)} terms, header says {count}")
    return terms


def _char_vocabulary(array: npt.NDArray[Any], count: int) -> npt.NDArray[np.int64]:
    if array.dtype != np.int64 or array.ndim != 1:
        raise ModelFileError(f"character vocabulary has dtype {array.dtype}, expected int64 codes")
    if array.size != count:
        raise ModelFileError(f"character vocabulary has {array.size} codes, header says {count}")
    if array.size and (array[0] <= 0 or array[-1] >= 1 << (_CODE_BITS * MAX_CHAR_NGRAM)):
        raise ModelFileError("character vocabulary holds impossible codes")
    if (np.diff(array) <= 0).any():
        raise ModelFileError("character vocabulary is not sorted or lists a code twice")
    return array


def _ngram_max(header: dict[str, Any]) -> int:
    n = int(_number(header, "char_ngram_max", positive=True, integer=True))
    if n > MAX_CHAR_NGRAM:
        raise ModelFileError(f"header field 'char_ngram_max' is {n}, at most {MAX_CHAR_NGRAM}")
    return n


def _word_hmm(header: dict[str, Any]) -> bool:
    # Files written before the field existed were segmented with the HMM.
    value = header.get("word_hmm", True)
    if not isinstance(value, bool):
        raise ModelFileError(f"header field 'word_hmm' is {value!r}, expected true or false")
    return value


def _check(arrays: dict[str, npt.NDArray[Any]], name: str, shape: tuple[int, ...]) -> None:
    array = arrays[name]
    if array.dtype != np.float32:
        raise ModelFileError(f"array {name} has dtype {array.dtype}, expected float32")
    if array.shape != shape:
        raise ModelFileError(f"array {name} has shape {array.shape}, expected {shape}")
    if not np.isfinite(array).all():
        raise ModelFileError(f"array {name} holds NaN or infinite values")


def _count(header: dict[str, Any], key: str) -> int:
    return int(_number(header, key, integer=True))


def _number(
    header: dict[str, Any],
    key: str,
    *,
    positive: bool = False,
    integer: bool = False,
    at_most_one: bool = False,
) -> float:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelFileError(f"header field {key!r} is {value!r}, expected a number")
    if (
        not math.isfinite(value)
        or value < 0
        or (positive and value <= 0)
        or (integer and not isinstance(value, int))
        or (at_most_one and value > 1)
    ):
        raise ModelFileError(f"header field {key!r} has an impossible value {value!r}")
    return float(value)
