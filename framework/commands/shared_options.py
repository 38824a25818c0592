"""Command-line options and parsing shared by `aebench run` and `aebench validate`: where the model and
its latents come from, and comma-separated lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

# in the order --help lists them
_MODEL_SOURCE = (
    click.option("--dataset", help="Registered data set (default: orl_faces). See `aebench datasets`."),
    click.option("--model", "model", metavar="CKPT|MODULE:FACTORY",
                 help="A trained checkpoint (.safetensors) or your own AE as package.module:factory."),
    click.option("--checkpoint", type=click.Path(dir_okay=False), help="A trained aebench checkpoint."),
    click.option("--train-latents", type=click.Path(dir_okay=False),
                 help="Training latents (.npy or .safetensors) instead of encoding a data set."),
    click.option("--heldout-latents", type=click.Path(dir_okay=False), help="Held-out latents, with --train-latents."),
)


def model_source_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--dataset, --model, --checkpoint, --train-latents and --heldout-latents."""
    for option in reversed(_MODEL_SOURCE):
        command = option(command)
    return command


def model_overrides(model: str | None, checkpoint: str | None) -> dict[str, str]:
    """RunConfig keys for --model (a checkpoint path, or package.module:factory) and --checkpoint."""
    out: dict[str, str] = {}
    if model is not None:
        out["model" if ":" in model and not Path(model).exists() else "checkpoint"] = model
    if checkpoint is not None:
        out["checkpoint"] = checkpoint
    return out


def split_list(values: tuple[str, ...]) -> list[str] | None:
    """`--metrics a,b --metrics c` -> [a, b, c]; nothing given -> None (keep the default)."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]
