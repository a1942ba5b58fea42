"""The trained engine: learns from examples, explains itself, and loads only safe model files.

The examples are synthetic (three first-level categories of the default desk,
built from phrase lists below): no test reads the measuring corpus.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import pickle
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.cli import main
from bot.startup import open_database
from nlp.model_file import read_arrays, write_arrays
from nlp.normalise import normalise
from nlp.trained import (
    MAX_EVIDENCE,
    TITLE_WEIGHT,
    ModelFileError,
    TrainedClassifier,
    TrainingError,
    load_model,
    save_model,
    train,
    with_titles,
)

PHRASES = {
    "环境保护": (
        ["化工厂", "造纸厂", "养猪场", "砖厂", "搅拌站", "洗砂场"],
        [
            "排放废气污染空气",
            "偷排污水臭气熏天",
            "粉尘污染严重",
            "焚烧垃圾浓烟滚滚",
            "废水流进河里",
        ],
    ),
    "交通运输": (
        ["公交车", "出租车", "长途客车", "地铁", "网约车", "班车"],
        ["班次太少等车太久", "司机拒载乘客", "票价上涨不合理", "线路绕路太远", "站台没有遮雨棚"],
    ),
    "教育文体": (
        ["小学", "幼儿园", "中学", "培训机构", "学校食堂", "体育馆"],
        ["乱收补课费", "学位紧张入学难", "老师体罚学生", "教材费用太高", "开放时间太短"],
    ),
}
PREFIXES = ["", "我要投诉", "反映一下", "希望领导关注", "请相关部门处理"]
# Combinations kept out of training, to see the engine generalise.
HELD_OUT = {
    "环境保护": "村口的砖厂焚烧垃圾浓烟滚滚",
    "交通运输": "这条线的班车票价上涨不合理",
    "教育文体": "我们这里的幼儿园教材费用太高",
}


def examples() -> tuple[list[str], list[str]]:
    """About forty short complaints per label, shuffled."""
    rows = []
    for label, (subjects, problems) in PHRASES.items():
        for (subject, problem), prefix in zip(
            itertools.product(subjects, problems), itertools.cycle(PREFIXES), strict=False
        ):
            if subject in HELD_OUT[label] and problem in HELD_OUT[label]:
                continue
            rows.append((f"{prefix}{subject}{problem}", label))
    random.Random(0).shuffle(rows)
    return [text for text, _ in rows], [label for _, label in rows]


@pytest.fixture(scope="module")
def model() -> TrainedClassifier:
    """One model for the module: training is the slow part."""
    return train(*examples())


@pytest.mark.parametrize(("label", "text"), HELD_OUT.items())
def test_unseen_complaints_get_their_label(model: TrainedClassifier, label: str, text: str) -> None:
    ranked = model.classify(text)
    assert ranked[0].category == label
    assert ranked[0].confidence > 0.5


def test_confidences_ranked_in_unit_interval_with_readable_evidence(
    model: TrainedClassifier,
) -> None:
    text = "小区旁边的化工厂排放废气污染空气，2024年3次反映了"
    ranked = model.classify(text)
    assert ranked[0].category == "环境保护"
    assert {s.category for s in ranked} == set(PHRASES)
    confidences = [s.confidence for s in ranked]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0 <= c <= 1 for c in confidences)
    assert sum(confidences) == pytest.approx(1, abs=0.01)
    evidence = ranked[0].evidence
    assert 0 < len(evidence) <= MAX_EVIDENCE
    for word in evidence:
        # Words of the text as jieba cut them: no digits, no lone characters, no n-gram debris.
        assert word in text
        assert re.fullmatch(r"[^\W\d_]{2,}", word)
    assert set(evidence) & {"化工厂", "废气", "污染", "排放", "空气"}


def test_text_with_nothing_known_gets_no_guess(model: TrainedClassifier) -> None:
    assert model.classify("") == []
    assert model.classify("qxzv") == []


def test_save_and_load_give_identical_answers(model: TrainedClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.name == "trained"
    assert loaded.labels == model.labels
    assert loaded.metadata == model.metadata
    for text in [*HELD_OUT.values(), "公交车和学校都有问题", "短"]:
        assert loaded.classify(text) == model.classify(text)


def test_training_needs_two_labels_and_matching_lengths() -> None:
    with pytest.raises(TrainingError, match="only one label"):
        train(["化工厂排放废气", "砖厂粉尘污染"], ["环境保护", "环境保护"])
    with pytest.raises(TrainingError, match="2 texts but 1 labels"):
        train(["化工厂排放废气", "公交车太少"], ["环境保护"])
    with pytest.raises(TrainingError, match="single example"):
        train(["化工厂排放废气", "砖厂粉尘", "公交车太少"], ["环境保护", "环境保护", "交通运输"])
    with pytest.raises(TrainingError, match="4 texts but 3 weights"):
        train(["化工厂排放废气", "砖厂粉尘", "公交车太少", "地铁太挤"], list("aabb"), [1, 1, 1])
    with pytest.raises(TrainingError, match="word_weight must be positive"):
        train(["化工厂排放废气", "砖厂粉尘", "公交车太少", "地铁太挤"], list("aabb"), word_weight=0)


def test_titles_become_half_weight_short_examples() -> None:
    texts, labels, weights = with_titles(
        ["路灯坏了。小区路灯坏了三天", "公交太少"], ["路灯坏了", ""], ["城乡建设", "交通运输"]
    )
    assert texts == ["路灯坏了。小区路灯坏了三天", "公交太少", "路灯坏了"]
    assert labels == ["城乡建设", "交通运输", "城乡建设"]
    assert weights == [1.0, 1.0, TITLE_WEIGHT]


def test_example_weights_change_what_is_learned() -> None:
    # Two contradicting examples of the same text: the heavier one wins.
    texts = ["噪音扰民影响休息", "噪音扰民影响休息", "公交车太少", "砖厂粉尘污染"]
    labels = ["环境保护", "交通运输", "交通运输", "环境保护"]
    for heavy, expected in ((0, "环境保护"), (1, "交通运输")):
        weights = [0.1, 0.1, 1.0, 1.0]
        weights[heavy] = 10.0
        model = train(texts, labels, weights, calibration_folds=2)
        assert model.classify("噪音扰民影响休息")[0].category == expected


# --- model files that must be refused -------------------------------------------------------


class _Exploit:
    """Unpickling this creates the marker file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _rewrite(source: Path, target: Path, **changes: Any) -> None:
    """Write ``source``'s model again with header fields or arrays replaced (checksum fixed up)."""
    header, arrays = read_arrays(source)
    for key, value in changes.items():
        if key in arrays:
            arrays[key] = value
        else:
            header[key] = value
    write_arrays(target, header, arrays)


