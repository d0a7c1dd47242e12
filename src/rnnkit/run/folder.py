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

A run folder is one unit. Training takes an exclusive OS lock (`RunLock`, released by the kernel
when the process dies) and writes a new run into a staging folder beside `out`
(`.NAME.rnnkit-new`), which replaces `out` in one atomic exchange when the run first has a
complete state (`RunFolder.publish`): a checkpoint, and with an old run to replace, best weights
too. Until then `out` holds the old run, whole; after, the new one, whole. A reader (`read_run`)
opens the folder once and every file relative to it, so that it too gets the old run or the new
one whole. `fingerprint` records the training data so that `--resume` can tell when it is given
other data.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from rnnkit.errors import UserError
from rnnkit.run.files import open_temp

FORMAT = "rnnkit-run"
FORMAT_VERSION = 1


def file_error(path, doing: str, e: OSError) -> UserError:
    """A file-system failure as one line: the path, what was being done, and why (disk full, ...)."""
    return UserError(f"{path}: cannot {doing} ({e.strerror or e})")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, flush it to disk, and rename it over `path`.
    A failure (a read-only folder, a full disk) leaves `path` as it was and is a UserError. The
    file's mode follows the umask (tempfiles.open_temp), as a file written in place would."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = open_temp(path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise file_error(path, "write", e) from None
    except BaseException:
        if tmp is not None:
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


OPENAT = os.open in os.supports_dir_fd  # files opened relative to an open folder (POSIX openat); not on Windows
STAGING, OLD = ".rnnkit-new", ".rnnkit-old"  # suffixes of the hidden folders beside a run while it is swapped
MEGABYTE = 1 << 20


def _beside(out: Path, suffix: str) -> Path:
    return out.parent / f".{out.name}{suffix}"


def is_run(path) -> bool:
    """Whether `path` holds an rnnkit run (a config.json of the run format), whole or unfinished."""
    config = Path(path) / "config.json"
    try:
        return config.is_file() and f'"format": "{FORMAT}"' in config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


