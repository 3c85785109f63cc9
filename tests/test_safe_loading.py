"""Safe loading: pickle only on request, no remote code, no imports or paths chosen by a model folder.

Extends tests/test_models.py (pickle in a Dense folder, an unknown module type, a ``../..``
module path) to plain Hugging Face folders, the hub path, ``trust_remote_code``, absolute and
symlinked module paths, arbitrary module-type strings (hypothesis), Dense activation names, a
malformed modules.json and a folder without tokenizer files (see docs/reliability.md). Damaged or
inconsistent files (truncated weights, configs that disagree with them, symlinks out) are in
tests/test_model_files.py.
"""

from __future__ import annotations

import fnmatch
import json
import pickle
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoConfig

from workbench import EmbeddingModel, load_model
from workbench.models.modules import make_activation

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = ["a cat sits on the mat", "Émilie 🥞", ""]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, tiny_bert) -> Path:
    """A plain Hugging Face folder: config.json, model.safetensors, tokenizer files."""
    path = tmp_path_factory.mktemp("hf") / "bert"
    model = tiny_bert(layers=1)
    model.transformer.auto_model.save_pretrained(path)
    model.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def st_folder(tmp_path_factory, tiny_bert) -> Path:
    """A sentence-transformers folder: Transformer, Pooling, Dense, Normalize (random, hidden 32)."""
    return tiny_bert(layers=1, dense=16, normalize=True).save(tmp_path_factory.mktemp("st") / "model")


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _pickle_only(folder: Path) -> Path:
    """Replace model.safetensors by the same weights as pytorch_model.bin."""
    from safetensors.torch import load_file

    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    return folder


class _Trap:
    """Unpickling this creates a file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _load_quietly(path, **kwargs) -> EmbeddingModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a plain HF folder announces mean pooling
        return load_model(path, device="cpu", **kwargs)


# ----- pickle ------------------------------------------------------------------------------------

def test_plain_hf_folder_with_only_pytorch_model_bin_is_refused(hf_folder, tmp_path):
    good = _load_quietly(hf_folder).encode(TEXTS)
    folder = _pickle_only(_copy(hf_folder, tmp_path / "bin-only"))
    with pytest.raises(ValueError, match=r"only as pickle \(pytorch_model\.bin\).*allow_pickle=True"):
        load_model(folder, device="cpu")
    assert np.abs(_load_quietly(folder, allow_pickle=True).encode(TEXTS) - good).max() <= 1e-6


def test_sentence_transformers_folder_with_pickled_transformer_is_refused(st_folder, tmp_path):
    folder = _pickle_only(_copy(st_folder, tmp_path / "st-bin"))
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_model(folder, device="cpu")
    assert _load_quietly(folder, allow_pickle=True).encode(TEXTS).shape == (3, 16)


def test_a_pickle_beside_safetensors_is_never_opened(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path / "both")
    marker = tmp_path / "pickle-ran"
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump(_Trap(marker), fh)
    for allow in (False, True):
        _load_quietly(folder, allow_pickle=allow).encode(TEXTS)
    assert not marker.exists()


def test_even_an_allowed_pickle_cannot_run_code(hf_folder, tmp_path):
    """allow_pickle=True still reads tensors only (torch.load(weights_only=True))."""
    folder = _copy(hf_folder, tmp_path / "trap")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pickle-ran"
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump(_Trap(marker), fh)
    with pytest.raises(Exception):  # noqa: B017 - whichever error the loader gives, the trap must not fire
        _load_quietly(folder, allow_pickle=True)
    assert not marker.exists()


def _fake_hub(monkeypatch, remote: Path, seen: list[list[str]]) -> None:
    """snapshot_download from a local 'remote' folder, honouring allow_patterns as the hub does."""
    import huggingface_hub

    def snapshot_download(repo_id, revision=None, allow_patterns=None, local_files_only=False, **kwargs):
        seen.append(list(allow_patterns or []))
        dst = remote.parent / "snapshots" / repo_id.replace("/", "--")
        shutil.rmtree(dst, ignore_errors=True)
        for file in remote.rglob("*"):
            rel = file.relative_to(remote).as_posix()
            if file.is_file() and (allow_patterns is None or any(fnmatch.fnmatch(rel, p) for p in allow_patterns)):
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(file, dst / rel)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)


def test_hub_download_fetches_no_pickle(hf_folder, tmp_path, monkeypatch):
    remote = _copy(hf_folder, tmp_path / "remote")
    torch.save({}, remote / "pytorch_model.bin")
    seen: list[list[str]] = []
    _fake_hub(monkeypatch, remote, seen)
    model = _load_quietly("some-org/tiny")
    assert model.encode(TEXTS).shape == (3, 32)
    assert seen and not any(fnmatch.fnmatch("pytorch_model.bin", p) for p in seen[0])
    assert not list((tmp_path / "snapshots").rglob("*.bin"))


def test_hub_repo_with_only_pickle_names_the_opt_in(hf_folder, tmp_path, monkeypatch):
    remote = _pickle_only(_copy(hf_folder, tmp_path / "remote"))
    _fake_hub(monkeypatch, remote, [])
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_model("some-org/pickled", device="cpu")
    assert _load_quietly("some-org/pickled", allow_pickle=True).encode(TEXTS).shape == (3, 32)


# ----- remote code -------------------------------------------------------------------------------

def _custom_code_folder(path: Path, marker: Path, model_type: str = "workbench-test-custom") -> Path:
    path.mkdir(parents=True)
    code = f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"
    (path / "configuration_custom.py").write_text(code + "from transformers import PretrainedConfig\n"
                                                  "class CustomConfig(PretrainedConfig):\n"
                                                  f"    model_type = {model_type!r}\n")
    (path / "modeling_custom.py").write_text(code)
    (path / "config.json").write_text(json.dumps({
        "model_type": model_type, "hidden_size": 8,
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"},
    }))
    return path


def test_transformers_itself_asks_for_trust_remote_code(tmp_path):
    """Our message is built on transformers' error naming trust_remote_code: check it still does."""
    folder = _custom_code_folder(tmp_path / "custom", tmp_path / "code-ran")
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
    assert not (tmp_path / "code-ran").exists()


