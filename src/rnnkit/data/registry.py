"""Public datasets by name: `ud-ewt:train` wherever a data file is taken, and `rnnkit datasets`.

    resolve("ud-ewt:train")   # -> Path of train.conllu, from the mirror or the cache
    download("sst2")          # fetch every split not yet local, check each sha256, install in the cache

A name NAME:SPLIT is looked up, in this order, in
  1. the mirror, RNNKIT_DATA: a folder laid out as ../shared/data (NAME/FILE), used first;
  2. the cache, RNNKIT_HOME/datasets (RNNKIT_HOME defaults to $XDG_CACHE_HOME/rnnkit, else
     ~/.cache/rnnkit), where `download` puts what it fetches;
and its bytes are checked against the registered sha256 every time, so a name always means the
same data. The datasets, their URLs and checksums are in rnnkit.data.catalog.

A download streams each source to a temporary file beside its destination while hashing it,
checks the sha256, makes the split when it is not fetched as is (catalog.Split.make), checks
the split's sha256, and renames it into place: an interrupted or corrupt download leaves nothing
under the final name. A checksum mismatch deletes the temporary file and raises UserError.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rnnkit.data.catalog import DATASETS, Dataset, Source, Split, manifest
from rnnkit.errors import UserError
from rnnkit.run.files import make_temp_dir, open_temp

TIMEOUT_S = 60  # per network read
# NAME:SPLIT; a name has two characters at least, so a Windows drive ("C:") is never one
NAME_SPLIT = re.compile(r"(?P<name>[a-z0-9][a-z0-9_-]+):(?P<split>[a-z0-9_][a-z0-9_.-]*)", re.IGNORECASE)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Where datasets live


def mirror_dir() -> Path | None:
    """RNNKIT_DATA: a local folder laid out as NAME/FILE (like ../shared/data), looked in first."""
    value = os.environ.get("RNNKIT_DATA")
    return Path(value).expanduser() if value else None


def home_dir() -> Path:
    """RNNKIT_HOME, else $XDG_CACHE_HOME/rnnkit, else ~/.cache/rnnkit."""
    if os.environ.get("RNNKIT_HOME"):
        return Path(os.environ["RNNKIT_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "rnnkit"


def cache_dir() -> Path:
    return home_dir() / "datasets"


@dataclass(frozen=True)
class Found:
    path: Path
    where: str  # "mirror" or "cache"


def locate(dataset: Dataset, split: Split) -> Found | None:
    """Where `split` is on this machine (mirror first), by its name alone; nothing is read."""
    roots = [("mirror", mirror_dir()), ("cache", cache_dir())]
    for where, root in roots:
        if root is not None and (root / dataset.name / split.path).exists():
            return Found(root / dataset.name / split.path, where)
    return None


# ---------------------------------------------------------------------------------------------
# Names


def dataset(name: str) -> Dataset:
    if name.lower() not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)} (rnnkit datasets list)")
    return DATASETS[name.lower()]


def split_of(ds: Dataset, split: str) -> Split:
    if split not in ds.splits:
        raise UserError(f"dataset {ds.name!r} has no split {split!r}; its splits: {', '.join(ds.splits)}")
    return ds.splits[split]


def parse(spec: str) -> tuple[Dataset, dict[str, Split]]:
    """NAME (every split) or NAME:SPLIT (one) -> the dataset and the splits meant."""
    name, _, split = spec.partition(":")
    ds = dataset(name)
    return ds, ({split: split_of(ds, split)} if split else dict(ds.splits))


def is_name(source) -> bool:
    """Whether `source` reads as NAME:SPLIT and is not a path that exists."""
    return isinstance(source, str) and NAME_SPLIT.fullmatch(source) is not None and not Path(source).exists()


def resolve(source):
    """The local path for a NAME:SPLIT string; anything else (a path, a Path, "-") comes back as it is.

    A file or folder that exists under that name wins over a dataset name. The split must be in
    the mirror or the cache with its registered sha256; if it is not, the error says how to get it.
    """
    if not is_name(source):
        return source
    name = NAME_SPLIT.fullmatch(source)["name"]
    if name.lower() not in DATASETS:
        raise UserError(
            f"{source}: no such file, and {name!r} is not a known dataset; "
            f"known datasets: {', '.join(DATASETS)} (rnnkit datasets list)"
        )
    return local_path(source)


def local_path(spec: str) -> Path:
    """The local path of NAME:SPLIT, checked against its sha256; of NAME, the folder holding it
    (the mirror's first). Raises UserError, saying how to get it, when it is not on this machine."""
    ds, splits = parse(spec)
    if len(splits) > 1 or not spec.partition(":")[2]:
        for root in (mirror_dir(), cache_dir()):
            if root is not None and (root / ds.name).is_dir():
                return root / ds.name
        raise UserError(f"dataset {ds.name!r} is not on this machine; {_how_to_get(ds, None)}")
    ((name, split),) = splits.items()
    found = locate(ds, split)
    if found is None:
        raise UserError(f"{ds.name}:{name} is not on this machine; {_how_to_get(ds, split)}")
    check(found, ds, name)
    return found.path


def _how_to_get(ds: Dataset, split: Split | None) -> str:
    mirror, wanted = mirror_dir(), f"{ds.name}/{split.path}" if split else f"{ds.name}/"
    return (
        f"run 'rnnkit datasets download {ds.name}' (into {cache_dir()}), or set RNNKIT_DATA to a folder holding "
        f"{wanted}" + (f" (RNNKIT_DATA={mirror} has none)" if mirror else "")
    )


# ---------------------------------------------------------------------------------------------
# Checksums


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def digest(path: Path) -> str:
    """sha256 of a file; of a folder, of its manifest (`sha256sum *` inside it)."""
    if path.is_dir():
        files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file() and not p.name.startswith(".")}
        return hashlib.sha256(manifest(files)).hexdigest()
    return sha256_file(path)