class RunFolder:
    """A run folder at `path`. Nothing is written until a save method is called.

    A staged run (`RunFolder.staged(out)`) writes into a hidden folder beside `out` and becomes
    `out` at `publish`, which its first checkpoint calls once the run is complete enough to
    replace what `out` held: at once for a new run, and with best weights saved for an overwrite."""

    def __init__(self, path, target=None, replaces: bool = False):
        self.path = Path(path)  # where files are written now
        self.target = self.path if target is None else Path(target)  # where the run lives once published
        self.replaces = replaces  # an old run at target, replaced whole at publish
        self.origin = self.target  # the folder whose config.json a --resume continues (TrainingFolder)
        self.keeps_config = False  # staged from a killed run's config.json, kept if this run fails too
        self._dir_fd = None  # while reading(): the folder's fd, which every file is opened relative to

    @classmethod
    def staged(cls, out, keep_config: bool = False) -> RunFolder:
        """A new run for `out`, written into a fresh staging folder beside it. Call under RunLock.
        A killed run's staging folder is emptied, but for its config.json with `keep_config` (a
        --resume of a run killed before its first checkpoint starts over from it)."""
        out = Path(out)
        staging = _beside(out, STAGING)
        keep = keep_config and is_run(staging)
        try:
            if keep:
                _empty_but(staging, "config.json")
            else:
                remove_tree(staging)  # a killed run's
                staging.mkdir(parents=True)
        except OSError as e:
            raise file_error(staging, "create the run folder", e) from None
        run = cls(staging, target=out, replaces=is_run(out))
        run.keeps_config = keep
        return run

    @property
    def published(self) -> bool:
        return self.path == self.target

    def publish(self) -> None:
        """Put the staged run in place of `target` in one step: an atomic exchange where the OS
        has one (Linux renameat2), else two renames that `recover` completes after a kill."""
        if self.published:
            return
        staging, out = self.path, self.target
        try:
            if is_run(out) or (out.is_dir() and any(out.iterdir())):
                if not _exchange(staging, out):
                    old = _beside(out, OLD)
                    remove_tree(old)
                    os.rename(out, old)
                    os.rename(staging, out)
                    staging = old
                remove_tree(staging)  # the old run, now out of the way
            elif out.is_dir():  # an empty folder (perhaps a shell's working directory): fill it, keep it
                for f in sorted(staging.iterdir(), key=lambda f: f.name == "checkpoint.pt"):  # the checkpoint last
                    os.rename(f, out / f.name)
                staging.rmdir()
            else:
                os.rename(staging, out)
        except OSError as e:
            raise file_error(out, "put the new run in place", e) from None
        self.path = out

    def discard(self) -> None:
        """Forget a staged run that never became complete: `target` keeps what it held. One that
        started over from a killed run's config.json keeps that file, for --resume to try again."""
        if self.published:
            return
        if self.keeps_config:
            try:
                _empty_but(self.path, "config.json")
            except OSError:
                remove_tree(self.path)
        else:
            remove_tree(self.path)

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
        if not self.replaces or (self.path / "model.safetensors").is_file():
            self.publish()  # the first state the run can resume from, and for an overwrite also load

    # reading
    @contextmanager
    def reading(self):
        """Within it, the run's files are read from the folder that `path` named on entry: opened
        once, each file opened relative to it, so all of them come from one directory inode and a
        run that a training swaps in meanwhile (publish) is never mixed with this one. A file the
        swap removed before it was read raises RunReplaced: `read_run` then reads the new run."""
        if not OPENAT:  # files are read by name
            yield self
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            if _beside(self.path, OLD).is_dir():  # between publish's two renames: the new run comes next
                raise RunReplaced(self.path) from None
            raise UserError(f"{self.path}: no such run folder") from None
        except OSError as e:
            raise file_error(self.path, "open the run folder", e) from None
        self._dir_fd = fd
        try:
            yield self
        finally:
            self._dir_fd = None
            os.close(fd)

    def _open(self, name: str):
        """The run's file `name`, open for reading bytes: in the folder `reading` opened, else by name."""
        if self._dir_fd is None:
            return open(self.path / name, "rb")
        try:
            return open(name, "rb", opener=lambda n, flags: os.open(n, flags, dir_fd=self._dir_fd))
        except FileNotFoundError:
            if self._replaced():
                raise RunReplaced(self.path) from None
            raise

    def _replaced(self) -> bool:
        """Whether `path` names another folder now (or none) than the one `reading` opened."""
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        opened = os.fstat(self._dir_fd)
        return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)

    def _missing(self, name: str) -> UserError:
        return UserError(
            f"{self.path}: not a usable rnnkit run folder ({name} is missing); train one with 'rnnkit train'"
        )

    def read_json(self, name: str):
        p = self.path / name
        try:
            with self._open(name) as f:
                data = f.read()
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(name) from None
        except OSError as e:
            raise file_error(p, "read the run file", e) from None
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, a number too big, nesting too deep
            raise UserError(
                f"{p}: corrupt run file ({type(e).__name__}: {str(e)[:80]}); retrain or restore it"
            ) from None

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
        from rnnkit.config import TASKS

        if config.get("task") not in TASKS:
            raise UserError(f"{self.path / 'config.json'}: unknown task {config.get('task')!r}; rnnkit knows {TASKS}")
        if task is not None and config.get("task") != task:
            raise UserError(f"{self.path}: a {config.get('task')!r} run, expected a {task!r} run")
        return config

    def load_weights(self, numpy: bool = False) -> dict:
        """The weights as torch tensors, or as NumPy arrays with numpy=True (the reference)."""
        p = self.path / "model.safetensors"
        try:
            with self._open("model.safetensors") as f:
                return _load_safetensors(f, numpy)
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing("model.safetensors") from None
        except PermissionError as e:
            raise file_error(p, "read the weights", e) from None
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"{p}: corrupt weights ({e}); retrain or restore the folder") from None

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The name and shape of every tensor in model.safetensors, read from its header alone."""
        p = self.path / "model.safetensors"
        try:
            with self._open("model.safetensors") as f:
                return _header_shapes(f)
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing("model.safetensors") from None
        except OSError as e:
            raise file_error(p, "read the weights", e) from None
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise UserError(f"{p}: corrupt weights ({e}); retrain or restore the folder") from None

    def build_network(self, build):
        """`build()` with this run's weights, once the shapes it would make (built on the meta
        device: no memory) match those in model.safetensors' header; a config that does not fit
        its weights, or weights that hold NaN or inf, are a UserError."""
        import torch

        shapes = self.weight_shapes()
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in build().state_dict().items()}
        if expected != shapes:
            key = next((k for k in sorted(set(expected) | set(shapes)) if expected.get(k) != shapes.get(k)), None)
            raise UserError(
                f"{self.path / 'model.safetensors'}: weights do not fit the config ({key}: the config makes "
                f"{expected.get(key, 'nothing')}, the weights hold {shapes.get(key, 'nothing')})"
            )
        weights = self.load_weights()
        _check_finite(weights, self.path / "model.safetensors")
        net = build()
        try:
            net.load_state_dict(weights)
        except RuntimeError as e:
            raise UserError(
                f"{self.path / 'model.safetensors'}: weights do not fit the config ({str(e).splitlines()[0]})"
            ) from None
        return net

    def load_checkpoint(self, max_bytes: int | None = None) -> dict | None:
        """checkpoint.pt, read with torch.load(weights_only=True): tensors, numbers, strings,
        lists and dicts only. A pickle that would run code is refused, never executed; so is a
        file that is not the zip archive torch.save writes, and, with `max_bytes`, one whose
        members unpack to more (a zip bomb: a few KB that inflate to gigabytes in memory)."""
        p = self.path / "checkpoint.pt"
        if not p.is_file():
            return None
        import pickle

        import torch

        try:
            with open(p, "rb") as f:
                _check_archive(f, p, max_bytes)
                f.seek(0)
                return torch.load(f, map_location="cpu", weights_only=True)
        except OSError as e:
            raise file_error(p, "read the checkpoint", e) from None
        except pickle.UnpicklingError as e:
            raise UserError(
                f"{p}: the checkpoint holds something other than tensors, numbers and text "
                f"({str(e).splitlines()[0][:100]}); it was not loaded, and cannot be resumed"
            ) from None
        except UserError:
            raise
        except Exception as e:  # a torn or foreign file: say which and stop
            raise UserError(f"{p}: corrupt checkpoint ({type(e).__name__}); cannot resume") from None


class RunReplaced(Exception):
    """A training replaced the run folder (publish) while it was being read; `read_run` reads it again."""


READ_TRIES = 5  # a run replaced this many times while one load reads it is being overwritten in a loop


def read_run(path, read):
    """`read(run)` for the RunFolder at `path` within `run.reading()`: every file from one
    directory inode, so a run that is overwritten meanwhile is read old or new, whole. When the
    old one went away before all of it was read, it is read again (a few times at most)."""
    for attempt in range(READ_TRIES):
        try:
            with RunFolder(path).reading() as run:
                return read(run)
        except RunReplaced:
            time.sleep(0.01 * attempt)  # between publish's two renames, the new run is a moment away
    raise UserError(
        f"{path}: the run was replaced {READ_TRIES} times while it was read (a training overwrites it "
        "in a loop); try again once it is done"
    )


def _load_safetensors(f, numpy: bool) -> dict:
    """The tensors of the open safetensors file `f`: memory-mapped through /proc/self/fd where
    Linux has it (the file as opened, whatever its name names now), else read whole."""
    if numpy:
        from safetensors.numpy import load, load_file
    else:
        from safetensors.torch import load, load_file
    opened = f"/proc/self/fd/{f.fileno()}"
    if os.path.exists(opened):
        return load_file(opened)
    return load(f.read())


def _header_shapes(f) -> dict[str, tuple[int, ...]]:
    """The name and shape of every tensor in the safetensors header of the open file `f`."""
    size = int.from_bytes(f.read(8), "little")
    available = os.fstat(f.fileno()).st_size - 8
    if not 0 < size <= min(100 * MEGABYTE, available):
        raise ValueError(f"a header of {size:,} bytes in a file of {available + 8:,}")
    try:
        header = json.loads(f.read(size))
    except RecursionError:
        raise ValueError("a header nested too deeply to read") from None
    if not isinstance(header, dict):
        raise ValueError(f"a header that is a JSON {type(header).__name__}, not an object")
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def _check_finite(weights: dict, path: Path) -> None:
    """Refuse weights that hold NaN or inf (a training that diverged, a damaged file): they would
    predict nonsense, and evaluate would score it, with no sign that anything is wrong."""
    import torch

    for name, w in weights.items():
        if w.is_floating_point() and not bool(torch.isfinite(w).all()):
            what = "NaN" if bool(torch.isnan(w).any()) else "inf"
            raise UserError(
                f"{path}: weight {name} holds {what}; the training diverged or the file is damaged: "
                "retrain (a lower --lr, or --clip) or restore the folder"
            )


def _check_archive(f, path: Path, max_bytes: int | None) -> None:
    """Read the zip directory of the open checkpoint `f` and refuse what torch.load should not
    be given: a file that is no zip archive (torn, truncated, foreign), or members that declare
    more than `max_bytes` unpacked (torch.load inflates each one into memory)."""
    import zipfile

    try:
        with zipfile.ZipFile(f) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, EOFError, ValueError) as e:
        raise UserError(
            f"{path}: not a whole checkpoint (not the zip archive torch.save writes: {str(e)[:60]}); "
            "it was truncated or is another kind of file, and cannot be resumed"
        ) from None
    if max_bytes is not None and unpacked > max_bytes:
        raise UserError(
            f"{path}: the checkpoint's members unpack to {unpacked:,} bytes, more than the {max_bytes:,} "
            "a checkpoint of this model can hold; it was not loaded (a damaged or crafted file), and cannot be resumed"
        )


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the OS
    or file system has no such call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _empty_but(folder: Path, name: str) -> None:
    """Remove every file of `folder` but `name` (a staging folder holds files only)."""
    for p in folder.iterdir():
        if p.name != name:
            p.unlink()


def recover(out) -> None:
    """After a kill between publish's two renames (where there is no atomic exchange), `out` is
    missing and the old run waits beside it: put it back. Call under RunLock."""
    out = Path(out)
    old = _beside(out, OLD)
    if old.is_dir() and not out.exists():
        os.rename(old, out)
    remove_tree(old)


class RunLock:
    """An exclusive lock on the run folder `out`, held by one training at a time: flock(2) on a
    file `.NAME.lock` beside it, holding the PID. The kernel drops it when the process dies, so a
    killed run leaves no stale lock; the file itself goes at release."""

    def __init__(self, out):
        out = Path(out)
        self.out, self.path, self.fd = out, _beside(out, ".lock"), None

    def __enter__(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # no flock here (Windows): one writer is the user's to keep
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    os.close(fd)
                    raise UserError(
                        f"{self.out}: another training (PID {holder}) is writing this run folder; "
                        "wait for it to end, stop it, or choose another --out"
                    ) from None
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:  # not a file its last holder removed while we waited
                    break
                os.close(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            raise file_error(self.out.parent, "create the run folder's lock", e) from None
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def fingerprint(source):
    """What identifies training data: size and sha256 of each file (its first and last MB when it
    is larger than 2 MB), and mtime. A folder gives its files'; a (source, target) pair, both."""
    if source is None:
        return None
    if isinstance(source, (tuple, list)):
        return [fingerprint(s) for s in source]
    p = Path(source)
    if p.is_dir():
        return {"files": {f.name: fingerprint(f) for f in sorted(p.iterdir()) if f.is_file()}}
    try:
        size = p.stat().st_size
        h = hashlib.sha256()
        with open(p, "rb") as f:
            if size <= 2 * MEGABYTE:
                h.update(f.read())
            else:
                h.update(f.read(MEGABYTE))
                f.seek(-MEGABYTE, os.SEEK_END)
                h.update(f.read(MEGABYTE))
        return {"size": size, "sha256": h.hexdigest(), "mtime_ns": p.stat().st_mtime_ns}
    except OSError as e:
        raise file_error(p, "read the data", e) from None


