"""Numerical faults: out-of-memory in encode and in training, non-finite losses and gradients.

The GPU paths are simulated on the CPU: the model's forward (encode) or the loss (training)
raises ``torch.cuda.OutOfMemoryError`` as CUDA would. A NaN loss in the middle of a run is
tested in tests/test_training.py (test_non_finite_loss_stops_with_clear_error_and_keeps_checkpoint).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from workbench import load_model
from workbench.losses import MultipleNegativesRankingLoss
from workbench.training import Done, TrainConfig, Trainer, TrainingError
from workbench.training.runs import RunDir

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(tiny_bert, dropout: float = 0.1):
    """One layer, Dense 16, Normalize; ``dropout`` in the attention and hidden layers."""
    return tiny_bert(layers=1, dense=16, normalize=True,
                     config={"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout})


def _pairs(n: int = 80) -> dict[str, list[str]]:
    nouns = ["cat", "dog", "car", "tree", "house", "river", "bird", "phone"]
    return {"anchor": [f"the {nouns[i % 8]} number {i}" for i in range(n)],
            "positive": [f"a {nouns[i % 8]} that is item {i}" for i in range(n)]}


class FaultyLoss(MultipleNegativesRankingLoss):
    """MNRL that misbehaves on one call: ``fault(call, value) -> value`` may raise or change it."""

    def __init__(self, model, fault):
        super().__init__(model)
        self.calls, self.fault = 0, fault

    def forward(self, features, labels=None):
        self.calls += 1
        return self.fault(self.calls, super().forward(features, labels))

    def config(self):
        # The injected fault is not a setting: a resume with the plain loss trains the same thing.
        return {**super().config(), "name": "MultipleNegativesRankingLoss"}


CFG = TrainConfig(lr=1e-3, batch_size=16, max_steps=10, log_every=1, checkpoint_every=2, keep_checkpoints=2,
                  eval_at_start=False, seed=1)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ----- out of memory while encoding ----------------------------------------------------------------

def _oom_above(model, monkeypatch, rows: int) -> list[int]:
    """The model's forward raises CUDA OOM for batches of more than ``rows`` texts; returns batch sizes tried."""
    real = model.forward
    tried: list[int] = []

    def forward(features):
        n = features["input_ids"].shape[0]
        tried.append(n)
        if n > rows:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(features)

    monkeypatch.setattr(model, "forward", forward)
    return tried


def test_encode_oom_retries_with_smaller_batches_and_says_so(tiny_bert, monkeypatch):
    model = _tiny(tiny_bert)
    texts = [f"sentence {i} " + "word " * (i % 13) for i in range(40)]
    expected = model.encode(texts, batch_size=16)
    tried = _oom_above(model, monkeypatch, rows=5)
    with pytest.warns(UserWarning, match="CUDA out of memory while encoding; retrying with batch_size=") as record:
        got = model.encode(texts, batch_size=16)
    assert [str(w.message).rsplit("=", 1)[1] for w in record] == ["8", "4"]  # 16 -> 8 -> 4, said each time
    assert tried[:3] == [16, 8, 4] and max(tried[3:]) == 4  # the smaller size is kept for the rest
    assert got.shape == (40, 16) and np.abs(got - expected).max() <= 1e-6  # same numbers, input order