def check(found: Found, ds: Dataset, name: str) -> None:
    """Raise UserError unless the local copy of split `name` has its registered sha256."""
    split, found_sha = ds.splits[name], digest(found.path)
    if found_sha != split.sha256:
        fix = (
            f"run 'rnnkit datasets download {ds.name}' to fetch it again"
            if found.where == "cache"
            else "the mirror holds other bytes than the registered version; pass the file's path to use it anyway"
        )
        raise UserError(
            f"{found.path}: sha256 mismatch for {ds.name}:{name}: expected {split.sha256}, found {found_sha}; {fix}"
        )


# ---------------------------------------------------------------------------------------------
# Download


def download(spec: str, log=_log) -> list[Path]:
    """Fetch the splits of `spec` (NAME or NAME:SPLIT) that are not already local with their
    registered sha256, into the cache. Returns the local path of every split meant."""
    ds, splits = parse(spec)
    log(f"{ds.name}: {ds.about}; licence: {ds.licence}")
    paths, fetched = [], {}  # fetched: url -> temporary file, for sources shared by several splits
    try:
        for name, split in splits.items():
            found = locate(ds, split)
            if found is not None and digest(found.path) == split.sha256:
                log(f"{ds.name}:{name}: already in the {found.where}: {found.path}")
                paths.append(found.path)
                continue
            if found is not None and found.where == "mirror":
                log(f"{ds.name}:{name}: the mirror's {found.path} is another version (and is looked in first)")
            target = cache_dir() / ds.name / split.path
            target.parent.mkdir(parents=True, exist_ok=True)
            _install(ds, name, split, target, fetched, log)
            paths.append(target)
    finally:
        for tmp in fetched.values():
            tmp.unlink(missing_ok=True)
    return paths