def fingerprint_differences(saved, now, name: str) -> list[str]:
    """How data fingerprinted as `now` differs from `saved`: size or content (mtime alone is no
    difference: a copy of the same file is the same data)."""
    if saved is None or now is None:
        return [] if saved is None and now is None else [f"{name} {'added' if saved is None else 'left out'}"]
    if isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now):
        return [d for i, (a, b) in enumerate(zip(saved, now)) for d in fingerprint_differences(a, b, f"{name}[{i}]")]
    if isinstance(saved, dict) and "files" in saved and isinstance(now, dict) and "files" in now:
        names = sorted(set(saved["files"]) | set(now["files"]))
        return [
            d for n in names for d in fingerprint_differences(saved["files"].get(n), now["files"].get(n), f"{name}/{n}")
        ]
    if not isinstance(saved, dict) or not isinstance(now, dict) or "size" not in saved or "size" not in now:
        return [f"{name} is another kind of data"]
    if saved["size"] != now["size"]:
        return [f"{name} has {now['size']:,} bytes, not the {saved['size']:,} it was trained on"]
    if saved.get("sha256") != now.get("sha256"):
        return [f"{name} has other content than it was trained on (same size)"]
    return []


def out_path(out) -> Path:
    """The run folder that --out names, as the lock and every check see it."""
    if out is None or not str(out).strip():
        raise UserError("--out is empty; name the run folder to write, e.g. --out runs/mine")
    return Path(out).expanduser().resolve()  # "." and a link to a run name the folder itself: it is what moves


