"""What a results document's reconstruction check (`model.reconstruction`) says, in words: the warning for
a model no better than the mean image. Kept with the results, not with the check that measures it
(`aebench.run.model_check`), so that the run's terminal warning and every report read the same sentence
from the document alone."""

from __future__ import annotations

from typing import Any, Mapping


def numbers_text(check: Mapping[str, Any]) -> str:
    return (f"held-out MSE {check['heldout_mse']:.3g} vs {check['baseline_mse']:.3g} for the mean image, "
            f"{check['n']} held-out images")


def warning_text(check: Mapping[str, Any] | None) -> str | None:
    """The warning for a model no better than the mean image (None for a useful one, or no check)."""
    if not check or not check.get("worse_than_baseline"):
        return None
    return (f"The model reconstructs held-out images worse than the mean training image does ({numbers_text(check)}): "
            f"it has not learnt these images, so every sampler's decoded images will be poor and the comparison "
            f"says little. Check or train the model; --strict makes this an error.")
