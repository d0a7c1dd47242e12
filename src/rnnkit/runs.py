"""The run folder: everything a trained model needs, written atomically.

    config.json        task, data/model/train options, rnnkit version, the files it was trained on
    vocab.json         the token vocabulary and the label vocabulary
    model.safetensors  the best weights (best on dev, else the last)
    checkpoint.pt      the last state for --resume: weights, optimiser, epoch, batch, RNG, history
    history.csv        one row per epoch
    metrics.json       the dev report of the best weights
    learning_curves.png, confusion.png

Every file is written to a temporary name in the same folder and then renamed over the old one,
so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from rnnkit.errors import UserError

FORMAT = "rnnkit-run"
FORMAT_VERSION = 1


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_record(task: str, data_config, model_config, train_config, files: dict, **extra) -> dict:
    """What config.json holds: the format marker, rnnkit's version, the task, the files and the
    three configs (dataclasses), so that `rnnkit.load` can rebuild the model."""
    import dataclasses

    from rnnkit import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rnnkit_version": __version__,
        "task": task,
        "files": files,
        **extra,
        "data": dataclasses.asdict(data_config),
        "model": dataclasses.asdict(model_config),
        "train": dataclasses.asdict(train_config),
    }


class RunFolder:
    """A run folder at `path`. Nothing is written until a save method is called."""

    def __init__(self, path):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return (self.path / "config.json").is_file()

    # writing
    def write_json(self, name: str, obj) -> None:
        atomic_write_bytes(self.path / name, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode())

    def write_csv(self, name: str, rows: list[dict]) -> None:
        buf = io.StringIO()
        if rows:
            fields = list(dict.fromkeys(k for row in rows for k in row))
            w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        atomic_write_bytes(self.path / name, buf.getvalue().encode())

    def save_weights(self, state_dict: dict) -> None:
        """Tensors (torch, written with safetensors.torch) or NumPy arrays (the reference)."""
        if all(isinstance(v, np.ndarray) for v in state_dict.values()):
            from safetensors.numpy import save

            data = save({k: np.ascontiguousarray(v) for k, v in state_dict.items()})
        else:
            from safetensors.torch import save

            data = save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})
        atomic_write_bytes(self.path / "model.safetensors", data)

    def save_checkpoint(self, state: dict) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.path / "checkpoint.pt", buf.getvalue())

    # reading
    def _missing(self, name: str) -> UserError:
        return UserError(
            f"{self.path}: not a usable rnnkit run folder ({name} is missing); train one with 'rnnkit train'"
        )

    def read_json(self, name: str):
        p = self.path / name
        if not p.is_file():
            raise self._missing(name)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise UserError(f"{p}: corrupt run file ({e}); retrain or restore the folder") from None

    def read_config(self, task: str | None = None) -> dict:
        if not self.path.is_dir():
            raise UserError(f"{self.path}: no such run folder")
        config = self.read_json("config.json")
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            raise UserError(f"{self.path / 'config.json'}: not an rnnkit run config")
        if config.get("format_version") != FORMAT_VERSION:
            raise UserError(
                f"{self.path}: run folder format {config.get('format_version')!r} is not "
                f"the {FORMAT_VERSION} this rnnkit reads; retrain with this version"
            )
        if task is not None and config.get("task") != task:
            raise UserError(f"{self.path}: a {config.get('task')!r} run, expected a {task!r} run")
        return config

    def load_weights(self, numpy: bool = False) -> dict:
        """The weights as torch tensors, or as NumPy arrays with numpy=True (the reference)."""
        if numpy:
            from safetensors.numpy import load_file
        else:
            from safetensors.torch import load_file
        p = self.path / "model.safetensors"
        if not p.is_file():
            raise self._missing("model.safetensors")
        try:
            return load_file(p)
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"{p}: corrupt weights ({e}); retrain or restore the folder") from None

    def load_checkpoint(self) -> dict | None:
        p = self.path / "checkpoint.pt"
        if not p.is_file():
            return None
        import torch

        try:
            return torch.load(p, map_location="cpu", weights_only=False)
        except Exception as e:  # a torn or foreign file: say which and stop
            raise UserError(f"{p}: corrupt checkpoint ({type(e).__name__}); cannot resume") from None
