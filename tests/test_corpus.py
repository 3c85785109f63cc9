"""encode_corpus: equal to model.encode for every source type, bounded memory, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from workbench.corpus import ChunkDone, TextSource, encode_corpus

N, CHUNK = 300, 64  # five chunks, the last one partial


@pytest.fixture(scope="module")
def tiny(tiny_bert):
    return tiny_bert(layers=2)


def _texts(n: int = N) -> list[str]:
    # Lengths vary within and across chunks, so a chunk is reordered by length inside encode.
    words = ["river", "bright", "a", "dog", "runs", "quietly", "over", "the", "hill", "tonight"]
    return [f"{i}: " + " ".join(words[(i * 7 + k) % len(words)] for k in range(1 + (i * 5) % 17)) for i in range(n)]


@pytest.fixture(scope="module")
def reference(tiny):
    return tiny.encode(_texts())


def _write_sources(folder: Path, texts: list[str]) -> dict[str, Path]:
    paths = {"txt": folder / "s.txt", "tsv": folder / "s.tsv", "csv": folder / "s.csv",
             "jsonl": folder / "s.jsonl", "parquet": folder / "s.parquet"}
    # blank lines are skipped, as `workbench encode --file` does; \r\n endings are removed
    paths["txt"].write_text("\r\n".join(texts[:10]) + "\n\n" + "\n".join(texts[10:]) + "\n", encoding="utf-8")
    paths["tsv"].write_text("id\tsentence\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)), encoding="utf-8")
    paths["csv"].write_text("sentence,id\n" + "".join(f'"{t}",{i}\n' for i, t in enumerate(texts)), encoding="utf-8")
    paths["jsonl"].write_text("".join(json.dumps({"sentence": t, "id": i}) + "\n" for i, t in enumerate(texts)),
                              encoding="utf-8")
    pq.write_table(pa.table({"id": list(range(len(texts))), "sentence": texts}), paths["parquet"], row_group_size=100)
    return paths


def _sources(tmp_path: Path) -> dict[str, object]:
    texts = _texts()
    files = _write_sources(tmp_path, texts)
    ds = datasets.Dataset.from_dict({"id": list(range(N)), "sentence": texts})
    shuffled = ds.shuffle(seed=1)
    return {
        "list": texts,
        "dataset": ds,
        # rows through an indices mapping (back in the original order), not in the table's order
        "dataset-indices": shuffled.select(np.argsort(shuffled["id"])),
        "iterable_dataset": ds.to_iterable_dataset(num_shards=3),
        "generator": (t for t in texts),
        **{k: str(v) for k, v in files.items()},
    }


def test_every_source_type_equals_model_encode(tiny, reference, tmp_path):
    for name, source in _sources(tmp_path).items():
        total = N if name == "generator" else None
        result = encode_corpus(tiny, source, tmp_path / f"{name}.npy", chunk_size=CHUNK, total=total, progress=False)
        emb = result.array()
        assert emb.shape == (N, tiny.dim) and emb.dtype == np.float32, name
        assert np.abs(emb - reference).max() <= 1e-5, name  # and so in input order across chunks
        assert (result.rows, result.encoded, result.reused, result.workers) == (N, N, 0, 1), name
        # nothing left beside the output
        assert sorted(p.name for p in tmp_path.glob(f"{name}.npy*")) == [f"{name}.npy"], name


def test_chunk_events_and_options(tiny, reference, tmp_path):
    events: list[ChunkDone] = []
    result = encode_corpus(tiny, _texts(), tmp_path / "e.npy", chunk_size=CHUNK, normalize=True,
                           callbacks=[events.append], progress=False)
    assert [e.chunk for e in events] == [0, 1, 2, 3, 4]
    assert [e.rows for e in events] == [64, 64, 64, 64, 44]
    assert [e.done for e in events] == [64, 128, 192, 256, 300] and all(e.encoded for e in events)
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    assert np.abs(result.array() - unit).max() <= 1e-5
    # a plain function is an encoder too; its size is found by encoding one probe text
    result = encode_corpus(lambda t: np.array([[len(s), 1.0] for s in t]), ["a", "bb", "ccc"], tmp_path / "f.npy",
                           chunk_size=2)
    assert result.array().tolist() == [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    empty = encode_corpus(tiny, [], tmp_path / "g.npy")
    assert empty.array().shape == (0, tiny.dim)


class _Stop(Exception):
    pass


def _counting(model, monkeypatch) -> list[int]:
    """Record how many texts each call of model.encode gets."""
    calls: list[int] = []
    encode = model.encode

    def counted(texts, **kwargs):
        calls.append(len(texts))
        return encode(texts, **kwargs)

    monkeypatch.setattr(model, "encode", counted)
    return calls


def test_interrupted_run_resumes_without_re_encoding_finished_chunks(tiny, reference, tmp_path, monkeypatch):
    out = tmp_path / "e.npy"

    def stop_after_two(event: ChunkDone) -> None:
        if event.chunk == 1:
            raise _Stop

    calls = _counting(tiny, monkeypatch)
    with pytest.raises(_Stop):
        encode_corpus(tiny, _texts(), out, chunk_size=CHUNK, callbacks=[stop_after_two], progress=False)
    assert not out.exists() and sum(calls) == 128
    progress = json.loads(out.with_name("e.npy.progress.json").read_text())
    assert sorted(progress["done"]) == ["0", "1"] and progress["rows"] == N

    calls.clear()
    events: list[ChunkDone] = []
    result = encode_corpus(tiny, _texts(), out, chunk_size=CHUNK, callbacks=[events.append], progress=False)
    assert sum(calls) == N - 128 == result.encoded and result.reused == 128
    assert [(e.chunk, e.encoded) for e in events] == [(0, False), (1, False), (2, True), (3, True), (4, True)]
    assert np.abs(result.array() - reference).max() <= 1e-5


def test_resume_re_encodes_a_chunk_whose_texts_changed_and_restarts_on_other_settings(tiny, tmp_path, monkeypatch):
    out = tmp_path / "e.npy"
    texts = _texts()

    def stop(event: ChunkDone) -> None:
        if event.chunk == 2:
            raise _Stop

    with pytest.raises(_Stop):
        encode_corpus(tiny, texts, out, chunk_size=CHUNK, callbacks=[stop], progress=False)
    changed = list(texts)
    changed[70] = "a text that was not there before"  # in chunk 1
    calls = _counting(tiny, monkeypatch)
    result = encode_corpus(tiny, changed, out, chunk_size=CHUNK, progress=False)
    assert (result.encoded, result.reused) == (N - 128, 128)  # chunks 1, 3, 4 encoded; 0 and 2 kept
    assert np.abs(result.array() - tiny.encode(changed)).max() <= 1e-5

    with pytest.raises(_Stop):
        encode_corpus(tiny, texts, out, chunk_size=CHUNK, callbacks=[stop], progress=False)
    calls.clear()
    with pytest.warns(UserWarning, match="other settings.*settings"):
        result = encode_corpus(tiny, texts, out, chunk_size=CHUNK, normalize=True, progress=False)
    assert result.encoded == N == sum(calls)

    with pytest.raises(_Stop):
        encode_corpus(tiny, texts, out, chunk_size=CHUNK, callbacks=[stop], progress=False)
    assert encode_corpus(tiny, texts, out, chunk_size=CHUNK, resume=False, progress=False).encoded == N


def test_a_generator_is_read_once_and_one_chunk_ahead_at_most(tiny, tmp_path):
    texts = _texts()
    pulled = [0]

    def generate():
        for t in texts:
            pulled[0] += 1
            yield t

    seen: list[tuple[int, int]] = []
    result = encode_corpus(tiny, generate(), tmp_path / "e.npy", chunk_size=CHUNK, total=N,
                           callbacks=[lambda e: seen.append((e.chunk, pulled[0]))], progress=False)
    assert result.rows == N
    for chunk, count in seen[:-1]:
        assert count <= (chunk + 1) * CHUNK  # never read further than the chunk being written
    with pytest.raises(ValueError, match="total="):
        encode_corpus(tiny, (t for t in texts), tmp_path / "f.npy")
    with pytest.raises(ValueError, match="ended after 300 texts; 310"):
        encode_corpus(tiny, (t for t in texts), tmp_path / "g.npy", chunk_size=CHUNK, total=N + 10)
    with pytest.raises(ValueError, match="more than the 290"):
        encode_corpus(tiny, (t for t in texts), tmp_path / "h.npy", chunk_size=CHUNK, total=N - 10)
    with pytest.raises(ValueError, match="cannot be split across processes"):
        encode_corpus(tiny, (t for t in texts), tmp_path / "i.npy", chunk_size=CHUNK, total=N, num_workers=2)


def test_file_sources_stream_in_bounded_memory(tmp_path):
    """Reading a 30k-line file a chunk at a time holds far less than the list of its texts would."""
    texts = [f"line {i} of a file that is much larger than one chunk of it, padded to some length" for i in range(30_000)]
    paths = _write_sources(tmp_path, texts)

    def constant(batch: list[str]) -> np.ndarray:
        return np.ones((len(batch), 4), dtype=np.float32)

    tracemalloc.start()
    whole = [line for line in paths["txt"].read_text(encoding="utf-8").splitlines() if line]  # noqa: F841
    _, full = tracemalloc.get_traced_memory()
    del whole
    tracemalloc.stop()
    for kind, path in paths.items():
        tracemalloc.start()
        result = encode_corpus(constant, path, tmp_path / f"{kind}.npy", chunk_size=500, progress=False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.rows == 30_000, kind
        assert peak < 0.25 * full, (kind, peak, full)


def test_source_errors(tmp_path):
    (tmp_path / "t.tsv").write_text("id\ttext\n1\ta\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column 'sentence'.*id, text"):
        TextSource(str(tmp_path / "t.tsv"))
    assert list(TextSource(str(tmp_path / "t.tsv"), column="text").chunks(10)) == [(0, ["a"])]
    with pytest.raises(ValueError, match="unknown file type"):
        TextSource(str(tmp_path / "t.docx"))
    with pytest.raises(TypeError, match="text 1 is int"):
        list(TextSource(["a", 3]).chunks(10))
    one_column = datasets.Dataset.from_dict({"text": ["x", "y"]})
    assert list(TextSource(one_column).chunks(1)) == [(0, ["x"]), (1, ["y"])]


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from workbench import load_model
    from workbench.corpus import encode_corpus

    model = load_model(sys.argv[1], device="cpu")  # the test's tiny model, saved

    def kill(event):
        if event.chunk == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind runs

    encode_corpus(model, sys.argv[2], sys.argv[3], chunk_size=64, callbacks=[kill], progress=False)
""")