def _install(ds: Dataset, name: str, split: Split, target: Path, fetched: dict[str, Path], log) -> None:
    if split.make is None:  # fetched as is: the download is the split
        (source,) = split.sources
        log(f"{ds.name}:{name}: {source.url}")
        tmp = fetch(source.url, split.sha256, target.parent)
        os.replace(tmp, target)
    else:
        log(f"{ds.name}:{name}: {split.note}, from {_describe(split.sources)}")
        for source in split.sources:
            if source.url not in fetched:
                fetched[source.url] = fetch(source.url, source.sha256, target.parent)
        content = split.make({s.name: fetched[s.url].read_bytes() for s in split.sources})
        _write_checked(content, target, split, ds)
    log(f"{ds.name}:{name}: sha256 ok: {target}")


def _describe(sources: tuple[Source, ...]) -> str:
    if len(sources) == 1:
        return sources[0].url
    return f"{len(sources)} files under {sources[0].url.rsplit('/', 1)[0]}/"


def fetch(url: str, sha256: str | None, folder: Path) -> Path:
    """Stream `url` into a new temporary file in `folder`, hashing it as it comes; the file is
    deleted and UserError raised when the sha256 differs or the transfer fails."""
    fd, tmp = open_temp(folder, prefix=".download-", suffix=".part")  # its mode follows the umask, as the split's
    try:
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        if sha256 is not None and h.hexdigest() != sha256:
            raise UserError(f"{url}: sha256 mismatch: expected {sha256}, found {h.hexdigest()}; nothing was kept")
    except urllib.error.HTTPError as e:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        raise UserError(
            f"{url}: download failed ({reason}); without network, set RNNKIT_DATA to a folder laid out as NAME/FILE"
        ) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_checked(content, target: Path, split: Split, ds: Dataset) -> None:
    """Check a made split's sha256, write it beside `target`, and rename it into place."""
    found = hashlib.sha256(manifest(content) if isinstance(content, dict) else content).hexdigest()
    if found != split.sha256:
        raise UserError(
            f"{ds.name}/{split.path} made from {_describe(split.sources)}: sha256 mismatch: expected {split.sha256}, "
            f"found {found}; nothing was kept; set RNNKIT_DATA to a folder holding {ds.name}/{split.path}"
        )
    if isinstance(content, dict):
        tmp = make_temp_dir(target.parent, prefix=".make-")
        try:
            for file, data in content.items():
                (tmp / file).write_bytes(data)
            if target.is_dir():
                shutil.rmtree(target)  # a folder is replaced whole (os.replace cannot overwrite a full one)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone already when the rename happened
    else:
        fd, name = open_temp(target.parent, prefix=".make-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(name, target)
        finally:
            Path(name).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Listing


def table() -> list[dict]:
    """One row per dataset for `rnnkit datasets list`: name, task, splits, size, licence, where."""
    return [
        {
            "name": ds.name,
            "task": ds.task,
            "splits": group_splits(list(ds.splits)),
            "size": ds.size,
            "licence": ds.licence,
            "where": _where(ds),
        }
        for ds in DATASETS.values()
    ]


def _where(ds: Dataset) -> str:
    """mirror / cache / mirror+cache / not local; with the splits found when some are missing."""
    found = {name: locate(ds, split) for name, split in ds.splits.items()}
    here = {name: f for name, f in found.items() if f is not None}
    if not here:
        return "not local"
    where = "+".join(sorted({f.where for f in here.values()}, key=["mirror", "cache"].index))
    stems = dict.fromkeys(name.split(".", 1)[0] for name in here)  # multi30k's train.de, train.en: train
    return where if len(here) == len(found) else f"{where} ({', '.join(stems)})"


def group_splits(names: list[str]) -> str:
    """Split names, shortened when they share suffixes: "train, dev, test (each .de .en)"."""
    stems = list(dict.fromkeys(n.split(".", 1)[0] for n in names))
    suffixes = list(dict.fromkeys(n.split(".", 1)[1] for n in names if "." in n))
    if not suffixes or len(names) != len(stems) * len(suffixes):
        return ", ".join(names)
    return f"{', '.join(stems)} (each .{' .'.join(suffixes)})"