def check_out(out, resume: bool, overwrite: bool) -> Path:
    """The run folder `out` a training may write, checked before any data is read: a new or
    empty folder, or a run to resume or (with overwrite) replace, in a place that can be written.
    A folder of other files is never written into. Call it under RunLock (TrainingFolder does):
    checked before, a run that another training published meanwhile would be missed, and replaced."""
    out = out_path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose another --out")
    run = is_run(out)
    if resume and not run and not is_run(_beside(out, STAGING)):  # a new run killed before its first checkpoint
        raise UserError(f"{out}: no rnnkit run to resume there; train one without --resume")
    if not resume and run and not overwrite:
        unfinished = "" if (out / "checkpoint.pt").is_file() else " (stopped before its first checkpoint)"
        raise UserError(
            f"{out}: a run folder is already there{unfinished}; use --resume to continue it "
            "(a run without a checkpoint starts over) or --overwrite to replace it"
        )
    if not run and out.is_dir():
        try:
            others = sorted(p.name for p in out.iterdir())
        except OSError as e:
            raise file_error(out, "list the folder", e) from None
        if others:
            shown = ", ".join(others[:4]) + (", ..." if len(others) > 4 else "")
            raise UserError(
                f"{out}: a folder with other files ({shown}) and no rnnkit run in it; rnnkit writes a run "
                "only into a new or empty folder, so choose another --out"
            )
    _check_writable(out if resume and run else out.parent)
    return out