def test_remote_code_is_off_and_the_error_says_how_to_opt_in(tmp_path):
    marker = tmp_path / "code-ran"
    folder = _custom_code_folder(tmp_path / "custom", marker)
    with pytest.raises(ValueError, match=r"needs custom code .* trust_remote_code=True") as err:
        load_model(folder, device="cpu")
    assert str(folder) in str(err.value)
    # the same inside a sentence-transformers folder (modules.json -> a custom Transformer)
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load_model(folder, device="cpu")
    assert not marker.exists()


def test_custom_code_beside_a_known_architecture_is_ignored(hf_folder, tmp_path):
    """A BERT config with an auto_map loads the built-in BERT; the shipped code never runs."""
    marker = tmp_path / "code-ran"
    folder = _copy(hf_folder, tmp_path / "bert-with-code")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_custom.CustomModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_custom.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    model = _load_quietly(folder)
    assert type(model.transformer.auto_model).__name__ == "BertModel"
    assert not marker.exists()


# ----- module types and paths in modules.json ----------------------------------------------------

def _edit_modules(folder: Path, index: int, **changes) -> None:
    entries = json.loads((folder / "modules.json").read_text())
    entries[index].update(changes)
    (folder / "modules.json").write_text(json.dumps(entries))


@pytest.mark.parametrize("where", ["/etc", "1_Pooling/../../outside", "../model-twin/1_Pooling"])
def test_module_paths_cannot_leave_the_folder(where, st_folder, tmp_path):
    folder = _copy(st_folder, tmp_path / "model")
    _copy(st_folder, tmp_path / "model-twin")  # a real folder there: refused for where it is, not for being missing
    _edit_modules(folder, 1, path=where)
    with pytest.raises(ValueError, match=r"modules\.json points outside the model folder"):
        load_model(folder, device="cpu")


