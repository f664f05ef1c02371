"""scvi-tools' ``train`` arguments: the ones with a meaning here are translated, the others get
an error that names this package's equivalent (instead of a bare ``TypeError``)."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["SCVI_EQUIVALENTS", "resolve_accelerator", "translate_train_kwargs"]

#: scvi-tools / Lightning ``train`` arguments without a direct counterpart, and what to do instead.
SCVI_EQUIVALENTS: dict[str, str] = {
    "devices": "several processes run under torchrun (python -m torch.distributed.run "
    "--nproc_per_node=N -m qbm_lite.train ...); one process uses one device (accelerator=...)",
    "strategy": "data-parallel training is PyTorch DDP under torchrun (see qbm_lite.train)",
    "datasplitter_kwargs": "use train_size= and batch_size=",
    "shuffle_set_split": "the validation split is always random, seeded by the model's seed",
    "load_sparse_tensor": "nothing to do: sparse and on-disk rows are densified per minibatch",
    "check_val_every_n_epoch": "validation runs every epoch when train_size < 1",
    "early_stopping_min_delta": "early stopping uses a fixed tolerance of 1e-6; set patience=",
    "trainer_kwargs": "there is no Lightning trainer here; see QBMVAE.train's parameters",
    "logger": "per-epoch values are in model.history (a dict of lists)",
    "callbacks": "per-epoch values are in model.history; train in several calls to act between",
    "enable_checkpointing": "save explicitly with model.save(dir_path)",
    "enable_model_summary": "print(model) or print(model.module)",
    "precision": "training runs in float32",
    "gradient_clip_val": "not supported; lower lr= if training diverges",
    "use_gpu": "use accelerator='gpu' (or device='cuda' when creating the model)",
}

_PLAN_KEYS = {"lr": "lr", "weight_decay": "weight_decay", "n_epochs_kl_warmup": "kl_warmup_epochs"}
_MONITORS = ("elbo_validation", "validation_loss", "loss_validation")


def translate_train_kwargs(kwargs: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """Map scvi-tools' names onto ``QBMVAE.train``'s; raise for the rest.

    Parameters
    ----------
    kwargs
        The extra keyword arguments given to ``train``.
    explicit
        The values of ``train``'s own parameters that the caller may have set (to detect the
        same setting given twice under two names).

    Returns
    -------
    dict
        Settings to apply on top of ``train``'s own arguments.

    Raises
    ------
    TypeError
        For an unknown argument, naming the equivalent (or listing ``train``'s parameters).
    ValueError
        For a value that has no meaning here (e.g. another early-stopping monitor).
    """
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key == "early_stopping_patience":
            out["patience"] = int(value)
        elif key == "enable_progress_bar":
            out["progress"] = bool(value)
        elif key == "n_epochs_kl_warmup":
            out["kl_warmup_epochs"] = int(value)
        elif key == "validation_size":
            if value is not None:
                out["train_size"] = 1.0 - float(value)
        elif key == "early_stopping_monitor":
            if value not in _MONITORS:
                raise ValueError(
                    f"early_stopping_monitor={value!r}: early stopping here monitors the "
                    "validation loss (the negative ELBO), i.e. 'elbo_validation'."
                )
        elif key == "plan_kwargs":
            for pk, pv in dict(value or {}).items():
                if pk not in _PLAN_KEYS:
                    raise TypeError(
                        f"plan_kwargs[{pk!r}] has no equivalent here; QBMVAE.train accepts "
                        f"{sorted(_PLAN_KEYS)} in plan_kwargs, or lr=, weight_decay=, "
                        "kl_warmup_epochs=, prior_warmup_epochs= directly."
                    )
                out[_PLAN_KEYS[pk]] = pv
        elif key in SCVI_EQUIVALENTS:
            raise TypeError(f"train() does not take {key!r}: {SCVI_EQUIVALENTS[key]}.")
        else:
            raise TypeError(
                f"train() got an unexpected argument {key!r}; its parameters are "
                f"{sorted(explicit)} (and scvi-tools' early_stopping_patience, "
                "enable_progress_bar, validation_size, plan_kwargs, accelerator)."
            )
    return out


def resolve_accelerator(accelerator: str | None, current: torch.device) -> torch.device:
    """Lightning's accelerator names as a torch device (``None``: keep ``current``).

    ``"gpu"`` and ``"cuda"`` mean CUDA; ``"auto"`` CUDA when present; ``"cpu"`` the CPU.

    Raises
    ------
    ValueError
        For other names (``"mps"``, ``"tpu"``...).
    RuntimeError
        If CUDA is requested but not available.
    """
    if accelerator is None:
        return current
    name = str(accelerator).lower()
    if name in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"accelerator={accelerator!r} was requested but CUDA is not available here; "
                "use accelerator='auto' or 'cpu'."
            )
        return torch.device("cuda")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(
        f"accelerator must be 'auto', 'cpu', 'gpu' or 'cuda'; got {accelerator!r} "
        "(other accelerators are not supported)."
    )
