"""The two seed recipes, by name, against a hub cache holding small stand-ins under the real ids.

The hub cannot be reached here, so ``tests/hub_standins.py`` writes tiny random models and a few
hundred synthetic rows into a huggingface_hub / datasets cache under ``prajjwal1/bert-tiny``,
``nreimers/TinyBERT_L-4_H-312_v2``, ``sentence-transformers/stsb-roberta-base-v2``,
``sentence-transformers/all-nli`` (``triplet``) and ``sentence-transformers/wikipedia-en-sentences``.
Each recipe then runs through the ``workbench`` command in a subprocess with ``HF_HUB_OFFLINE=1``
and ``HF_DATASETS_OFFLINE=1`` (both libraries read their settings at import time, so a fresh
process is the reliable way to point them at the cache), for a handful of steps. The numbers
mean nothing; the code path (hub ids -> cache -> build -> train -> evaluate -> save with the full
card) and the saved architecture are what is checked. Without the cache, the run must stop at
once with a one-line error naming what is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hub_standins import (
    ALL_NLI,
    SEED_A_STUDENT,
    SEED_A_TEACHER,
    SEED_B_BASE,
    STUDENT_HIDDEN,
    TEACHER_HIDDEN,
    WIKIPEDIA,
    offline_env,
    populate,
)

REPO = Path(__file__).resolve().parents[1]
FAST = ["--set", "train.max_steps=4", "--set", "train.eval_every=2", "--set", "train.batch_size=8",
        "--set", "eval.sts_dev_limit=100"]
# seed A holds out its first mse_sentences (10k) for the MSE evaluation: keep most of the stand-in's 300 for training
SEED_A_FAST = [*FAST, "--set", "eval.mse_sentences=50"]


def _env(hf_home: Path, tmp: Path, **extra: str) -> dict[str, str]:
    env = offline_env(hf_home, WORKBENCH_CACHE=str(tmp / "teacher-cache"), **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _workbench(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def _explain(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hub_home(minilm_path, tmp_path_factory) -> Path:
    """A HF_HOME whose hub and datasets caches hold the stand-ins."""
    root = tmp_path_factory.mktemp("hub-standins")
    populate(root / "hf", root / "src")
    return root / "hf"


@pytest.fixture(scope="module")
def seed_b_run(hub_home, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("seed-b")
    run_dir = tmp / "run"
    proc = _workbench(["train", "seed-b-mnrl", *FAST, "--run-dir", str(run_dir)], _env(hub_home, tmp), tmp)
    return proc, run_dir


@pytest.fixture(scope="module")
def seed_a_run(hub_home, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("seed-a")
    run_dir = tmp / "run"
    proc = _workbench(["distill", "seed-a-distill", *SEED_A_FAST, "--run-dir", str(run_dir)], _env(hub_home, tmp), tmp)
    return proc, run_dir


def _check_run_folder(proc: subprocess.CompletedProcess, run_dir: Path, primary: str) -> list[dict]:
    assert proc.returncode == 0, _explain(proc)
    assert "Traceback" not in proc.stderr, _explain(proc)
    assert (run_dir / "config.json").is_file()
    events = _events(run_dir)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "Started" and kinds[-1] == "Done", kinds
    assert events[-1]["reason"] == "completed" and events[-1]["step"] == 4
    assert [e["step"] for e in events if e["event"] == "Step"] == [4]  # log_every 10 > 4 steps: the last step logs
    evals = [e for e in events if e["event"] == "Eval"]
    assert [e["step"] for e in evals] == [0, 2, 4]  # at the start, every 2 steps, and at the end
    assert all(e["primary"] == primary for e in evals)
    for name in ("config.json", "model.safetensors", "modules.json", "sentence_bert_config.json", "README.md"):
        assert (run_dir / "model" / name).is_file(), name
    return events


def _find(record: object, key: str) -> object:
    """``record[key]``, looked up at any depth (config.json may nest the distillation facts)."""
    if isinstance(record, dict):
        if key in record:
            return record[key]
        for value in record.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None


def _card(run_dir: Path) -> str:
    card = (run_dir / "model" / "README.md").read_text(encoding="utf-8")
    front = card.split("---", 2)[1]
    assert "model-index:" in front, "the full card (with model-index), not the minimal one"
    for section in ("## Evaluation", "## Training Details", "## Training Logs"):
        assert section in card, section
    return card


def _load_st(path: Path):
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(path), device="cpu")


def _pooling_is_mean(module) -> bool:
    config = module.get_config_dict()
    return config.get("pooling_mode") == "mean" or bool(config.get("pooling_mode_mean_tokens"))


# ----- the stand-ins themselves ----------------------------------------------------------------
def test_standins_resolve_from_the_offline_cache(hub_home, tmp_path):
    """Offline, the hub client and the datasets library find the stand-ins under the real ids."""
    script = f"""
