"""Datasets by name: NAME:SPLIT resolves to the mirror (RNNKIT_DATA) first, then the cache
(RNNKIT_HOME); `download` fetches over HTTP with sha256 checks. Downloads go to a server on
127.0.0.1 serving a temp folder; nothing here reaches the internet."""

import functools
import gzip
import hashlib
import http.server
import json
import re
import socket
import threading
from pathlib import Path

import pytest

from conftest import CLASSIFY, FAST, TAGGED, write_conllu
from rnnkit.cli import main
from rnnkit.data import catalog, registry
from rnnkit.data.catalog import Dataset, Source, Split
from rnnkit.errors import UserError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (the real datasets) is absent")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def conllu_bytes(tmp_path, sentences) -> bytes:
    return write_conllu(tmp_path / "scratch.conllu", sentences).read_bytes()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def places(tmp_path, monkeypatch):
    """An empty mirror and cache in tmp_path, and no proxy between urllib and 127.0.0.1."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "mirror"))
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "mirror", tmp_path / "home" / "datasets"


@pytest.fixture
def tiny(tmp_path, server, monkeypatch):
    """A registry of small datasets whose sources the local server holds:
    tiny-pos (CoNLL-U, as is), tiny-sst (Kim's `LABEL SENTENCE` lines made into TSV),
    tiny-gz (gunzipped) and tiny-names (a folder split made by the names recipe)."""
    root, base = server
    files = {
        "train.conllu": conllu_bytes(tmp_path, TAGGED),
        "dev.conllu": conllu_bytes(tmp_path, TAGGED[:2]),
        "stsa.train": "".join(f"{'1' if y == 'pos' else '0'} {t}\n" for t, y in CLASSIFY).encode(),
        "dev.de.gz": gzip.compress(b"ein Hund .\nzwei Katzen .\n"),
        "Dutch.txt": "".join(f"Name{i}\n" for i in range(12)).encode(),
        "Greek.txt": b"Alexis\nNikos\nAlexis\nEleni \n",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    url = f"{base}/{{}}".format
    tsv = "sentence\tlabel\n" + "".join(f"{t}\t{'1' if y == 'pos' else '0'}\n" for t, y in CLASSIFY)
    names_sources = (
        Source(url("Dutch.txt"), sha(files["Dutch.txt"])),
        Source(url("Greek.txt"), sha(files["Greek.txt"])),
    )
    names_train = catalog.names_split("train")({s.name: files[s.name] for s in names_sources})
    datasets = {
        "tiny-pos": Dataset(
            "tiny-pos", "tag", "four tagged sentences", "CC0", "here", 1,
            {
                "train": catalog.as_is("train.conllu", sha(files["train.conllu"]), url("train.conllu")),
                "dev": catalog.as_is("dev.conllu", sha(files["dev.conllu"]), url("dev.conllu")),
            },
        ),
        "tiny-sst": Dataset(
            "tiny-sst", "classify", "four reviews", "CC0", "here", 1,
            {"train": Split("train.tsv", sha(tsv.encode()), (Source(url("stsa.train"), sha(files["stsa.train"])),),
                            catalog.stsa_to_tsv, "rewritten")},
        ),
        "tiny-gz": Dataset(
            "tiny-gz", "seq2seq", "two captions", "CC0", "here", 1,
            {"dev.de": Split("dev.de", sha(b"ein Hund .\nzwei Katzen .\n"), (Source(url("dev.de.gz")),),
                             catalog.gunzip, "gunzipped")},
        ),
        "tiny-names": Dataset(
            "tiny-names", "classify", "two languages", "MIT", "here", 1,
            {"train": Split("train", sha(catalog.manifest(names_train)), names_sources, catalog.names_split("train"),
                            "split")},
        ),
    }  # fmt: skip
    monkeypatch.setattr(registry, "DATASETS", datasets)
    return root, files


def mirror_tiny_pos(mirror: Path, files: dict) -> None:
    (mirror / "tiny-pos").mkdir(parents=True)
    for name in ("train.conllu", "dev.conllu"):
        (mirror / "tiny-pos" / name).write_bytes(files[name])


# ---------------------------------------------------------------------------------------------
# Resolving names


def test_a_name_resolves_to_the_mirror_first_and_then_to_the_cache(tiny, places):
    _, files = tiny
    mirror, cache = places
    (cache / "tiny-pos").mkdir(parents=True)
    (cache / "tiny-pos" / "train.conllu").write_bytes(files["train.conllu"])
    assert registry.resolve("tiny-pos:train") == cache / "tiny-pos" / "train.conllu"
    mirror_tiny_pos(mirror, files)
    assert registry.resolve("tiny-pos:train") == mirror / "tiny-pos" / "train.conllu"


def test_paths_pass_through_and_an_existing_file_wins_over_a_name(tiny, places, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("tiny-pos:train").write_text("a file that happens to look like a name")
    assert registry.resolve("tiny-pos:train") == "tiny-pos:train"
    for source in ("-", "data/train.tsv", "/abs/path:with:colons.tsv", "C:\\data\\train.tsv", "c:train.tsv"):
        assert registry.resolve(source) == source
    assert registry.resolve(Path("tiny-pos:dev")) == Path("tiny-pos:dev")  # a Path is always a path


def test_an_unknown_name_or_split_is_a_clear_error_listing_what_there_is(tiny):
    with pytest.raises(UserError, match=r"nope:train: no such file, and 'nope' is not a known dataset; known datasets: "
                       r"tiny-pos, tiny-sst, tiny-gz, tiny-names"):  # fmt: skip
        registry.resolve("nope:train")
    with pytest.raises(UserError, match=r"dataset 'tiny-pos' has no split 'trian'; its splits: train, dev"):
        registry.resolve("tiny-pos:trian")


def test_a_split_on_neither_mirror_nor_cache_says_how_to_get_it(tiny, places):
    with pytest.raises(UserError, match=r"tiny-pos:dev is not on this machine; run 'rnnkit datasets download tiny-pos'"
                       r".*RNNKIT_DATA.*tiny-pos/dev.conllu"):  # fmt: skip
        registry.resolve("tiny-pos:dev")


def test_a_local_copy_with_other_bytes_is_refused_with_both_hashes(tiny, places):
    _, files = tiny
    mirror, _ = places
    mirror_tiny_pos(mirror, files)
    (mirror / "tiny-pos" / "dev.conllu").write_bytes(b"edited\n")
    expected = registry.DATASETS["tiny-pos"].splits["dev"].sha256
    with pytest.raises(
        UserError, match=rf"sha256 mismatch .*expected {expected}, found {sha(b'edited' + bytes([10]))}"
    ):
        registry.resolve("tiny-pos:dev")


def test_the_cache_defaults_to_the_users_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNKIT_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert registry.cache_dir() == tmp_path / "xdg" / "rnnkit" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert registry.cache_dir() == tmp_path / "me" / ".cache" / "rnnkit" / "datasets"


# ---------------------------------------------------------------------------------------------
# Downloading


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


def test_download_fetches_over_http_checks_and_installs_into_the_cache(tiny, places, capsys):
    _, files = tiny
    _, cache = places
    assert main(["datasets", "download", "tiny-pos"]) == 0
    assert (cache / "tiny-pos" / "train.conllu").read_bytes() == files["train.conllu"]
    assert registry.resolve("tiny-pos:dev") == cache / "tiny-pos" / "dev.conllu"
    assert leftovers(cache) == []
    capsys.readouterr()
    assert main(["datasets", "download", "tiny-pos:dev"]) == 0
    assert "already in the cache" in capsys.readouterr().err


def test_a_checksum_mismatch_keeps_nothing_and_exits_2_with_both_hashes(tiny, places, capsys):
    root, files = tiny
    _, cache = places
    (root / "train.conllu").write_bytes(b"tampered\n")
    assert main(["datasets", "download", "tiny-pos:train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    expected = sha(files["train.conllu"])
    assert re.fullmatch(rf"rnnkit: error: \S+/train.conllu: sha256 mismatch: expected {expected}, found "
                        rf"{sha(b'tampered' + bytes([10]))}; nothing was kept", err)  # fmt: skip
    assert not (cache / "tiny-pos" / "train.conllu").exists() and leftovers(cache) == []


def test_download_makes_converted_gunzipped_and_folder_splits_and_checks_them(tiny, places):
    _, files = tiny
    _, cache = places
    for name in ("tiny-sst", "tiny-gz", "tiny-names"):
        registry.download(name, log=lambda _: None)
    assert (cache / "tiny-sst" / "train.tsv").read_text().splitlines()[:2] == [
        "sentence\tlabel",
        "the movie was great .\t1",
    ]
    assert (cache / "tiny-gz" / "dev.de").read_bytes() == gzip.decompress(files["dev.de.gz"])
    assert sorted(p.name for p in (cache / "tiny-names" / "train").iterdir()) == ["Dutch.txt", "Greek.txt"]
    assert registry.resolve("tiny-names:train") == cache / "tiny-names" / "train"
    assert leftovers(cache) == []


def test_a_made_split_that_does_not_match_its_checksum_is_not_kept(tiny, places, monkeypatch):
    _, cache = places
    split = registry.DATASETS["tiny-gz"].splits["dev.de"]
    bad = Split(split.path, "0" * 64, split.sources, split.make, split.note)
    monkeypatch.setitem(registry.DATASETS["tiny-gz"].splits, "dev.de", bad)
    with pytest.raises(
        UserError, match=r"tiny-gz/dev.de made from .*: sha256 mismatch: expected 0{64}, found .*RNNKIT_DATA"
    ):
        registry.download("tiny-gz", log=lambda _: None)
    assert not (cache / "tiny-gz" / "dev.de").exists() and leftovers(cache) == []


def test_a_missing_file_or_an_unreachable_server_is_a_user_error(tiny, places, monkeypatch, capsys):
    root, _ = tiny
    (root / "dev.conllu").unlink()
    assert main(["datasets", "download", "tiny-pos:dev"]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    split = catalog.as_is("train.conllu", "0" * 64, f"http://127.0.0.1:{port}/train.conllu")
    monkeypatch.setitem(registry.DATASETS["tiny-pos"].splits, "train", split)
    assert main(["datasets", "download", "tiny-pos:train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"rnnkit: error: http://127.0.0.1:{port}/train.conllu: download failed (")
    assert err.endswith("set RNNKIT_DATA to a folder laid out as NAME/FILE")


# ---------------------------------------------------------------------------------------------
# Names wherever a data file is taken


def test_train_evaluate_and_predict_take_dataset_names(tiny, places, tmp_path, capsys, device):
    _, files = tiny
    mirror_tiny_pos(places[0], files)
    out = tmp_path / "run"
    args = ["train", "tag", "--train", "tiny-pos:train", "--dev", "tiny-pos:dev", "--out", str(out)]
    assert main(args + ["--hidden", "16", "--batch-size", "2", "--epochs", "3", "--device", device]) == 0
    assert json.loads((out / "config.json").read_text())["files"] == {"train": "tiny-pos:train", "dev": "tiny-pos:dev"}
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", "tiny-pos:dev", "--json", "--device", device]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 2
    assert main(["predict", str(out), "tiny-pos:dev", "--device", device]) == 0
    assert capsys.readouterr().out.count("# text = ") == 2  # CoNLL-U back, from the .conllu the name stands for
    assert main(["evaluate", str(out), "--data", "nope:dev"]) == 2
    assert "not a known dataset" in capsys.readouterr().err


def test_the_api_takes_dataset_names(tiny, places, tmp_path, device):
    import rnnkit

    _, files = tiny
    mirror_tiny_pos(places[0], files)
    model = rnnkit.train("tag", train="tiny-pos:train", out=tmp_path / "run", **{**FAST, "epochs": 2}, device=device)
    assert model.evaluate("tiny-pos:dev")["examples"] == 2


def test_datasets_list_and_path_on_the_command_line(tiny, places, capsys):
    _, files = tiny
    mirror, _ = places
    mirror_tiny_pos(mirror, files)
    assert main(["datasets", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert rows["tiny-pos"].endswith("mirror") and rows["tiny-sst"].endswith("not local")
    assert main(["datasets", "path", "tiny-pos:dev"]) == 0
    assert capsys.readouterr().out.strip() == str(mirror / "tiny-pos" / "dev.conllu")
    assert main(["datasets", "path", "tiny-pos"]) == 0
    assert capsys.readouterr().out.strip() == str(mirror / "tiny-pos")
    assert main(["datasets", "path", "tiny-sst"]) == 2
    assert main(["datasets", "path", "nope"]) == 2


# ---------------------------------------------------------------------------------------------
# The real catalogue, against ../shared/data


@needs_shared
def test_every_registered_train_and_dev_split_matches_the_shared_data(monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(SHARED))
    for name, ds in catalog.DATASETS.items():
        assert (SHARED / name / "SOURCE.md").exists()
        for split in ds.splits:
            if not split.startswith("test"):  # the test splits are held back from this folder
                assert registry.resolve(f"{name}:{split}").exists()


@needs_shared
def test_every_registered_checksum_is_one_its_source_md_gives():
    for name, ds in catalog.DATASETS.items():
        text = (SHARED / name / "SOURCE.md").read_text()
        shas = [s.sha256 for s in ds.splits.values()] + [src.sha256 for s in ds.splits.values() for src in s.sources]
        assert all(h in text for h in shas if h is not None), name
        commit = ds.origin.split("@")[1]
        assert all(commit in src.url for s in ds.splits.values() for src in s.sources)
        assert commit in text


@needs_shared
def test_the_recipes_rebuild_the_shared_files_from_their_sources():
    # SST: the shared TSV turned back into Kim's lines has the source's sha256, and the recipe rebuilds the TSV
    for ds in ("sst2", "sst5"):
        split = catalog.DATASETS[ds].splits["dev"]
        rows = (SHARED / ds / "dev.tsv").read_text().split("\n")[1:-1]
        source = "".join(f"{r.rsplit(chr(9), 1)[1]} {r.rsplit(chr(9), 1)[0]}\n" for r in rows).encode()
        assert sha(source) == split.sources[0].sha256
        assert sha(split.make({split.sources[0].name: source})) == split.sha256
    # Tiny Shakespeare: train + dev is input.txt, and the cut gives both back
    ts = catalog.DATASETS["tinyshakespeare"].splits
    text = b"".join((SHARED / "tinyshakespeare" / f).read_bytes() for f in ("train.txt", "dev.txt"))
    assert sha(text) == ts["train"].sources[0].sha256
    assert [sha(ts[s].make({"input.txt": text})) for s in ("train", "dev")] == [ts["train"].sha256, ts["dev"].sha256]
    # Multi30k raw: gunzip gives the file back
    split = catalog.DATASETS["multi30k"].splits["dev.en"]
    assert sha(split.make({"val.en.gz": gzip.compress((SHARED / "multi30k" / "dev.en").read_bytes())})) == split.sha256


@needs_shared
def test_the_names_recipe_orders_and_counts_as_the_shared_split_does():
    """Without the held-back test names the sources cannot be rebuilt; what can be checked: in
    every language the dev names come before the train names in the recipe's order, and dev
    holds names_held(train + 2 x dev) distinct names (test holds as many)."""
    for file in sorted((SHARED / "names" / "train").glob("*.txt")):
        language = file.stem
        train = set(file.read_bytes().split(b"\n")[:-1])
        dev = set((SHARED / "names" / "dev" / file.name).read_bytes().split(b"\n")[:-1])
        assert max(catalog.name_rank(language, n) for n in dev) < min(catalog.name_rank(language, n) for n in train)
        assert catalog.names_held(len(train) + 2 * len(dev)) == len(dev), language


def test_the_names_recipe_puts_every_line_of_a_name_in_one_split_in_order():
    names = [f"N{i}".encode() for i in range(23)]
    source = b"".join(n + b"\n" for n in names + names[:5])  # duplicates follow their first lines
    parts = {
        p: catalog.names_split(p)({"Xx.txt": source})["Xx.txt"].split(b"\n")[:-1] for p in ("train", "dev", "test")
    }
    ranked = sorted(names, key=lambda n: hashlib.sha1(b"Xx\t" + n).hexdigest())
    assert set(parts["test"]) == set(ranked[:2]) and set(parts["dev"]) == set(ranked[2:4])  # round(2.3) = 2
    for lines in parts.values():
        assert lines == [n for n in (names + names[:5]) if n in set(lines)]
    assert sorted(sum(parts.values(), [])) == sorted(names + names[:5])
