"""One plain training loop that emits events.

Read :meth:`Trainer.fit` top to bottom: set up (seed, accelerator, tokenize once, plan the
batches, AdamW under a warmup/decay schedule, resume or start the run folder), then train one
step per batch (the loss, checked finite, backward, clipping, the optimizer step) and at fixed
points emit ``Step``/``Eval``/``Checkpoint`` events, then finish (a last evaluation, the best
weights back, the final model saved, ``Done``). Mixed precision and several GPUs come from
``accelerate``; only the main process writes files and emits events.

Several processes (``torchrun --nproc_per_node N -m workbench.cli train recipe.toml``): each
takes its share of every batch (so the global batch is ``batch_size``), gradients are averaged
over processes and the logged loss is the mean over processes. MultipleNegativesRankingLoss
scores each anchor against every process's share (``gather_across_devices``), the Cached one
against its own process's share only. The main process evaluates while the others wait.

Example:
    >>> from workbench import build_model
    >>> from workbench.losses import MultipleNegativesRankingLoss
    >>> model = build_model("all-MiniLM-L6-v2", keep_layers=[0], seed=0)
    >>> pairs = {"anchor": ["a cat sits", "a dog runs", "it rains", "the sun shines"],
    ...          "positive": ["a cat is sitting", "a dog is running", "rain is falling", "it is sunny"]}
    >>> events = []
    >>> trained = Trainer(model, MultipleNegativesRankingLoss(model), TrainConfig(max_steps=3, batch_size=2, log_every=1),
    ...                   pairs, callbacks=[events.append]).fit()
    >>> [type(e).__name__ for e in events], events[-1].reason
    (['Started', 'Step', 'Step', 'Step', 'Done'], 'completed')
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any

import torch

from workbench import rng
from workbench.encoding import progress_bars
from workbench.training.batching import TokenizedData
from workbench.training.config import TrainConfig
from workbench.training.distributed import (
    RUNNING,
    any_process,
    average_gradients,
    broadcast_parameters,
    forget_accelerate_state,
    from_main,
    gather_from_all,
    mean_over_processes,
    replays_forward_in_backward,
)
from workbench.training.events import Changed, Checkpoint, Done, Eval, Event, RunHistory, Started, Step
from workbench.training.runs import RunDir, RunFolderBusy, refuse_changes, settings_changes


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, out of memory); the message says what to do."""


