"""Experiment tracking: a run's metrics.jsonl records mirrored to TensorBoard event files (TrainConfig.tracking).

With `tracking="tensorboard"` every record that goes to metrics.jsonl is also written as scalars to
`<run>/tensorboard/`: each number of a record as `<kind>/<key>` at the record's step (kind = train or valid),
each list of numbers (KL per dimension) as `<kind>/<key>/<i>`, with the record's time as wall time; the run's
config once as text. A sweep's trials are run directories in the sweep's folder, so
`tensorboard --logdir <that folder>` shows every trial. The tensorboard package is an optional install: a
run asking for it without it fails at the start with a message saying how to install it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vae_core.config import TrainConfig

LOG_FOLDER = "tensorboard"  # <run>/tensorboard/: the event files
SKIPPED_KEYS = ("step", "time", "kind")  # the x axis, the wall time and the tag prefix, not curves


class TrackingUnavailable(RuntimeError):
    """The tracking backend a run asks for is not installed."""


def scalars_of(record: dict[str, Any]) -> dict[str, float]:
    """The scalars one metrics.jsonl record is tracked as: {"<kind>/<key>": value, "<kind>/<key>/<i>": value}.

    Numbers only (booleans, strings, None and non-finite values are left out)."""
    kind = str(record.get("kind", "train"))
    out: dict[str, float] = {}

    def add(tag: str, v: Any) -> None:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out[tag] = float(v)

    for key, value in record.items():
        if key in SKIPPED_KEYS:
            continue
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                add(f"{kind}/{key}/{i:02d}", v)
        else:
            add(f"{kind}/{key}", value)
    return out


class TensorBoardTracker:
    """Writes metrics records to TensorBoard event files in `log_dir` (torch.utils.tensorboard.SummaryWriter)."""

    def __init__(self, log_dir: Path, config_text: str = "") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # torch's module imports the tensorboard package
            raise TrackingUnavailable(
                "tracking='tensorboard' needs the tensorboard package, which is not installed: "
                "`pip install tensorboard` (or train with tracking='off')"
            ) from e
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))
        if config_text:
            self.writer.add_text("config", config_text)

    def record(self, rec: dict[str, Any]) -> None:
        """One metrics.jsonl record, as scalars at its step (see `scalars_of`), flushed so dashboards see it."""
        step = rec.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            return
        walltime = rec.get("time") if isinstance(rec.get("time"), (int, float)) else None
        for tag, value in scalars_of(rec).items():
            self.writer.add_scalar(tag, value, global_step=step, walltime=walltime)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@contextlib.contextmanager
def tracked(run_dir: Path, config: TrainConfig, callbacks: Any, enabled: bool = True) -> Iterator[Any]:
    """`callbacks` (a `train.Callbacks`) with every record also sent to the tracker the run's config asks for;
    unchanged when tracking is off or `enabled` is false (DDP ranks other than 0). The tracker is closed when
    the block ends. TrackingUnavailable when its package is missing."""
    if not enabled or config.tracking == "off":
        yield callbacks
        return
    try:  # the run's config.json, shown once as text beside the curves
        text = (Path(run_dir) / "config.json").read_text(encoding="utf-8")
    except OSError:
        text = ""
    tracker = TensorBoardTracker(Path(run_dir) / LOG_FOLDER, "    " + text.replace("\n", "\n    ") if text else "")

    def both(hook: Any) -> Any:
        def call(rec: dict[str, Any]) -> None:
            tracker.record(rec)
            if hook is not None:
                hook(rec)
        return call

    try:
        yield dataclasses.replace(callbacks, on_step=both(callbacks.on_step), on_eval=both(callbacks.on_eval))
    finally:
        tracker.close()


__all__ = ["LOG_FOLDER", "TensorBoardTracker", "TrackingUnavailable", "scalars_of", "tracked"]
