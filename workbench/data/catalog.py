"""The named data sets: STS-B, SNLI triplets and pairs, caption pairs, sentences.

Each ``load_*`` function returns a ``datasets.Dataset`` with the columns the trainers and
evaluators expect, looking for the data, in order, at ``path``, under ``WORKBENCH_DATA``, on
the hub, and last in the built-in sample (with a :class:`SampleDataWarning`).
``source(ds)`` says which one was used.

Example:
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     sts = load_stsb("test")
    >>> sts.column_names
    ['sentence1', 'sentence2', 'score']
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, Features, Value, concatenate_datasets

from .files import Records, is_number, read_records
from .sample import sample_file
from .sources import DataError, resolve

STSB_LANGUAGES = ("en", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
NLI_LABELS = ("entailment", "neutral", "contradiction")  # label ids as in sentence-transformers/all-nli
SENTENCE_SOURCES = {
    "wikipedia": "wikipedia-sentences/wikipedia-sentences.tsv",
    "misc": "misc-english-sentences/sentences.tsv",
    "captions": "multi30k-captions/captions-train.tsv",
}
_CAPTION_FILES = {"train": "train", "val": "val", "test": "test_2016"}
_SPLIT_ALIASES = {"validation": "dev", "val": "dev"}

STS_FEATURES = Features(
    {"sentence1": Value("string"), "sentence2": Value("string"), "score": Value("float64")}
)
TRIPLET_FEATURES = Features(
    {"anchor": Value("string"), "positive": Value("string"), "negative": Value("string")}
)
PAIR_FEATURES = Features({"anchor": Value("string"), "positive": Value("string")})
NLI_PAIR_FEATURES = Features(
    {"premise": Value("string"), "hypothesis": Value("string"), "label": ClassLabel(names=list(NLI_LABELS))}
)
SENTENCE_FEATURES = Features({"sentence": Value("string")})

PathLike = str | os.PathLike[str]


def load_stsb(split: str = "test", lang: str = "en", path: PathLike | None = None) -> Dataset:
    """STS Benchmark pairs with gold similarity scaled to 0–1.

    Args:
        split: ``"train"``, ``"dev"`` (``"validation"`` is accepted) or ``"test"``; the other
            languages than English have a test split only.
        lang: ``"en"`` or a machine-translated test set: de es fr it ja nl pl pt ru zh.
        path: a TSV file (``sentence1``, ``sentence2``, ``score`` in 0–5) or a folder laid out
            like ``shared/data`` (or the ``stsb`` folder itself).

    Returns:
        Columns ``sentence1``, ``sentence2``, ``score`` (float, the 0–5 gold score / 5, as in
        the hub's ``sentence-transformers/stsb``).

    Raises:
        ValueError: unknown split or language.
        DataError: the file is malformed, or a score is not a number in 0..5.
    """
    split = _split(split, ("train", "dev", "test"))
    if lang not in STSB_LANGUAGES:
        raise ValueError(f"unknown STS-B language {lang!r}; choose from {', '.join(STSB_LANGUAGES)}")
    if lang != "en" and split != "test":
        raise ValueError(f"STS-B {lang} has a test split only (the machine-translated sets); got {split!r}")

    def hub() -> Dataset:
        from datasets import load_dataset

        if lang == "en":
            hub_split = "validation" if split == "dev" else split
            ds = load_dataset("sentence-transformers/stsb", split=hub_split)  # score already 0–1
        else:
            ds = load_dataset("PhilipMay/stsb_multi_mt", lang, split=split)
            ds = ds.map(lambda r: {"score": r["similarity_score"] / 5.0})
        return ds.select_columns(list(STS_FEATURES)).cast(STS_FEATURES)

    hub_id = "sentence-transformers/stsb" if lang == "en" else "PhilipMay/stsb_multi_mt"
    return resolve(
        f"STS-B {lang} {split}", "pairs", [f"stsb/stsb-{lang}-{split}.tsv"], path,
        read=lambda files: _read_sts(files[0]),
        hub=(hub_id, hub),
        sample=lambda: (_read_sts(sample_file("sts")), [sample_file("sts")]),
        real="STS-B",
    )  # fmt: skip


def load_nli_triplets(split: str = "dev", path: PathLike | None = None) -> Dataset:
    """SNLI (anchor, positive, negative) triplets: premise, an entailed and a contradicting hypothesis.

    Args:
        split: ``"dev"``, ``"test"`` or ``"all"`` (every split the source has: dev+test
            locally; train+dev+test of ``sentence-transformers/all-nli`` on the hub).
        path: a TSV with ``anchor``, ``positive``, ``negative`` or a folder laid out like
            ``shared/data``.

    Returns:
        Columns ``anchor``, ``positive``, ``negative``.
    """
    splits = _nli_splits(split)

    def hub() -> Dataset:
        from datasets import load_dataset

        hub_splits = ["train", "dev", "test"] if split == "all" else splits
        parts = [load_dataset("sentence-transformers/all-nli", "triplet", split=s) for s in hub_splits]
        return concatenate_datasets(parts).select_columns(list(TRIPLET_FEATURES))

    return resolve(
        f"SNLI triplets {split}", "triplets", [f"snli/snli-{s}-triplets.tsv" for s in splits], path,
        read=lambda files: _concat([_read_texts(f, TRIPLET_FEATURES) for f in files]),
        hub=("sentence-transformers/all-nli", hub),
        sample=lambda: (_read_texts(sample_file("nli-triplets"), TRIPLET_FEATURES), [sample_file("nli-triplets")]),
        real="SNLI triplets",
    )  # fmt: skip


def load_nli_pairs(split: str = "dev", path: PathLike | None = None) -> Dataset:
    """SNLI (premise, hypothesis, label) pairs; rows without a gold label (``-``) are dropped.

    Args:
        split: ``"dev"``, ``"test"`` or ``"all"`` (as in :func:`load_nli_triplets`).
        path: a TSV with ``premise``, ``hypothesis``, ``label`` or a folder like ``shared/data``.

    Returns:
        Columns ``premise``, ``hypothesis``, ``label`` (class ids: 0 entailment, 1 neutral,
        2 contradiction, as in ``sentence-transformers/all-nli`` "pair-class").
    """
    splits = _nli_splits(split)

    def hub() -> Dataset:
        from datasets import load_dataset

        hub_splits = ["train", "dev", "test"] if split == "all" else splits
        parts = [load_dataset("sentence-transformers/all-nli", "pair-class", split=s) for s in hub_splits]
        return concatenate_datasets(parts).select_columns(list(NLI_PAIR_FEATURES))

    return resolve(
        f"SNLI pairs {split}", "pairs", [f"snli/snli-{s}-pairs.tsv" for s in splits], path,
        read=lambda files: _concat([_read_nli_pairs(f) for f in files]),
        hub=("sentence-transformers/all-nli", hub),
        sample=lambda: (_sample_nli_pairs(), [sample_file("nli-triplets")]),
        real="SNLI pairs",
    )  # fmt: skip


def load_caption_pairs(
    split: str = "train", path: PathLike | None = None, pairs_per_image: int = 2
) -> Dataset:
    """(anchor, positive) pairs of two different captions of the same image (Multi30k/Flickr30k).

    Pairs are chosen deterministically: with captions c0..c4, pair k of an image is taken
    from (c0,c1), (c1,c2), (c2,c3), (c3,c4), (c4,c0), (c0,c2), (c1,c3), ... so each caption is
    an anchor once before any is used twice. Rows are ordered pair-round first (pair 0 of
    every image, then pair 1, ...), so an unshuffled batch rarely holds two captions of one
    image (they would be false in-batch negatives for MultipleNegativesRankingLoss).

    Args:
        split: ``"train"``, ``"val"`` (``"dev"``/``"validation"`` accepted) or ``"test"``
            (the 2016 test set).
        path: a TSV with ``image``, ``caption1`` ... or a folder laid out like ``shared/data``.
        pairs_per_image: pairs per image, 1 to 10 for five captions (images with fewer
            captions give fewer).

    Returns:
        Columns ``anchor``, ``positive``.
    """
    split = {"dev": "val", "validation": "val", "test_2016": "test"}.get(split, split)
    if split not in _CAPTION_FILES:
        raise ValueError(f"unknown caption split {split!r}; choose from {', '.join(_CAPTION_FILES)}")
    if pairs_per_image < 1:
        raise ValueError(f"pairs_per_image must be at least 1, got {pairs_per_image}")
    return resolve(
        f"caption pairs {split}", "pairs", [f"multi30k-captions/captions-{_CAPTION_FILES[split]}.tsv"], path,
        read=lambda files: _caption_pairs(files[0], pairs_per_image),
        hub=None,  # no hub copy with five captions per image is known to us
        sample=lambda: (_caption_pairs(sample_file("captions"), pairs_per_image), [sample_file("captions")]),
        real="Multi30k captions",
    )  # fmt: skip


def load_wikisplit_pairs(split: str = "all", path: PathLike | None = None) -> Dataset:
    """(anchor, positive) pairs from WikiSplit: a long Wikipedia sentence and the same content split in two.

    The two sides say the same thing in nearly the same words, so the pairs teach which words go
    together in encyclopedic text (the captions and SNLI cover other vocabulary). The files are
    WikiSplit's own (``wikipedia-sentences/raw/wiki-split-*.tsv``: ``complex<TAB>split``, no header,
    the split's sentences joined by ``<::::>``), read with quoting off; the positive is the split's
    sentences joined by a space.

    Args:
        split: ``"tune"``, ``"validation"``, ``"test"`` (5,000 pairs each) or ``"all"``.
        path: one such file, or a folder laid out like ``shared/data``.

    Returns:
        Columns ``anchor``, ``positive``.
    """
    splits = ["tune", "validation", "test"] if split == "all" else [split]
    if any(s not in ("tune", "validation", "test") for s in splits):
        raise ValueError(f"unknown WikiSplit split {split!r}; choose tune, validation, test or all")
    return resolve(
        f"WikiSplit pairs {split}", "pairs", [f"wikipedia-sentences/raw/wiki-split-{s}.tsv" for s in splits], path,
        read=lambda files: _wikisplit_pairs(files),
        hub=None,  # the hub copies differ in layout; the local files are WikiSplit's own
        sample=lambda: (_wikisplit_pairs([sample_file("wikisplit")]), [sample_file("wikisplit")]),
        real="WikiSplit",
    )  # fmt: skip


def _wikisplit_pairs(files: list[Path]) -> Dataset:
    anchors: list[str] = []
    positives: list[str] = []
    for file in files:
        with open(file, encoding="utf-8", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                    raise DataError(f"{file}, line {number}: expected 'complex sentence<TAB>split sentences', "
                                    f"got {len(fields)} field(s)")
                anchors.append(fields[0].strip())
                positives.append(" ".join(part.strip() for part in fields[1].split("<::::>") if part.strip()))
    return Dataset.from_dict({"anchor": anchors, "positive": positives}, features=PAIR_FEATURES)


def load_sentences(
    sources: Sequence[str] = ("wikipedia", "misc", "captions"),
    limit: int | None = None,
    seed: int | None = 0,
    path: PathLike | None = None,
) -> Dataset:
    """Unlabelled English sentences for distillation, deduplicated.

    Args:
        sources: any of ``"wikipedia"``, ``"misc"`` (reviews, questions, opinions) and
            ``"captions"`` (every caption of Multi30k train).
        limit: keep at most this many sentences.
        seed: shuffle with this seed (mixing the sources) before ``limit``; ``None`` keeps
            file order.
        path: a TSV/CSV/JSONL/Parquet file with a ``sentence`` column (or ``caption*``
            columns), or a folder laid out like ``shared/data``.

    Returns:
        One column, ``sentence``.
    """
    sources = tuple(sources)
    unknown = [s for s in sources if s not in SENTENCE_SOURCES]
    if unknown or not sources:
        raise ValueError(f"unknown sentence sources {unknown}; choose from {', '.join(SENTENCE_SOURCES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")

    def hub() -> Dataset:
        from datasets import load_dataset

        hub_id = "sentence-transformers/wikipedia-en-sentences"  # 7.87M sentences
        if limit is None:
            ds = load_dataset(hub_id, split="train").select_columns(["sentence"])
            return ds if seed is None else ds.shuffle(seed=seed)
        # Streaming reads only the first shards instead of downloading every sentence.
        stream = load_dataset(hub_id, split="train", streaming=True)
        return _sentences([row["sentence"] for row in stream.take(limit)], limit, seed)

    def sample() -> tuple[Dataset, list[Path]]:
        files = [sample_file("sentences")] if set(sources) - {"captions"} else []
        texts: list[str] = []
        for file in files:
            records = read_records(file, ("source", "sentence"))
            texts += [
                t
                for s, t in zip(records.data["source"], _texts(records, "sentence"), strict=True)
                if s in sources
            ]
        if "captions" in sources:
            files.append(sample_file("captions"))
            texts += _texts_of(read_records(sample_file("captions")))
        return _sentences(texts, limit, seed), files

    return resolve(
        f"sentences ({'+'.join(sources)})", "sentences", [SENTENCE_SOURCES[s] for s in sources], path,
        read=lambda files: _sentences([t for f in files for t in _texts_of(read_records(f))], limit, seed),
        hub=("sentence-transformers/wikipedia-en-sentences", hub),
        sample=sample,
        real="sentences",
    )  # fmt: skip


# --- splits, reading and checking ------------------------------------------------------------


def _split(split: str, allowed: Sequence[str]) -> str:
    split = _SPLIT_ALIASES.get(split, split)
    if split not in allowed:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(allowed)}")
    return split


def _nli_splits(split: str) -> list[str]:
    split = _split(split, ("train", "dev", "test", "all"))
    return ["dev", "test"] if split == "all" else [split]


def _texts(records: Records, column: str) -> list[str]:
    values = records.data[column]
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise records.error(i, f"{column} should be text, found {type(value).__name__} {value!r}")
        if not value.strip():
            raise records.error(i, f"{column} is empty")
    return values


def _score(records: Records, index: int, value: Any, low: float = 0.0, high: float = 5.0) -> float:
    # JSON true/false and text such as "1_0" would pass float(); a score is a plain number.
    if isinstance(value, bool) or (isinstance(value, str) and not is_number(value)):
        raise records.error(index, f"score {value!r} is not a number")
    try:
        score = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON integer beyond float range
        raise records.error(index, f"score {value!r:.40} is not a number") from None
    if not math.isfinite(score):
        raise records.error(index, f"score is {value!r}; it must be a finite number in {low:g}..{high:g}")
    if not low <= score <= high:
        raise records.error(
            index, f"score {score:g} is outside {low:g}..{high:g} (STS gold scores run 0 to 5)"
        )
    return score


def _read_sts(file: Path) -> Dataset:
    records = read_records(file, list(STS_FEATURES))
    scores = [_score(records, i, v) / 5.0 for i, v in enumerate(records.data["score"])]
    data = {
        "sentence1": _texts(records, "sentence1"),
        "sentence2": _texts(records, "sentence2"),
        "score": scores,
    }
    return Dataset.from_dict(data, features=STS_FEATURES)


def _read_texts(file: Path, features: Features) -> Dataset:
    records = read_records(file, list(features))
    return Dataset.from_dict({c: _texts(records, c) for c in features}, features=features)


def _read_nli_pairs(file: Path) -> Dataset:
    records = read_records(file, ["premise", "hypothesis", "label"])
    premises, hypotheses = _texts(records, "premise"), _texts(records, "hypothesis")
    keep: list[int] = []
    labels: list[int] = []
    for i, label in enumerate(records.data["label"]):
        if label == "-":  # SNLI: annotators did not agree on a gold label
            continue
        if label not in NLI_LABELS:
            raise records.error(i, f"label {label!r} is not one of {', '.join(NLI_LABELS)} or '-'")
        keep.append(i)
        labels.append(NLI_LABELS.index(label))
    data = {
        "premise": [premises[i] for i in keep],
        "hypothesis": [hypotheses[i] for i in keep],
        "label": labels,
    }
    return Dataset.from_dict(data, features=NLI_PAIR_FEATURES)


def _sample_nli_pairs() -> Dataset:
    records = read_records(sample_file("nli-triplets"), list(TRIPLET_FEATURES))
    anchors = _texts(records, "anchor")
    data = {
        "premise": anchors + anchors,
        "hypothesis": _texts(records, "positive") + _texts(records, "negative"),
        "label": [0] * len(anchors) + [2] * len(anchors),
    }
    return Dataset.from_dict(data, features=NLI_PAIR_FEATURES)


def _caption_columns(records: Records) -> list[str]:
    columns = [c for c in records.columns if c.startswith("caption")]
    if len(columns) < 2:
        raise DataError(
            f"{records.path}: expected two or more caption columns (caption1, caption2, ...); "
            f"columns found: {', '.join(map(repr, records.columns))}"
        )
    return columns


def _caption_pairs(file: Path, pairs_per_image: int) -> Dataset:
    records = read_records(file)
    columns = _caption_columns(records)
    n = len(columns)
    # All unordered pairs, by offset: (k, k+1) for every k, then (k, k+2), ...
    order: list[tuple[int, int]] = []
    for offset in range(1, n):
        for k in range(n):
            pair = (k, (k + offset) % n)
            if pair not in order and pair[::-1] not in order:
                order.append(pair)
    images = [[records.data[c][i] for c in columns] for i in range(len(records))]
    images = [[str(t) for t in caps if isinstance(t, str) and t.strip()] for caps in images]
    anchors: list[str] = []
    positives: list[str] = []
    for a, b in order[:pairs_per_image]:
        for caps in images:
            if a < len(caps) and b < len(caps):
                anchors.append(caps[a])
                positives.append(caps[b])
    return Dataset.from_dict({"anchor": anchors, "positive": positives}, features=PAIR_FEATURES)


def _texts_of(records: Records) -> list[str]:
    """The sentences of a file: its ``sentence`` column, else its ``caption*`` columns."""
    if "sentence" in records.data:
        return _texts(records, "sentence")
    if any(c.startswith("caption") for c in records.columns):
        columns = _caption_columns(records)
        return [t for c in columns for t in records.data[c] if isinstance(t, str) and t.strip()]
    raise DataError(
        f"{records.path}, line 1 (header): missing column 'sentence' (or caption1, caption2, ...); "
        f"columns found: {', '.join(map(repr, records.columns))}"
    )


def _sentences(texts: list[str], limit: int | None, seed: int | None) -> Dataset:
    unique = list(dict.fromkeys(t.strip() for t in texts if t.strip()))  # keeps first occurrence
    if seed is not None:
        random.Random(seed).shuffle(unique)
    if limit is not None:
        unique = unique[:limit]
    return Dataset.from_dict({"sentence": unique}, features=SENTENCE_FEATURES)


def _concat(parts: list[Dataset]) -> Dataset:
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)
