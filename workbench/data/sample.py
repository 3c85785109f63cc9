"""The built-in SAMPLE: a few dozen hand-written rows per data set, for smoke tests only.

It lives in ``workbench/samples/`` (see the README there) and is the last fallback of every
``load_*`` function, after an explicit path, ``WORKBENCH_DATA`` and the hub. Using it always
emits a :class:`~workbench.data.sources.SampleDataWarning`, because a number measured on it
means nothing.

Example:
    >>> sample_file("sts").name
    'sts-sample.tsv'
"""

from __future__ import annotations

from pathlib import Path

from .sources import SAMPLES_DIR

SAMPLES = {
    "sts": "sts-sample.tsv",  # sentence1, sentence2, score (0–5)
    "nli-triplets": "nli-triplets-sample.tsv",  # anchor, positive, negative
    "captions": "captions-sample.tsv",  # image, caption1..caption5
    "sentences": "sentences-sample.tsv",  # source (wikipedia / misc), sentence
    "wikisplit": "wikisplit-sample.tsv",  # complex<TAB>split (no header, as WikiSplit's own files)
}


def sample_file(name: str) -> Path:
    """Path of a built-in sample file.

    Args:
        name: ``"sts"``, ``"nli-triplets"``, ``"captions"``, ``"sentences"`` or ``"wikisplit"``.

    Returns:
        The TSV's path inside the installed package.

    Raises:
        KeyError: no sample has that name.
    """
    if name not in SAMPLES:
        raise KeyError(f"no built-in sample named {name!r}; there are: {', '.join(SAMPLES)}")
    return SAMPLES_DIR / SAMPLES[name]
