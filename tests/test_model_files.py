"""Damaged, inconsistent or unsafe model folders fail with one line naming the file (issue 12).

Each case builds a small sentence-transformers folder (Transformer, Pooling, Dense, Normalize),
breaks one file, and checks that loading raises :class:`ModelFileError` (a ``ValueError``, so the
CLI prints ``workbench CMD: error: MESSAGE`` and exits 2) with a one-line message naming the path,
before anything large is allocated. The last section checks that saved files get the user's umask.
See docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from workbench import build_model, load_model
from workbench.atomic import atomic_write_text, current_umask
from workbench.cli import main
from workbench.models import Dense, ModelFileError

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["a cat sits on the mat", "Émilie 🥞"]


@pytest.fixture(scope="module")
def st_folder(tmp_path_factory, tiny_bert) -> Path:
    """Transformer (hidden 32) -> Pooling -> Dense(32 -> 16) -> Normalize, random weights."""
    return tiny_bert(layers=1, dense=16, normalize=True).save(tmp_path_factory.mktemp("st") / "model")


@pytest.fixture
def folder(st_folder, tmp_path) -> Path:
    """A fresh copy to break."""
    return Path(shutil.copytree(st_folder, tmp_path / "model", symlinks=True))


def _refused(folder: Path, *names: str) -> str:
    """Loading raises ModelFileError, one line, naming the folder (and each of ``names``); returns the message."""
    with pytest.raises(ModelFileError) as err:
        load_model(folder, device="cpu")
    msg = str(err.value)
    assert "\n" not in msg, msg
    assert str(folder) in msg, msg
    for name in names:
        assert name in msg, msg
    return msg


def _edit_json(path: Path, **changes) -> None:
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del cfg[key]
    path.write_text(json.dumps(cfg))


def test_a_good_folder_loads(folder):
    assert load_model(folder, device="cpu").encode(TEXTS).shape == (2, 16)


# ----- 1. truncated or corrupt files ----------------------------------------------------------------

@pytest.mark.parametrize("weights", ["model.safetensors", "2_Dense/model.safetensors"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "cut-header"])
def test_truncated_or_empty_safetensors_is_one_line(weights, damage, folder):
    file = folder / weights
    data = file.read_bytes()
    file.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "cut-header": data[:20]}[damage])
    msg = _refused(folder, weights, "truncated or corrupt", "download it again")
    assert msg.startswith(str(file))


@pytest.mark.parametrize("name", ["1_Pooling/config.json", "2_Dense/config.json", "config.json", "tokenizer.json",
                                  "tokenizer_config.json", "sentence_bert_config.json", "modules.json",
                                  "config_sentence_transformers.json"])
@pytest.mark.parametrize("text", ["", '{"in_features": 32,', "\x00\x01"])
def test_a_config_that_is_not_json_is_one_line(name, text, folder):
    (folder / name).write_text(text)
    msg = _refused(folder, name)
    assert "JSON" in msg or "empty" in msg


@pytest.mark.parametrize("name", ["1_Pooling/config.json", "2_Dense/config.json", "config.json",
                                  "sentence_bert_config.json", "config_sentence_transformers.json"])
def test_a_config_that_is_not_an_object_is_one_line(name, folder):
    (folder / name).write_text("[1, 2]")
    _refused(folder, name)


@pytest.mark.parametrize(("name", "changes", "says"), [
    ("sentence_bert_config.json", {"max_seq_length": "long"}, "max_seq_length"),
    ("sentence_bert_config.json", {"do_lower_case": "no"}, "do_lower_case"),
    ("config_sentence_transformers.json", {"prompts": ["query: "]}, "prompts"),
    ("config_sentence_transformers.json", {"default_prompt_name": "query"}, "default_prompt_name"),
    ("config_sentence_transformers.json", {"similarity_fn_name": "jaccard"}, "jaccard"),
    ("1_Pooling/config.json", {"word_embedding_dimension": "32"}, "positive integer"),
    ("1_Pooling/config.json", {"pooling_mode": "median"}, "median"),
    ("1_Pooling/config.json", {"pooling_mode": 3}, "pooling_mode"),
    ("2_Dense/config.json", {"in_features": 32.0}, "in_features"),
    ("2_Dense/config.json", {"bias": "yes"}, "bias"),
    ("2_Dense/config.json", {"activation_function": "os.system"}, "unknown activation"),
])
def test_a_bad_value_in_a_config_is_one_line(name, changes, says, folder):
    _edit_json(folder / name, **changes)
    _refused(folder, name, says)


def test_the_cli_prints_one_line_and_exits_2(folder, tmp_path, capsys):
    (folder / "2_Dense" / "model.safetensors").write_bytes(b"")
    out = tmp_path / "e.npy"
    assert main(["encode", "hello", "--model", str(folder), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("workbench encode: error: ")
    assert "2_Dense/model.safetensors is truncated or corrupt" in err
    assert not out.exists()


# ----- 2. configs that disagree with the weights, refused before allocating -------------------------

def test_a_huge_dense_config_is_refused_before_allocating(folder, monkeypatch):
    """200000 x 200000 floats would be 160 GB: the shapes in the safetensors header say otherwise."""
    _edit_json(folder / "2_Dense" / "config.json", in_features=200_000, out_features=200_000)

    def no_build(*args, **kwargs):
        raise AssertionError("Dense was constructed before its config was checked")

    monkeypatch.setattr(Dense, "__init__", no_build)
    start = time.perf_counter()
    msg = _refused(folder, "2_Dense", "in_features=200000", "out_features=200000", "linear.weight [16, 32]")
    assert time.perf_counter() - start < 30
    assert "fix config.json" in msg


@pytest.mark.parametrize(("changes", "says"), [
    ({"in_features": 16}, "in_features=16"),
    ({"out_features": 8}, "out_features=8"),
    ({"bias": False}, "bias=false"),
])
def test_a_dense_config_must_match_its_weights(changes, says, folder):
    _edit_json(folder / "2_Dense" / "config.json", **changes)
    _refused(folder, "2_Dense", says, "linear.weight [16, 32]")


def test_dense_weights_without_the_linear_tensors_are_refused(folder):
    save_file({"other.weight": torch.zeros(16, 32)}, str(folder / "2_Dense" / "model.safetensors"))
    _refused(folder, "2_Dense", "no linear.* tensors")


def test_a_huge_transformer_config_is_refused_before_allocating(folder, monkeypatch):
    """The transformer is built on the meta device and compared with the header; from_pretrained never runs."""
    import transformers

    _edit_json(folder / "config.json", hidden_size=200_000, intermediate_size=800_000)

    def no_load(*args, **kwargs):
        raise AssertionError("the transformer was allocated before its config was checked")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_load)
    start = time.perf_counter()
    msg = _refused(folder, "config.json", "does not match the weights", "hidden_size=200000")
    assert time.perf_counter() - start < 30
    assert "in the safetensors file" in msg and "more tensors" in msg


def test_a_vocab_size_that_disagrees_with_the_embeddings_is_refused(folder):
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    _edit_json(folder / "config.json", vocab_size=vocab + 1000)
    _refused(folder, "config.json", f"vocab_size={vocab + 1000}", f"[{vocab}, 32]")


def test_pooling_must_take_the_transformer_size(folder):
    _edit_json(folder / "1_Pooling" / "config.json", word_embedding_dimension=64)
    _refused(folder, "1_Pooling/config.json", "word_embedding_dimension=64", "size 32")


# ----- 3. odd module types and missing keys ----------------------------------------------------------

def _set_type(folder: Path, index: int, kind: str, path: str | None = None) -> None:
    entries = json.loads((folder / "modules.json").read_text())
    entries[index]["type"] = kind
    if path is not None:
        entries[index]["path"] = path
    (folder / "modules.json").write_text(json.dumps(entries))


def test_dense_type_on_a_pooling_folder_names_the_missing_key(folder):
    """Was ``KeyError: 'in_features'``."""
    _set_type(folder, 1, "sentence_transformers.models.Dense")
    msg = _refused(folder, "1_Pooling/config.json", "'in_features'", "modules.json")
    assert "KeyError" not in msg


@pytest.mark.parametrize("key", ["in_features", "out_features"])
def test_a_dense_config_missing_a_key_names_it(key, folder):
    _edit_json(folder / "2_Dense" / "config.json", **{key: None})
    _refused(folder, "2_Dense/config.json", repr(key))


def test_pooling_type_on_a_dense_folder_is_one_line(folder):
    _set_type(folder, 2, "sentence_transformers.models.Pooling")
    _refused(folder, "2_Dense/config.json", "no embedding dimension")


def test_transformer_type_on_a_pooling_folder_is_one_line(folder):
    _set_type(folder, 0, "sentence_transformers.models.Transformer", path="1_Pooling")
    _refused(folder, "1_Pooling", "config.json")


def test_a_module_chain_must_start_with_one_transformer(folder):
    _set_type(folder, 0, "sentence_transformers.models.Pooling", path="1_Pooling")
    _refused(folder, "modules.json", "must start with a Transformer")
    _set_type(folder, 0, "sentence_transformers.models.Transformer", path="")
    _set_type(folder, 1, "sentence_transformers.models.Transformer", path="")
    _refused(folder, "modules.json", "second input module (Transformer")


@pytest.mark.parametrize("kind", ["sentence_transformers.models.CNN", "os.system", "", "Dense\nos.system"])
def test_an_unknown_module_type_is_one_line(kind, folder):
    _set_type(folder, 2, kind)
    _refused(folder, "modules.json", repr(kind), "does not load")


# ----- 4. every path stays inside the model folder, after resolving symlinks -------------------------

@pytest.mark.parametrize("name", ["1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
                                  "config.json", "model.safetensors", "modules.json", "config_sentence_transformers.json",
                                  "sentence_bert_config.json", "tokenizer.json", "tokenizer_config.json", "README.md"])
def test_a_file_symlinked_outside_the_folder_is_refused(name, folder, tmp_path):
    """An identical copy outside: refused for where it is, not for what it holds."""
    outside = tmp_path / "elsewhere" / name.replace("/", "-")
    outside.parent.mkdir(exist_ok=True)
    shutil.move(folder / name, outside)
    (folder / name).symlink_to(outside)
    _refused(folder, name, "points outside the model folder", str(outside))


def test_a_folder_symlinked_outside_is_refused_even_if_no_module_uses_it(folder, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (folder / "extra").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _refused(folder, "extra", "points outside the model folder")


def test_a_symlink_to_a_file_outside_breaks_build_model_too(folder, tmp_path):
    shutil.move(folder / "config.json", tmp_path / "config.json")
    (folder / "config.json").symlink_to(tmp_path / "config.json")
    with pytest.raises(ModelFileError, match="points outside the model folder"):
        build_model(folder, device="cpu")


def test_symlinks_inside_the_folder_are_fine(folder):
    pooling = folder / "1_Pooling"
    (pooling / "config.json").rename(pooling / "real.json")
    (pooling / "config.json").symlink_to("real.json")
    (folder / "weights").mkdir()
    (folder / "model.safetensors").rename(folder / "weights" / "model.safetensors")
    (folder / "model.safetensors").symlink_to(folder / "weights" / "model.safetensors")
    assert load_model(folder, device="cpu").encode(TEXTS).shape == (2, 16)


def test_a_hub_cache_snapshot_links_into_its_blobs(st_folder, tmp_path):
    """The hub cache keeps snapshots/REV/FILE -> ../../blobs/HASH: those links stay inside the repo's cache."""
    repo = tmp_path / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / "0123abc"
    for i, file in enumerate(sorted(p for p in st_folder.rglob("*") if p.is_file())):
        rel = file.relative_to(st_folder)
        blob = repo / "blobs" / f"blob{i}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, blob)
        (snapshot / rel).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / rel).symlink_to(os.path.relpath(blob, (snapshot / rel).parent))
    (snapshot / "3_Normalize").mkdir(exist_ok=True)
    assert load_model(snapshot, device="cpu").encode(TEXTS).shape == (2, 16)
    # but not into another repo's blobs
    other = tmp_path / "hub" / "models--org--other" / "blobs"
    other.mkdir(parents=True)
    shutil.copy(snapshot / "modules.json", other / "x")
    (snapshot / "modules.json").unlink()
    (snapshot / "modules.json").symlink_to(other / "x")
    _refused(snapshot, "modules.json", "points outside the model folder")


# ----- 5. files and folders get the user's umask ------------------------------------------------------

@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(old)


def _modes(root: Path) -> dict[str, set[int]]:
    modes: dict[str, set[int]] = {"files": set(), "folders": {stat.S_IMODE(root.stat().st_mode)}}
    for path in root.rglob("*"):
        modes["folders" if path.is_dir() else "files"].add(stat.S_IMODE(path.stat().st_mode))
    return modes


@pytest.mark.parametrize(("mask", "files", "folders"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)])
def test_a_saved_model_gets_the_users_umask(mask, files, folders, umask, tiny_bert, tmp_path):
    umask(mask)
    assert current_umask() == mask
    path = tiny_bert(layers=1, dense=16, normalize=True).save(tmp_path / "model")
    assert _modes(path) == {"files": {files}, "folders": {folders}}


def test_atomic_writes_get_the_umask_and_a_replaced_file_keeps_its_mode(umask, tmp_path):
    umask(0o022)
    atomic_write_text(tmp_path / "new.txt", "x")
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
    (tmp_path / "private.txt").write_text("old")
    (tmp_path / "private.txt").chmod(0o640)
    atomic_write_text(tmp_path / "private.txt", "new")
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o640
    assert (tmp_path / "private.txt").read_text() == "new"