@pytest.mark.slow
def test_sigkill_then_resume(tiny, reference, tmp_path, monkeypatch):
    source = tmp_path / "s.txt"
    source.write_text("\n".join(_texts()) + "\n", encoding="utf-8")
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT, encoding="utf-8")
    out = tmp_path / "e.npy"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    saved = tiny.save(tmp_path / "tiny")
    killed = subprocess.run([sys.executable, str(script), str(saved), str(source), str(out)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not out.exists()
    calls = _counting(tiny, monkeypatch)
    result = encode_corpus(tiny, str(source), out, chunk_size=64, progress=False)
    assert (result.reused, result.encoded, sum(calls)) == (192, N - 192, N - 192)
    assert np.abs(result.array() - reference).max() <= 1e-5


@pytest.mark.slow
def test_worker_processes_split_the_chunks(tiny, reference, tmp_path):
    threads = torch.get_num_threads()
    events: list[ChunkDone] = []
    result = encode_corpus(tiny, _texts(), tmp_path / "e.npy", chunk_size=CHUNK, num_workers=2,
                           callbacks=[events.append], progress=False)
    assert result.workers == 2 and result.encoded == N
    assert sorted(e.chunk for e in events) == [0, 1, 2, 3, 4]
    assert np.abs(result.array() - reference).max() <= 1e-5
    assert torch.get_num_threads() == threads  # the workers' thread setting stays in the workers
    # a worker that fails is reported with its traceback, and the finished chunks are kept
    bad = _texts()
    bad[200] = None  # chunk 3, worker 1
    with pytest.raises(RuntimeError, match="(?s)worker 1.*text 200 is NoneType"):
        encode_corpus(tiny, bad, tmp_path / "f.npy", chunk_size=CHUNK, num_workers=2, progress=False)


def test_cli_encode_corpus(minilm_path, tmp_path, capsys):
    from workbench import cli, load_model

    texts = _texts(20)
    (tmp_path / "s.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    argv = ["encode-corpus", str(tmp_path / "s.txt"), "--out", str(tmp_path / "e.npy"), "--model", str(minilm_path),
            "--chunk-size", "8", "--max-seq-length", "32", "--device", "cpu", "--quiet"]
    assert cli.main(argv) == 0
    assert "encoded 20 texts" in capsys.readouterr().out
    model = load_model(minilm_path, device="cpu")
    model.max_seq_length = 32
    assert np.abs(np.load(tmp_path / "e.npy") - model.encode(texts)).max() <= 1e-5
    assert cli.main(["encode-corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "f.npy")]) == 2