def test_symlinked_module_folder_pointing_outside_is_refused(st_folder, tmp_path):
    folder = _copy(st_folder, tmp_path / "model")
    outside = _copy(st_folder / "1_Pooling", tmp_path / "elsewhere")
    shutil.rmtree(folder / "1_Pooling")
    (folder / "1_Pooling").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the model folder"):
        load_model(folder, device="cpu")
    # a symlink that stays inside the folder is fine
    (folder / "1_Pooling").unlink()
    _copy(st_folder / "1_Pooling", folder / "pooling-real")
    (folder / "1_Pooling").symlink_to(folder / "pooling-real", target_is_directory=True)
    assert load_model(folder, device="cpu").encode(TEXTS).shape == (3, 16)


_KNOWN = ("Transformer", "Pooling", "Dense", "Normalize")
type_names = st.one_of(
    st.text(max_size=40),
    st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True), min_size=1, max_size=5).map(".".join),
    st.sampled_from(["os.system", "builtins.eval", "subprocess.Popen", "sentence_transformers.models.Asym",
                     "sentence_transformers.models.CNN", "workbench.models.os", "torch.nn.Linear"]),
).filter(lambda s: s.rsplit(".", 1)[-1] not in _KNOWN)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=type_names)
def test_any_unknown_module_type_is_refused_without_importing(kind, st_folder, tmp_path):
    folder = tmp_path / "types"
    if not folder.exists():
        _copy(st_folder, folder)
    _edit_modules(folder, 2, type=kind)
    before = set(sys.modules)
    with pytest.raises(ValueError, match="which workbench does not load") as err:
        load_model(folder, device="cpu")
    assert repr(kind) in str(err.value) and "never imported" in str(err.value)
    assert set(sys.modules) == before


@pytest.mark.parametrize("entries", [
    {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
    [{"idx": 0, "path": None, "type": "sentence_transformers.models.Transformer"}],
    [["sentence_transformers.models.Transformer", ""]],
])
def test_malformed_modules_json_is_named(entries, st_folder, tmp_path):
    folder = _copy(st_folder, tmp_path / "model")
    (folder / "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"modules\.json"):
        load_model(folder, device="cpu")


# ----- Dense activations -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen", "evil.module.Tanh",
                                  "torch.nn.functional.relu", "torch.nn.modules.activation.NoSuchThing", "tanh()"])
def test_unknown_activation_in_a_dense_config_is_refused(name, st_folder, tmp_path):
    folder = _copy(st_folder, tmp_path / "model")
    config = json.loads((folder / "2_Dense" / "config.json").read_text())
    config["activation_function"] = name
    (folder / "2_Dense" / "config.json").write_text(json.dumps(config))
    before = set(sys.modules)
    with pytest.raises(ValueError, match=r"unknown activation .*torch\.nn class"):
        load_model(folder, device="cpu")
    assert set(sys.modules) == before


@pytest.mark.parametrize("name", ["torch.nn.modules.activation.Tanh", "torch.nn.GELU", "relu", "identity", None])
def test_known_activations_load(name):
    assert isinstance(make_activation(name), torch.nn.Module)


@pytest.mark.filterwarnings("ignore::UserWarning")  # nn.Transformer's nested-tensor notice
@pytest.mark.parametrize("name", ["torch.nn.Transformer", "torch.nn.Module", "torch.nn.Linear", "torch.nn.ModuleList"])
def test_non_activation_torch_modules_are_refused(name):
    with pytest.raises(ValueError, match="activation"):
        make_activation(name)


# ----- missing tokenizer -------------------------------------------------------------------------

def test_folder_without_tokenizer_files_is_refused(hf_folder, tmp_path):
    folder = _copy(hf_folder, tmp_path / "no-tokenizer")
    for name in ("tokenizer.json", "vocab.txt"):
        (folder / name).unlink(missing_ok=True)
    with pytest.raises((ValueError, FileNotFoundError), match="tokenizer"):
        _load_quietly(folder)
