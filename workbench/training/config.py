"""The training configuration: a frozen dataclass, saved with every run and model card."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from workbench.fields import check_fields, from_mapping

MIXED_PRECISION = ("no", "fp16", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run.

    Example:
        >>> cfg = TrainConfig(lr=1e-4, batch_size=64, max_steps=500)
        >>> cfg.replace(lr=5e-5).lr
        5e-05
    """

    lr: float = 2e-5  # seed B (MNRL) uses 2e-5; seed A (distillation) 1e-4
    batch_size: int = 64
    epochs: int = 1
    max_steps: int | None = None  # when set, overrides epochs (cycling through the data as needed)
    warmup_ratio: float = 0.1  # linear warmup over this share of the steps, then linear decay to 0
    weight_decay: float = 0.01  # AdamW; not applied to biases and LayerNorm weights
    max_grad_norm: float = 1.0  # gradient clipping; 0 turns it off (a negative value is refused)
    seed: int = 0
    eval_every: int = 100  # steps between evaluations; 0 = only at the start and the end
    eval_at_start: bool = True  # evaluate the untrained model first, so curves show the starting point
    log_every: int = 10  # steps per Step event (the loss is averaged over them)
    checkpoint_every: int = 0  # steps between resumable checkpoints; 0 = none
    keep_checkpoints: int = 2  # how many recent checkpoints to keep on disk
    keep_best: bool = True  # end with the weights of the best evaluation (by the primary metric)
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # autocast through accelerate; fp16 needs CUDA
    no_duplicates: bool = True  # no text twice in a batch (in-batch negatives must be negatives)
    drop_last: bool = False  # drop a last batch smaller than batch_size

    def __post_init__(self) -> None:
        check_fields(self)  # types first: batch_size = 16.7 or keep_best = "false" never get further
        problems = []
        if not self.lr > 0:
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1 (got {self.batch_size})")
        if self.epochs < 1 and self.max_steps is None:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be >= 1 (got {self.max_steps})")
        if not 0 <= self.max_grad_norm < float("inf"):
            problems.append(f"max_grad_norm must be >= 0 (0 turns clipping off; got {self.max_grad_norm})")
        if self.epochs > 10_000:
            problems.append(f"epochs must be at most 10000 (got {self.epochs}); use max_steps for a long run")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.mixed_precision not in MIXED_PRECISION:
            problems.append(f"mixed_precision must be one of {MIXED_PRECISION} (got {self.mixed_precision!r})")
        for name in ("eval_every", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """A config from a ``[train]`` table; unknown keys and wrong types are refused.

        Example:
            >>> TrainConfig.from_dict({"lr": 1e-4, "batch_size": 32}).batch_size
            32
            >>> TrainConfig.from_dict({"batch_sise": 32})
            Traceback (most recent call last):
            ...
            ValueError: unknown key 'batch_sise' (did you mean 'batch_size'?)
        """
        return from_mapping(cls, data)