def test_encode_oom_even_for_one_text_is_raised_not_looped(tiny_bert, monkeypatch):
    model = _tiny(tiny_bert)
    tried = _oom_above(model, monkeypatch, rows=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(torch.cuda.OutOfMemoryError):
            model.encode(["a", "b", "c", "d"], batch_size=4)
    assert tried == [4, 2, 1]


# ----- out of memory while training ----------------------------------------------------------------

def _oom_at(step: int):
    def fault(call, value):
        if call == step:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
        return value

    return fault


def test_training_oom_stops_with_advice_and_keeps_the_checkpoint(tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    events: list = []
    trainer = Trainer(model, FaultyLoss(model, _oom_at(5)), CFG, _pairs(), run_dir=tmp_path / "run",
                      callbacks=[events.append])
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    message = str(err.value)
    assert "out of GPU memory at step 5 with batch_size=16" in message
    assert "smaller batch_size" in message and "CachedMultipleNegativesRankingLoss" in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # one clear error, not a CUDA trace
    done = events[-1]
    assert isinstance(done, Done) and done.reason == "failed" and done.step == 4 and "out of GPU memory" in done.error
    found = RunDir(tmp_path / "run").latest_checkpoint()
    assert found is not None and found[1]["step"] == 4
    saved = load_model(found[0], device="cpu").state_dict()
    assert _max_diff(saved, _weights(trainer.model)) == 0.0  # the weights after step 4, untouched by step 5
    assert not (tmp_path / "run" / "model").exists()


def test_resume_after_training_oom_equals_an_uninterrupted_run(tiny_bert, tmp_path):
    reference = _tiny(tiny_bert)
    Trainer(reference, MultipleNegativesRankingLoss(reference), CFG, _pairs(), run_dir=tmp_path / "ref").fit()
    model = _tiny(tiny_bert)
    with pytest.raises(TrainingError):
        Trainer(model, FaultyLoss(model, _oom_at(5)), CFG, _pairs(), run_dir=tmp_path / "run").fit()
    again = _tiny(tiny_bert)
    Trainer(again, MultipleNegativesRankingLoss(again), CFG, _pairs(), run_dir=tmp_path / "run").fit(resume=True)
    assert _max_diff(_weights(again), _weights(reference)) <= 1e-4


def test_resume_after_training_oom_without_dropout_equals_an_uninterrupted_run(tiny_bert, tmp_path):
    """The same without dropout: a resume from the kept checkpoint is exact whatever the RNG."""
    reference = _tiny(tiny_bert, dropout=0.0)
    Trainer(reference, MultipleNegativesRankingLoss(reference), CFG, _pairs(), run_dir=tmp_path / "ref").fit()
    model = _tiny(tiny_bert, dropout=0.0)
    with pytest.raises(TrainingError):
        Trainer(model, FaultyLoss(model, _oom_at(5)), CFG, _pairs(), run_dir=tmp_path / "run").fit()
    again = _tiny(tiny_bert, dropout=0.0)
    Trainer(again, MultipleNegativesRankingLoss(again), CFG, _pairs(), run_dir=tmp_path / "run").fit(resume=True)
    assert _max_diff(_weights(again), _weights(reference)) <= 1e-4
    assert _max_diff(load_model(tmp_path / "run" / "model", device="cpu").state_dict(), _weights(reference)) <= 1e-4


# ----- non-finite losses and gradients -------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_loss_at_the_first_step_keeps_the_initial_weights(bad, tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    before = _weights(model)
    trainer = Trainer(model, FaultyLoss(model, lambda call, v: v * bad if call == 1 else v), CFG, _pairs(),
                      run_dir=tmp_path / "run")
    with pytest.raises(TrainingError, match=r"non-finite \(NaN or inf\) at step 1 .*lower learning rate"):
        trainer.fit()
    assert _max_diff(_weights(trainer.model), before) == 0.0
    found = RunDir(tmp_path / "run").latest_checkpoint()
    assert found is not None and found[1]["step"] == 0
    assert _max_diff(load_model(found[0], device="cpu").state_dict(), before) == 0.0


class _NanGradient(torch.autograd.Function):
    """Identity forward; a NaN gradient backward (what an overflow in a backward pass gives)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def test_nan_gradient_never_reaches_a_checkpoint(tiny_bert, tmp_path):
    model = _tiny(tiny_bert)
    trainer = Trainer(model, FaultyLoss(model, lambda call, v: _NanGradient.apply(v) if call == 5 else v), CFG,
                      _pairs(), run_dir=tmp_path / "run")
    with pytest.raises(TrainingError, match=r"gradients became non-finite .* at step 5"):
        trainer.fit()
    found = RunDir(tmp_path / "run").latest_checkpoint()
    assert found is not None and found[1]["step"] == 4  # the last good one, not the poisoned step
    for p in load_model(found[0], device="cpu").parameters():
        assert torch.isfinite(p).all()
