"""Data for the workbench: the named sets (STS-B, SNLI, captions, sentences) and your own files.

Named sets are looked for at an explicit ``path``, then in the folder named by the
``WORKBENCH_DATA`` environment variable (laid out like ``shared/data``), then on the Hugging
Face hub (skipped when ``HF_HUB_OFFLINE=1`` or ``HF_DATASETS_OFFLINE=1``, and quickly when the
hub cannot be reached), and last in a small built-in SAMPLE, announced with a
:class:`SampleDataWarning` because numbers measured on it mean nothing. ``source(ds)`` tells
which one a dataset came from.

TSV files are read with quote processing off: a quote character is literal text.

Modules: :mod:`.files` (reading a file, :class:`DataError`), :mod:`.sources` (data folder,
hub, provenance), :mod:`.sample` (the built-in sample), :mod:`.catalog` (the named sets).

Example:
    >>> import warnings
    >>> from workbench.data import load_stsb, source
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # without WORKBENCH_DATA this is the built-in sample
    ...     sts = load_stsb("test")
    >>> sts.column_names, 0.0 <= min(sts["score"]) <= max(sts["score"]) <= 1.0
    (['sentence1', 'sentence2', 'score'], True)
    >>> print(source(sts))  # doctest: +ELLIPSIS
    STS-B en test...
"""

from __future__ import annotations

from .catalog import (
    NLI_LABELS,
    SENTENCE_SOURCES,
    STSB_LANGUAGES,
    load_caption_pairs,
    load_nli_pairs,
    load_nli_triplets,
    load_sentences,
    load_stsb,
    load_wikisplit_pairs,
)
from .files import Records, load_file, read_records
from .sample import sample_file
from .sources import ENV_VAR, DataError, SampleDataWarning, Source, data_dir, hub_enabled, source

__all__ = [
    "ENV_VAR",
    "NLI_LABELS",
    "SENTENCE_SOURCES",
    "STSB_LANGUAGES",
    "DataError",
    "Records",
    "SampleDataWarning",
    "Source",
    "data_dir",
    "hub_enabled",
    "load_caption_pairs",
    "load_file",
    "load_nli_pairs",
    "load_nli_triplets",
    "load_sentences",
    "load_stsb",
    "load_wikisplit_pairs",
    "read_records",
    "sample_file",
    "source",
]