@pytest.fixture
def saved(model: TrainedClassifier, tmp_path: Path) -> Path:
    """A valid model file."""
    path = tmp_path / "good.npz"
    save_model(model, path)
    return path


def test_truncated_file_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        load_model(bad)


def test_edited_array_fails_the_checksum(saved: Path, tmp_path: Path) -> None:
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["intercept"] = arrays["intercept"] + 1
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 99}, "format version 99"),
        ({"format": "something-else"}, "not a complaint-desk classifier"),
        ({"labels": ["a"]}, "two or more distinct"),
        ({"words": 3}, "header says 3"),
        ({"beta": -1.0}, "impossible value"),
        ({"beta": "1"}, "expected a number"),
        ({"char_ngram_max": 4}, "at most 3"),
        ({"word_hmm": "no"}, "expected true or false"),
        ({"coef": lambda a: a["coef"][:3]}, "array coef has shape"),
        ({"idf": lambda a: a["idf"].astype(np.float64)}, "dtype float64, expected float32"),
        ({"intercept": lambda a: a["intercept"] * np.nan}, "NaN"),
        ({"char_codes": lambda a: a["char_codes"].astype(np.float32)}, "expected int64 codes"),
        ({"char_codes": lambda a: a["char_codes"][::-1].copy()}, "not sorted"),
        # The last word dropped: one term fewer than the header and the arrays say.
        (
            {"word_terms": lambda a: a["word_terms"][: np.flatnonzero(a["word_terms"] == 10)[-1]]},
            "word vocabulary has",
        ),
    ],
)
def test_inconsistent_model_is_refused_with_the_reason(
    saved: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    _, arrays = read_arrays(saved)
    values = {k: v(arrays) if callable(v) else v for k, v in change.items()}
    bad = tmp_path / "bad.npz"
    _rewrite(saved, bad, **values)
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_model(bad)


def test_model_remembers_how_its_words_were_segmented(saved: Path, tmp_path: Path) -> None:
    assert load_model(saved)._arrays.word_hmm is False
    # A file written before the field existed was segmented with jieba's HMM.
    header, arrays = read_arrays(saved)
    del header["word_hmm"]
    older = tmp_path / "older.npz"
    write_arrays(older, header, arrays)
    assert load_model(older)._arrays.word_hmm is True


def test_pickle_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.npz"
    bad.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(bad)
    assert not marker.exists()


def test_object_array_inside_the_archive_is_never_unpickled(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.npz"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(saved) as good, zipfile.ZipFile(bad, "w") as out:
        for name in good.namelist():
            out.writestr(name, buffer.getvalue() if name == "coef.npy" else good.read(name))
    with pytest.raises(ModelFileError, match="not a model file"):
        load_model(bad)
    assert not marker.exists()


def test_other_files_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("这不是模型", encoding="utf-8")
    array = tmp_path / "array.npy"
    np.save(array, np.zeros(3))
    for path in (text, array):
        with pytest.raises(ModelFileError):
            load_model(path)
    with pytest.raises(ModelFileError, match="file not found"):
        load_model(tmp_path / "missing.npz")


# --- the command line -----------------------------------------------------------------------

LAST_LINE = re.compile(r"macro_f1=(\d\.\d{3}) accuracy=(\d\.\d{3}) docs_per_s=(\d+)")


def write_csv(path: Path) -> None:
    """The synthetic examples as a CSV; every third row has a title."""
    texts, labels = examples()
    lines = ["title,text,label"]
    for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
        title = text[-6:] if i % 3 == 0 else ""
        lines.append(f"{title},{text},{label}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def cli_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without the project's .env."""
    monkeypatch.chdir(tmp_path)
    for name in ("DESK_CONFIG", "DATABASE_URL", "CLASSIFIER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_train_then_eval_from_the_command_line(
    cli_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, model = cli_dir / "tickets.csv", cli_dir / "out" / "model.npz"
    write_csv(data)
    assert main(["train", "--data", str(data), "--out", str(model)]) == 0
    trained = capsys.readouterr().out
    assert re.search(r"环境保护\s+\d+", trained)
    assert f"model written to {model}" in trained
    assert load_model(model).labels == tuple(sorted(PHRASES))

    assert main(["eval", "--data", str(data), "--model", str(model)]) == 0
    report = capsys.readouterr().out.splitlines()
    assert "engine trained" in report[0]
    assert "confusion matrix" in "\n".join(report)
    found = LAST_LINE.fullmatch(report[-1])
    assert found is not None
    assert float(found[1]) >= 0.9
    assert int(found[3]) > 0


def test_eval_without_a_model_measures_the_keyword_engine(
    cli_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = cli_dir / "tickets.csv"
    write_csv(data)
    assert main(["eval", "--data", str(data)]) == 0
    report = capsys.readouterr().out.splitlines()
    assert "engine keywords" in report[0]
    assert LAST_LINE.fullmatch(report[-1])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"text,label\n", "no examples"),
        ("text,category\n学校收费,教育文体\n".encode(), "missing column 'label'"),
        ("text,label\n学校收费,教育文体\n,教育文体\n".encode(), ":3: empty text"),
        ("text,label\n学校收费,教育文体\n学位紧张,教育文体\n".encode(), "two or more labels"),
        ("text,label\n学校收费,教育文体\n".encode("gbk"), "not UTF-8"),
    ],
)
def test_unusable_training_file_is_one_line_and_exit_2(
    cli_dir: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    data = cli_dir / "tickets.csv"
    data.write_bytes(content)
    assert main(["train", "--data", str(data), "--out", str(cli_dir / "m.npz")]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert str(data) in error
    assert "Traceback" not in error
    assert not (cli_dir / "m.npz").exists()


def test_eval_with_a_bad_model_file_is_exit_2(
    cli_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, model = cli_dir / "tickets.csv", cli_dir / "model.npz"
    write_csv(data)
    model.write_bytes(b"PK\x03\x04 not really")
    assert main(["eval", "--data", str(data), "--model", str(model)]) == 2
    assert "damaged or truncated" in capsys.readouterr().err


def test_train_from_history_learns_from_the_desks_own_examples(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'desk.db'}"
    texts, labels = examples()

    async def store() -> None:
        database = await open_database(url)
        try:
            async with database.transaction() as uow:
                for text, label in zip(texts, labels, strict=True):
                    uow.examples.add(ticket_id=None, text=text, label=label, source="resolved")
        finally:
            await database.dispose()

    asyncio.run(store())
    out = tmp_path / "history.npz"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "train", "--from-history", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DATABASE_URL": url},
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"({len(texts)} rows from the desk's history)" in result.stdout
    model = load_model(out)
    label, text = next(iter(HELD_OUT.items()))
    assert model.classify(normalise(text))[0].category == label


def test_train_needs_data_or_history(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "train", "--out", str(tmp_path / "m.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "train needs --data FILE.csv, --from-history, or both" in result.stderr
