"""Console output: one progress bar per phase, and the libraries' own bars and logs kept quiet unless asked for."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tqdm.auto import tqdm


def phase_bar(description: str, total: float, unit: str = "it", **kwargs: Any) -> tqdm:
    """A progress bar for one phase on stderr; hidden when stderr is not a terminal (logs, tests, CI)."""
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=sys.stderr,
        disable=None,
        leave=True,
        dynamic_ncols=True,
        **kwargs,
    )


@contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """Within the block, Transformers' and huggingface_hub's own progress bars are off unless `verbose`."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    if verbose:
        yield
        return
    hub_was_disabled = are_progress_bars_disabled()
    transformers_was_enabled = transformers_logging.is_progress_bar_enabled()
    disable_progress_bars()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not hub_was_disabled:
            enable_progress_bars()
        if transformers_was_enabled:
            transformers_logging.enable_progress_bar()


def epoch_callback(total_epochs: float) -> Any:
    """A `TrainerCallback` that shows one bar over the epochs with the latest training loss and held-out accuracy."""
    from transformers import TrainerCallback

    class EpochProgress(TrainerCallback):
        """One bar for the whole run, advanced per epoch, with loss and accuracy in its postfix."""

        def __init__(self) -> None:
            self.bar: tqdm | None = None
            self.shown = 0.0
            self.postfix: dict[str, str] = {}

        def on_train_begin(self, args, state, control, **kwargs) -> None:
            self.bar = phase_bar("training", total=total_epochs, unit="epoch", bar_format=_EPOCH_FORMAT)

        def on_log(self, args, state, control, logs=None, **kwargs) -> None:
            logs = logs or {}
            if "loss" in logs:
                self.postfix["loss"] = f"{logs['loss']:.3f}"
            if "eval_accuracy" in logs:
                self.postfix["held-out acc"] = f"{logs['eval_accuracy']:.3f}"
            if self.bar is not None:
                self.bar.set_postfix(self.postfix, refresh=False)
                epoch = min(float(state.epoch or 0.0), total_epochs)
                self.bar.update(epoch - self.shown)
                self.shown = epoch

        def on_train_end(self, args, state, control, **kwargs) -> None:
            if self.bar is not None:
                self.bar.update(total_epochs - self.shown)
                self.bar.close()

    return EpochProgress()


_EPOCH_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.2g}/{total:g} epochs [{elapsed}<{remaining}{postfix}]"