def _check_writable(folder: Path) -> None:
    """Create and remove a file in `folder`, or in the nearest folder above it that exists."""
    folder = folder.absolute()
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise UserError(f"{folder}: cannot create the run folder there ({existing} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".rnnkit-write-test"):
            pass
        if existing != folder:
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise file_error(folder, "write the run folder", e) from None


class TrainingFolder:
    """The folder a training writes, under `RunLock`: the run itself when resuming from its
    checkpoint, else a staged new run that replaces `out` at its first complete state.
    A staged run that never got there is removed at exit, and `out` keeps what it held.
    Only the main process of a data-parallel training (`main`) locks and writes; `check_out`
    runs under the lock, so that of two trainings started on one `out` the second sees the run
    the first made. A --resume of a run that has no checkpoint yet starts it over from its
    config.json: the run's `origin` (`out`, or the staging folder of a new run killed there)."""

    def __init__(self, out: Path, resume: bool, overwrite: bool = False, main: bool = True):
        self.out, self.resume, self.overwrite, self.main = Path(out), resume, overwrite, main
        self.lock = RunLock(out) if main else None
        self.run: RunFolder | None = None

    def __enter__(self) -> RunFolder:
        if not self.main:  # checks what the main process sees: it writes nothing before they all start
            check_out(self.out, self.resume, self.overwrite)
            self.run = RunFolder(self.out)
        else:
            self.lock.__enter__()
            try:
                recover(self.out)
                check_out(self.out, self.resume, self.overwrite)
                self.run = self._folder()
            except BaseException:
                self.lock.__exit__()
                raise
        if self.resume:
            self.run.origin = self.out if is_run(self.out) else _beside(self.out, STAGING)
        return self.run

    def _folder(self) -> RunFolder:
        if self.resume and (self.out / "checkpoint.pt").is_file():
            return RunFolder(self.out)
        return RunFolder.staged(self.out, keep_config=self.resume and not is_run(self.out))

    def __exit__(self, *exc) -> None:
        if self.main:
            try:
                self.run.discard()
            finally:
                self.lock.__exit__()


def resumed_data(config: dict, train, dev, force: bool) -> tuple:
    """The data a resumed run trains on: what is given, else the files the run was trained on;
    refused when it is not the same data (size or content) unless `force`."""
    files = config.get("files") or {}
    train = train if train is not None else files.get("train")
    dev = dev if dev is not None else files.get("dev")
    if train is None:
        raise UserError("the run does not name its training file; give --train F")
    saved = config.get("fingerprints")
    if saved is not None and not force:
        now = data_fingerprints(train, dev)
        differences = [d for k in ("train", "dev") for d in fingerprint_differences(saved.get(k), now[k], k)]
        if differences:
            raise UserError(
                f"--resume continues a run on the data it was trained on, and {'; '.join(differences)}; "
                "train a new run on this data, or add --force to continue on it knowingly"
            )
    return train, dev


def _resolved(registry, source):
    if source is None:
        return None
    if isinstance(source, (tuple, list)):
        return [registry.resolve(s) for s in source]
    return registry.resolve(source)


def data_fingerprints(train, dev) -> dict:
    from rnnkit.data import registry

    return {"train": fingerprint(_resolved(registry, train)), "dev": fingerprint(_resolved(registry, dev))}