import json, huggingface_hub, datasets
from workbench.models.loading import resolve_model_path
out = {{}}
for repo in {[SEED_B_BASE, SEED_A_STUDENT, SEED_A_TEACHER]!r}:
    out[repo] = [huggingface_hub.snapshot_download(repo, local_files_only=True), str(resolve_model_path(repo))]
for repo, config, split in [({ALL_NLI!r}, "triplet", "train"), ({WIKIPEDIA!r}, None, "train[:210000]")]:
    ds = datasets.load_dataset(repo, config, split=split)
    out[repo] = [ds.num_rows, ds.column_names]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], env=_env(hub_home, tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, _explain(proc)
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    for repo in (SEED_B_BASE, SEED_A_STUDENT, SEED_A_TEACHER):
        org, name = repo.split("/")
        snapshot, resolved = (Path(p) for p in found[repo])
        assert snapshot == resolved
        assert snapshot.parent.parent == hub_home / "hub" / f"models--{org}--{name}"
        assert (snapshot.parent.parent / "refs" / "main").read_text() == snapshot.name and len(snapshot.name) == 40
        assert (snapshot / "config.json").is_file() and (snapshot / "model.safetensors").is_file()
    assert (Path(found[SEED_A_TEACHER][0]) / "modules.json").is_file()
    assert found[ALL_NLI] == [240, ["anchor", "positive", "negative"]]
    assert found[WIKIPEDIA] == [300, ["sentence"]]


# ----- seed B: bert-tiny + Dense(256, tanh) + Normalize, MNRL on AllNLI triplets ---------------------
def test_seed_b_runs_offline_from_the_hub_cache(seed_b_run):
    proc, run_dir = seed_b_run
    _check_run_folder(proc, run_dir, "sts-dev_spearman_cosine")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["mixed_precision"] == "bf16"  # the recipe's bf16 autocast runs on CPU too
    assert config["train"]["lr"] == 2e-5 and config["train"]["max_steps"] == 4
    assert config["loss"] == {"name": "MultipleNegativesRankingLoss", "params": {"scale": 20.0, "similarity": "cosine",
                                                                         "gather_across_devices": True}}
    assert config["recipe"]["model"]["base"] == SEED_B_BASE  # the whole recipe as it ran
    assert config["data"]["all-nli"]["rows"] == 240
    assert config["data"]["all-nli"]["columns"] == ["anchor", "positive", "negative"]


def test_seed_b_model_has_the_seed_architecture(seed_b_run):
    proc, run_dir = seed_b_run
    assert proc.returncode == 0, _explain(proc)
    model = _load_st(run_dir / "model")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert model.max_seq_length == 384
    assert _pooling_is_mean(model[1])
    dense = model[2].get_config_dict()
    assert (dense["in_features"], dense["out_features"]) == (STUDENT_HIDDEN, 256)
    assert dense["activation_function"] == "torch.nn.modules.activation.Tanh"
    emb = model.encode(["A man is playing a guitar.", "Someone makes music."], convert_to_numpy=True)
    assert emb.shape == (2, 256)
    assert abs(float((emb**2).sum(axis=1).max()) - 1.0) < 1e-4 and abs(float((emb**2).sum(axis=1).min()) - 1.0) < 1e-4

    from workbench.models import load_model

    ours = load_model(run_dir / "model", device="cpu").encode(["A man is playing a guitar.", "Someone makes music."])
    assert abs(ours - emb).max() < 1e-4, "workbench and sentence-transformers read the saved folder alike"

    card = _card(run_dir)
    assert f'base_model: "{SEED_B_BASE}"' in card or f"base_model: {SEED_B_BASE}" in card
    assert "MultipleNegativesRankingLoss" in card and "loss:MultipleNegativesRankingLoss" in card
    assert "sts-dev" in card and "sts-test" in card


def test_seed_b_card_names_its_hub_data_set(seed_b_run):
    proc, run_dir = seed_b_run
    assert proc.returncode == 0, _explain(proc)
    front = _card(run_dir).split("---", 2)[1]
    assert ALL_NLI in front  # `datasets: [sentence-transformers/all-nli]`, as the seed card has


# ----- seed A: stsb-roberta-base-v2 distilled into TinyBERT with PCA ------------------------------
def test_seed_a_distills_offline_from_the_hub_cache(seed_a_run):
    proc, run_dir = seed_a_run
    events = _check_run_folder(proc, run_dir, "sts-dev_spearman_cosine")
    evals = [e for e in events if e["event"] == "Eval"]
    assert all("mse_negative_mse" in e["metrics"] for e in evals), "the held-out MSE evaluation ran"
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert config["train"]["lr"] == 1e-4 and config["train"]["keep_best"] is True
    pca = _find(config, "pca")
    assert pca, f"config.json records the teacher's PCA: {sorted(config)}"
    assert pca["n_components"] == STUDENT_HIDDEN  # the 48-d teacher was reduced to the 32-d student's width
    assert pca["fit_sentences"] == 300 - 50 and pca["mean_subtracted"] is False
    assert 0 < pca["explained_variance"] < 1


def test_seed_a_model_has_the_seed_architecture(seed_a_run):
    proc, run_dir = seed_a_run
    assert proc.returncode == 0, _explain(proc)
    model = _load_st(run_dir / "model")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    assert model.max_seq_length == 512
    assert _pooling_is_mean(model[1])
    emb = model.encode(["The river rises in the hills.", "The castle was built in 1500."], convert_to_numpy=True)
    assert emb.shape == (2, STUDENT_HIDDEN) and STUDENT_HIDDEN < TEACHER_HIDDEN
    card = _card(run_dir)
    assert f'base_model: "{SEED_A_STUDENT}"' in card or f"base_model: {SEED_A_STUDENT}" in card
    assert "MSELoss" in card


# ----- without the cache: a one-line error naming the missing id -----------------------------------
@pytest.mark.parametrize(("command", "recipe", "args", "missing"), [
    ("train", "seed-b-mnrl", FAST, SEED_B_BASE),
    ("distill", "seed-a-distill", SEED_A_FAST, SEED_A_TEACHER),
])
def test_missing_model_fails_fast_naming_it(hub_home, tmp_path, command, recipe, args, missing):
    """The data sets are cached but the models are not: exit status 2, one line, the id named."""
    env = _env(tmp_path / "empty-hf", tmp_path, HF_DATASETS_CACHE=str(hub_home / "datasets"))
    start = time.perf_counter()
    proc = _workbench([command, recipe, *args, "--run-dir", str(tmp_path / "run")], env, tmp_path, timeout=120)
    assert proc.returncode == 2, _explain(proc)
    assert "Traceback" not in proc.stderr, _explain(proc)
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"workbench {command}: error:") and repr(missing) in error and "HF_HUB_OFFLINE" in error
    assert not (tmp_path / "run" / "model").exists()
    assert time.perf_counter() - start < 60


def test_uncached_data_set_fails_fast_naming_it(hub_home, tmp_path):
    env = _env(hub_home, tmp_path)
    env["HF_DATASETS_CACHE"] = str(tmp_path / "no-datasets")  # the models are cached, the data set is not
    proc = _workbench(["train", "seed-b-mnrl", *FAST, "--run-dir", str(tmp_path / "run")], env, tmp_path, timeout=120)
    assert proc.returncode == 2, _explain(proc)
    assert "Traceback" not in proc.stderr, _explain(proc)
    assert ALL_NLI in proc.stderr.strip().splitlines()[-1]