class Trainer:
    """Trains an embedding model with a loss module on rows of texts.

    The optimizer trains the model's parameters and the loss's own (a loss with weights of its
    own, such as a classifier head), each once.

    Args:
        model: the ``EmbeddingModel`` to train (changed in place).
        loss: a loss module from ``workbench.losses`` holding the same model as ``loss.model``.
        config: the hyper-parameters.
        train_data: rows with text columns (and a ``label``/``score`` column where the loss needs one).
        evaluator: called with the model every ``eval_every`` steps; returns flat metrics and has
            ``primary_metric`` (e.g. STS-B dev). ``None`` trains without evaluation.
        run_dir: where ``config.json``, ``metrics.jsonl``, checkpoints and the final model go;
            ``None`` writes nothing.
        callbacks: functions receiving every event.
        run_info: extra facts for ``config.json`` and the model card (recipe, data, base model).
        card: a function ``(model, history, trainer) -> str`` writing the final model card.
        stop_signal: an event that, once set (from any thread), ends the run after the current
            step, as :meth:`stop` does; lets a caller that never sees the trainer stop it.
    """

    def __init__(
        self,
        model: Any,
        loss: torch.nn.Module,
        config: TrainConfig,
        train_data: Any,
        evaluator: Callable[[Any], dict[str, float]] | None = None,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callable[[Event], None]] = (),
        run_info: dict[str, Any] | None = None,
        card: Callable[..., str] | None = None,
        stop_signal: threading.Event | None = None,
    ):
        if getattr(model, "backend", "torch") != "torch":
            raise TypeError("this model runs an ONNX graph, which has no weights to train; "
                            "load it with backend='torch' to train it (and export again afterwards)")
        self.model = model  # the bare model throughout (accelerate's wrapper is the session's)
        self.loss = loss
        self.config = config
        self.train_data = train_data
        self.evaluator = evaluator
        self.run_dir = RunDir(run_dir) if run_dir is not None else None  # under several processes: the main one's
        self.callbacks = list(callbacks)
        self.run_info = dict(run_info or {})
        self.card = card
        self.step = 0  # the last step whose update reached the weights
        # The evaluation of the final weights: the last one, or the best one's when keep_best takes those back.
        self.final_metrics: dict[str, float] = {}
        self._best_metrics: dict[str, float] = {}
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.elapsed_s: float | None = None  # seconds of training up to the final save, once finished
        self._stop = stop_signal if stop_signal is not None else threading.Event()
        self._failed_callbacks: set[int] = set()
        self._last_eval_step: int | None = None
        self._changes: dict[str, list[Any]] = {}  # settings a resume changed (allow_changes)
        # The RNG state before the step in progress (with a run_dir): a checkpoint written when the
        # step fails or is interrupted must replay it with the same dropout masks.
        self._rng_before_step: dict[str, Any] | None = None

    # ----- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """End the run after the current step, keeping what was learned. Safe from any thread."""
        self._stop.set()

    def _emit(self, event: Event) -> None:
        if self.run_dir is not None:
            self.run_dir.log(event)
        for cb in self.callbacks:
            try:
                cb(event)
            except Exception as err:  # a broken plot must not end a long run
                if id(cb) not in self._failed_callbacks:
                    self._failed_callbacks.add(id(cb))
                    warnings.warn(f"training callback {cb!r} failed and is ignored from now on: {err!r}", stacklevel=2)

    # ----- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False, allow_changes: bool = False) -> Any:
        """Train; returns the model (with the best weights when ``keep_best``).

        The run folder is this run's while it trains (a lock file; a second run started into it
        is refused with :class:`~workbench.training.runs.RunFolderBusy`).

        Args:
            resume: continue from the latest checkpoint in ``run_dir``. Settings that differ
                from the ones the run started with are refused (naming each changed key)...
            allow_changes: ...unless this is True: then the run goes on with the new settings,
                and the change is recorded (a ``Changed`` event, ``config.json``, the model card).
        """
        with RUNNING:
            try:
                return self._fit(resume, allow_changes)
            finally:
                if self.run_dir is not None:
                    self.run_dir.release()

    def _fit(self, resume: bool, allow_changes: bool) -> Any:
        s = self._setup(resume, allow_changes)
        total = s.plan.total_steps
        if s.acc.is_main_process:
            self._emit(Started(total_steps=total, examples=sum(len(d) for d in s.data), batch_size=self.config.batch_size,
                               start_step=s.start, run_dir=str(self.run_dir.path) if self.run_dir else None))
        t0 = time.perf_counter()
        window = _Window()
        reason = "completed"
        try:
            if s.start == 0 and self.config.eval_at_start:
                self._evaluate(s, 0)
            s.model.train()
            for step in range(s.start + 1, total + 1):
                source, rows = s.plan.rows(step, s.acc.process_index, s.acc.num_processes)
                features, labels = s.data[source].batch(rows, s.acc.device)
                window.add(self._train_step(s, step, features, labels), examples=len(rows) * s.acc.num_processes)
                self._after_step(s, step, window, t0)
                if any_process(s.acc, self._stop.is_set()):  # all processes stop at the same step
                    reason = "stopped"
                    break
        except TrainingError as err:
            self._abort(s, "failed", t0, error=str(err))
            raise
        except KeyboardInterrupt:
            self._abort(s, "interrupted", t0)
            raise
        return self._finish(s, reason, t0)

    def _setup(self, resume: bool, allow_changes: bool = False) -> _Session:
        """Seed, make the accelerator, tokenize, plan the steps, build AdamW and its schedule, then
        resume from the latest checkpoint or start the run folder."""
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cfg = self.config
        if resume and self.run_dir is None:
            raise ValueError("resume=True needs a run_dir holding checkpoints")
        rng.seed_all(cfg.seed)
        device = self.model.device
        precision = cfg.mixed_precision
        if precision == "fp16" and device.type != "cuda":
            # accelerate would silently train in fp32; say so, and record what really happens.
            warnings.warn("mixed_precision='fp16' needs a CUDA GPU; training in fp32 on " + device.type, stacklevel=3)
            precision = "no"
        self.run_info.setdefault("precision_used", precision)
        # Under DDP: a Hugging Face transformer's own pooler (BERT's) never reaches the sentence
        # embedding, and DDP stops at the second step unless it is told to expect unused parameters.
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        forget_accelerate_state(precision, device.type == "cpu")
        acc = Accelerator(mixed_precision=precision, cpu=device.type == "cpu", kwargs_handlers=[ddp])
        if self.run_dir is not None and acc.num_processes > 1:
            self.run_dir = RunDir(from_main(acc, str(self.run_dir.path)))  # one run folder, the main process's
        if self.run_dir is not None:  # the main process takes the folder; if it cannot, every process stops
            busy = None
            if acc.is_main_process:
                try:
                    self.run_dir.claim()
                except RunFolderBusy as err:
                    busy = str(err)
            busy = from_main(acc, busy)
            if busy:
                raise RunFolderBusy(busy)
        datasets = _named_datasets(self.train_data).values()
        data = [TokenizedData(d, self.model.tokenizer, self.model.max_seq_length) for d in datasets]
        plan = _Plan(data, cfg, acc.num_processes)
        warmup = math.ceil(plan.total_steps * cfg.warmup_ratio)

        loss_params = _own_parameters(self.loss, self.model)
        optimizer = torch.optim.AdamW(_param_groups([self.model, self.loss], cfg.weight_decay), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _linear_schedule(step, warmup, plan.total_steps))
        model, optimizer = acc.prepare(self.model, optimizer)
        if loss_params:
            self.loss.to(acc.device)  # the model is there already; this moves the loss's own weights
            broadcast_parameters(acc, loss_params.values())  # DDP does this for the model's
        # The loss embeds through the (possibly DDP-wrapped) model, so its gradients are averaged as
        # they are computed. A loss whose backward re-runs the model (GradCache) cannot go through
        # DDP's hooks: it gets the bare model, and its gradients are averaged after the backward
        # pass, as are those of the loss's own weights (outside DDP) in any case.
        replays = acc.num_processes > 1 and replays_forward_in_backward(self.loss)
        self.loss.model = acc.unwrap_model(model) if replays else model
        own = list(loss_params.values())
        s = _Session(acc=acc, model=model, optimizer=optimizer, scheduler=scheduler, data=data, plan=plan,
                     loss_params=loss_params, params=[*model.parameters(), *own],
                     sync_after_backward=[*model.parameters(), *own] if replays else own, start=0)

        if resume:
            s = self._restore(s, allow_changes)
            if self._changes and acc.is_main_process:
                config = {**self.run_dir.read_config(), **self._config_record()}
                config["changes"] = [*config.get("changes", []), {"step": s.start, "changes": self._changes}]
                self.run_dir.update_config(config)
                self._emit(Changed(step=s.start, changes=self._changes))
        elif self.run_dir is not None and acc.is_main_process:
            self.run_dir.start(self._config_record())
        self.step = s.start
        return s

    def _config_record(self) -> dict[str, Any]:
        """What ``config.json`` records: the training config, the loss's own ``config()`` and the run's facts."""
        return {"train": self.config.to_dict(), "loss": _loss_config(self.loss), **self.run_info}

    def _check_settings(self, acc: Any, allow_changes: bool) -> None:
        """A resume goes on with the settings the run started with, unless changes are allowed."""
        changes = settings_changes(self.run_dir.read_config(), self._config_record()) if acc.is_main_process else {}
        changes = from_main(acc, changes)  # every process decides alike
        if not allow_changes:
            refuse_changes(self.run_dir.path, changes)
        self._changes = changes

    def _train_step(self, s: _Session, step: int, features: list[dict[str, Any]], labels: Any) -> float:
        """One optimizer step on one batch; returns its loss (the mean over processes).

        Raises:
            TrainingError: the loss or the gradients are NaN/inf, or the GPU ran out of memory;
                the weights are then those before this step.
        """
        cfg = self.config
        self._rng_before_step = rng.capture() if self.run_dir is not None else None
        try:
            loss = self.loss(features, labels)
            # The mean over processes: every process sees the same value, so a NaN on one stops all.
            value = mean_over_processes(s.acc, loss.detach())
            if not math.isfinite(value):
                raise TrainingError(self._non_finite_message("loss", step, s.scheduler.get_last_lr()[0]))
            s.acc.backward(loss)
            average_gradients(s.acc, s.sync_after_backward)
        except torch.cuda.OutOfMemoryError:
            s.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(
                f"out of GPU memory at step {step} with batch_size={cfg.batch_size}. Use a smaller batch_size, "
                "or CachedMultipleNegativesRankingLoss (same effective batch, little memory: [loss] name = "
                "'CachedMultipleNegativesRankingLoss', mini_batch_size = 32), or a shorter max_seq_length."
            ) from None
        # Clipping (a no-op with max_grad_norm 0 -> inf) also gives the gradient norm: a NaN/inf
        # gradient with a finite loss must not reach the weights either.
        norm = s.acc.clip_grad_norm_(s.params, cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
        if norm is not None and not math.isfinite(float(norm)):
            s.optimizer.zero_grad(set_to_none=True)
            raise TrainingError(self._non_finite_message("gradients", step, s.scheduler.get_last_lr()[0]))
        s.optimizer.step()
        s.scheduler.step()
        s.optimizer.zero_grad(set_to_none=True)
        self.step = step
        self._rng_before_step = None
        return value

    def _after_step(self, s: _Session, step: int, window: _Window, t0: float) -> None:
        """The fixed points: a Step event every ``log_every`` steps and at the last, an evaluation
        every ``eval_every`` and a checkpoint every ``checkpoint_every`` (the last step's evaluation
        and final save are :meth:`_finish`'s)."""
        cfg, total = self.config, s.plan.total_steps
        if s.acc.is_main_process and (step % max(cfg.log_every, 1) == 0 or step == total):
            now = time.perf_counter()
            self._emit(Step(step=step, epoch=s.plan.epoch_of(step), loss=window.loss / window.steps,
                            lr=s.scheduler.get_last_lr()[0], examples_per_s=window.examples / max(now - window.since, 1e-9),
                            elapsed_s=now - t0, total_steps=total))
            window.reset()
        if cfg.eval_every and step % cfg.eval_every == 0 and step != total:
            self._evaluate(s, step)
            s.model.train()
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != total:
            self._checkpoint(s, step)

    def _finish(self, s: _Session, reason: str, t0: float) -> Any:
        """Evaluate the last step, take the best weights back (``keep_best``), save the final model,
        emit Done, then drop the checkpoints and ``best/`` (the final model holds its weights); returns the model."""
        acc, main = s.acc, s.acc.is_main_process
        s.model.eval()
        if self.evaluator is not None and self._last_eval_step != self.step:
            self._evaluate(s, self.step)
        acc.wait_for_everyone()
        self.loss.model = self.model  # not the DDP wrapper
        if (self.config.keep_best and self.run_dir is not None and self.best_step is not None
                and self.best_step != self._last_eval_step):
            self._load_weights(self.run_dir.best_path)
            if not self._best_metrics and self.run_dir.metrics_path.exists():  # a resumed run: the log has it
                from workbench.training.events import RunHistory

                best = [e for e in RunHistory.from_jsonl(self.run_dir.metrics_path).evals if e.step == self.best_step]
                self._best_metrics = dict(best[-1].metrics) if best else {}
            if self._best_metrics:  # what is reported is what the saved weights scored
                self.final_metrics = dict(self._best_metrics)
        self.elapsed_s = time.perf_counter() - t0
        try:
            model_path = str(self._save_final()) if self.run_dir is not None and main else None
        except OSError as err:  # a full disk, a folder that went read-only: the log says so, the run can resume
            message = (f"saving the final model to {self.run_dir.model_path} failed: {err.strerror or err}; the run's "
                       f"checkpoints (if any) are kept: make room and --resume, or start again")
            self._emit(Done(step=self.step, reason="failed", elapsed_s=time.perf_counter() - t0,
                            best_step=self.best_step, best_value=self.best_value, error=message))
            raise TrainingError(message) from None
        if main:  # Done is on disk before the checkpoints and best/ go: a kill while deleting them loses nothing
            self._emit(Done(step=self.step, reason=reason, elapsed_s=time.perf_counter() - t0,
                            best_step=self.best_step, best_value=self.best_value, model_path=model_path))
            if self.run_dir is not None:
                self.run_dir.clear_checkpoints()
                self.run_dir.discard_best()  # one copy of the model per finished run: model/ holds the best weights
        acc.wait_for_everyone()  # every process returns once the run folder is complete
        return self.model

    def _abort(self, s: _Session, reason: str, t0: float, error: str | None = None) -> None:
        """A step failed or was interrupted: checkpoint the weights before it, and emit Done."""
        if self.run_dir is not None:
            self._checkpoint(s, self.step, all_processes=False)
        if s.acc.is_main_process:
            self._emit(Done(step=self.step, reason=reason, elapsed_s=time.perf_counter() - t0,
                            best_step=self.best_step, best_value=self.best_value, error=error))

    # ----- evaluation, checkpoints -----------------------------------------------------------
    def _evaluate(self, s: _Session, step: int) -> None:
        if self.evaluator is None:
            return
        acc = s.acc
        self._last_eval_step = step
        if not acc.is_main_process:
            acc.wait_for_everyone()
            self.best_value, self.best_step = from_main(acc, None)
            return
        with progress_bars(False):  # the events report evaluations; no bar of their own in the cell
            metrics = {k: float(v) for k, v in self.evaluator(self.model).items()}
        primary = getattr(self.evaluator, "primary_metric", None)
        value = metrics.get(primary) if primary else None
        is_best = value is not None and math.isfinite(value) and (self.best_value is None or value > self.best_value)
        if is_best:
            self.best_value, self.best_step = value, step
            self._best_metrics = dict(metrics)
            if self.run_dir is not None and self.config.keep_best:
                self.model.save(self.run_dir.best_path)
        self.final_metrics = dict(metrics)
        self._emit(Eval(step=step, epoch=s.plan.epoch_of(step), metrics=metrics, primary=primary, value=value, is_best=is_best))
        acc.wait_for_everyone()
        from_main(acc, (self.best_value, self.best_step))  # so every process loads the same best weights

    def _checkpoint(self, s: _Session, step: int, all_processes: bool = True) -> None:
        """Save a resumable checkpoint (main process). ``all_processes``: every process is here
        (not so after an error on one), so each one's RNG state is gathered: their dropout
        streams differ, and an exact resume needs them all."""
        if self.run_dir is None:
            return
        if not all_processes and self.run_dir.has_checkpoint(step):
            return  # the good checkpoint of this step, written when it completed, stays as it is
        rng_state = self._rng_before_step if self._rng_before_step is not None else rng.capture()
        per_process = gather_from_all(s.acc, rng_state) if all_processes else None  # in process order
        if not s.acc.is_main_process:
            return
        trainer_state = {
            "step": step,
            "optimizer": s.optimizer.state_dict(),
            "scheduler": s.scheduler.state_dict(),
            "rng": rng_state,
            "rng_per_process": per_process,
            "loss_params": {name: p.detach().cpu() for name, p in s.loss_params.items()},
            "best_value": self.best_value,
            "best_step": self.best_step,
            "last_eval_step": self._last_eval_step,
        }
        path = self.run_dir.save_checkpoint(step, self.model, trainer_state, self.config.keep_checkpoints)
        self._emit(Checkpoint(step=step, path=str(path)))

    def _restore(self, s: _Session, allow_changes: bool = False) -> _Session:
        """Load the latest checkpoint: weights, optimizer, schedule, RNG, best so far; returns the
        session starting after its step."""
        acc = s.acc
        if acc.is_main_process:
            self.run_dir.remove_leftovers()
        found = self.run_dir.latest_checkpoint()
        if found is None:
            ended = RunHistory.from_jsonl(self.run_dir.metrics_path).done if self.run_dir.metrics_path.exists() else None
            if ended is not None and ended.reason == "completed":
                raise FileNotFoundError(f"the run in {self.run_dir.path} already completed (its model is in "
                                        f"{self.run_dir.model_path}); there is nothing to resume: start a new run")
            raise FileNotFoundError(f"no checkpoint to resume from in {self.run_dir.path / 'checkpoints'}")
        self._check_settings(acc, allow_changes)  # a run to resume exists: does it go on as it started?
        model_dir, state = found
        self._load_weights(model_dir)
        with torch.no_grad():
            for name, saved in state.get("loss_params", {}).items():  # absent in checkpoints from before
                s.loss_params[name].copy_(saved)
        s.optimizer.load_state_dict(state["optimizer"])
        s.scheduler.load_state_dict(state["scheduler"])
        per_process = state.get("rng_per_process")
        one_each = per_process is not None and len(per_process) == acc.num_processes
        rng.restore(per_process[acc.process_index] if one_each else state["rng"])
        self.best_value, self.best_step = state["best_value"], state["best_step"]
        self._last_eval_step = state.get("last_eval_step")
        if acc.is_main_process:
            self.run_dir.truncate_log(state["step"])
        return _replace(s, start=int(state["step"]))

    def _load_weights(self, folder: Path) -> None:
        from workbench.models import load_model

        self.model.load_state_dict(load_model(folder, device="cpu").state_dict())

    def _save_final(self) -> Path:
        card = None
        if self.card is not None:
            card = self.card(self.model, RunHistory.from_jsonl(self.run_dir.metrics_path), self)
        return self.model.save(self.run_dir.model_path, card=card)

    def _non_finite_message(self, what: str, step: int, lr: float) -> str:
        last = self.run_dir.latest_checkpoint_path() if self.run_dir is not None else None
        where = f"; the last good checkpoint is {last}" if last else ""
        return (
            f"the {what} became non-finite (NaN or inf) at step {step} (learning rate {lr:.3g}); the weights before this "
            f"step are kept{where}. Try a lower learning rate, a longer warmup, or mixed_precision='bf16' instead of 'fp16'."
        )


@dataclass(frozen=True)
class _Session:
    """What one :meth:`Trainer.fit` trains with, made by ``Trainer._setup``."""

    acc: Any  # the accelerate.Accelerator
    model: torch.nn.Module  # as accelerate prepared it: DDP-wrapped under several processes
    optimizer: Any
    scheduler: Any
    data: list[TokenizedData]  # one per data set
    plan: _Plan
    loss_params: dict[str, torch.nn.Parameter]  # the loss's own trained weights, by name
    params: list[torch.nn.Parameter]  # every trained parameter, the model's first: clipped together
    sync_after_backward: list[torch.nn.Parameter]  # whose gradients DDP's hooks do not average
    start: int  # the steps already done: 0, or a resumed checkpoint's step


class _Window:
    """The steps since the last Step event: their summed loss, their examples, when they began."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss, self.steps, self.examples, self.since = 0.0, 0, 0, time.perf_counter()

    def add(self, loss: float, examples: int) -> None:
        self.loss += loss
        self.steps += 1
        self.examples += examples


class _Plan:
    """Which rows each step trains on, fixed in advance by the seed (so resuming replays them).

    With several data sets, an epoch is one pass over all of them; each batch comes from one
    data set (its columns may differ from the others'), and the batches of all sets are
    shuffled together, so each set is seen in proportion to its size. With ``world`` processes,
    a batch of fewer than ``world`` rows (a last, partial one) is dropped: each process needs a row.
    """

    def __init__(self, data: list[TokenizedData], cfg: TrainConfig, world: int = 1):
        self.data, self.cfg, self.world = data, cfg, world
        self._epochs: list[list[tuple[int, list[int]]]] = []
        per_epoch = len(self._epoch(0))
        if per_epoch == 0:
            raise ValueError(f"no full batch of {cfg.batch_size} rows in the training data (drop_last=True)")
        self.total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * per_epoch

    def _epoch(self, e: int) -> list[tuple[int, list[int]]]:
        while len(self._epochs) <= e:
            n, c = len(self._epochs), self.cfg
            batches = [(i, b) for i, d in enumerate(self.data)
                       for b in d.epoch_batches(n, c.batch_size, c.seed + 7919 * i, c.no_duplicates, c.drop_last)
                       if len(b) >= self.world]
            if len(self.data) > 1:
                gen = torch.Generator().manual_seed(c.seed * 100_003 + n + 1)
                batches = [batches[j] for j in torch.randperm(len(batches), generator=gen).tolist()]
            self._epochs.append(batches)
        return self._epochs[e]

    def _locate(self, step: int) -> tuple[int, int]:
        e, i = 0, step - 1
        while i >= len(self._epoch(e)):
            i -= len(self._epoch(e))
            e += 1
        return e, i

    def rows(self, step: int, rank: int = 0, world: int = 1) -> tuple[int, list[int]]:
        """(data set index, rows) of a step; with several processes each takes its share of the batch."""
        e, i = self._locate(step)
        source, batch = self._epoch(e)[i]
        return source, (batch[rank::world] if world > 1 else batch)

    def epoch_of(self, step: int) -> float:
        if step == 0:
            return 0.0
        e, i = self._locate(step)
        return round(e + (i + 1) / len(self._epoch(e)), 4)


def _named_datasets(train_data: Any) -> dict[str, Any]:
    """One data set, or several as ``{name: data}`` (e.g. caption pairs and NLI triplets).

    A dict whose values are data sets (a ``datasets.Dataset``, a dict of columns or a list of
    row dicts) holds several; any other dict is one data set's columns.
    """

    def is_dataset(v: Any) -> bool:
        return hasattr(v, "column_names") or isinstance(v, dict) or (isinstance(v, list) and bool(v) and isinstance(v[0], dict))

    if isinstance(train_data, dict) and train_data and all(is_dataset(v) for v in train_data.values()):
        return dict(train_data)
    return {"train": train_data}


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    """Linear warmup from 0, then linear decay to 0 (the schedule sentence-transformers' trainer uses)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _own_parameters(loss: torch.nn.Module, model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The loss's trainable parameters that are not the model's (e.g. a classifier head), by name."""
    models = {id(p) for p in model.parameters()}
    return {name: p for name, p in loss.named_parameters() if p.requires_grad and id(p) not in models}


def _param_groups(modules: Iterable[torch.nn.Module], weight_decay: float) -> list[dict[str, Any]]:
    """AdamW's two groups over the trainable parameters of ``modules``, each parameter once (a loss
    holds the model): weight decay on matrices, none on biases and LayerNorm weights."""
    decay, no_decay, seen = [], [], set()
    for module in modules:
        for name, p in module.named_parameters():
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _loss_config(loss: Any) -> dict[str, Any]:
    return loss.config() if hasattr(loss, "config") else {"name": type(loss).__name__}
