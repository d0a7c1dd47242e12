"""Vocab: tokens to ids and back, and the one-hot vectors x_t that the seeds' U multiplies.

In the seeds each token is a one-hot vector x_t of size vocab_size, so U x_t is column x_t
of U (H, vocab_size): `U @ vocab.one_hot(i) == U[:, i]`, which is why an embedding lookup
is the same computation.

Two kinds, scikit-learn style (`__init__` stores options, `fit` learns, state ends in `_`):

    token vocabulary   specials=True    <pad>=0 <unk>=1 <sos>=2 <eos>=3, then tokens by
                                        descending count (ties: first seen), min_freq, max_size
    label vocabulary   specials=False   the labels seen, in natural order (1 2 10, or A B C);
                                        an unknown label is an error, not <unk>
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from rnnkit.errors import UserError

_INTEGER = re.compile(r"[+-]?\d+")
_OPTIONS = ("lowercase", "min_freq", "max_size", "specials")


class Vocab:
    """A token or label vocabulary. See the module docstring for the two kinds."""

    PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
    SPECIALS = (PAD, UNK, SOS, EOS)

    itos_: list[str]  # id -> token
    stoi_: dict[str, int]  # token -> id
    counts_: dict[str, int]  # normalized token -> count in the fitted data, before any cut

    def __init__(self, lowercase: bool = False, min_freq: int = 1, max_size: int | None = None, specials: bool = True):
        _check_bool("lowercase", lowercase)
        _check_bool("specials", specials)
        if not _is_int(min_freq) or min_freq < 1:
            raise UserError(f"min_freq must be a positive integer, got {min_freq!r}")
        least = len(self.SPECIALS) if specials else 1
        if max_size is not None and (not _is_int(max_size) or max_size < least):
            raise UserError(
                f"max_size must be None or an integer of at least {least} (the special symbols count), got {max_size!r}"
            )
        self.lowercase, self.min_freq, self.max_size = lowercase, min_freq, max_size
        self.specials = specials

    def __repr__(self) -> str:
        size = f", size {len(self.itos_)}" if self._fitted else ", not fitted"
        return (
            f"Vocab(lowercase={self.lowercase}, min_freq={self.min_freq}, "
            f"max_size={self.max_size}, specials={self.specials}{size})"
        )

    # -- learning ------------------------------------------------------------------------------

    def fit(self, sequences: Iterable[Sequence[str]]) -> Vocab:
        """Count the (normalized) tokens of `sequences` and assign ids; returns self."""
        counts = Counter()
        for seq in sequences:
            for token in seq:
                if not isinstance(token, str):
                    shown = repr(token) if len(repr(token)) <= 40 else repr(token)[:37] + "..."
                    raise UserError(
                        f"expected each sequence to hold tokens as strings, found {shown} ({type(token).__name__})"
                    )
                counts[self.normalize(token)] += 1
        self.counts_ = dict(counts)
        self.itos_ = self._token_order(counts) if self.specials else _natural_order(counts)
        self.stoi_ = {token: i for i, token in enumerate(self.itos_)}
        return self

    def _token_order(self, counts: Counter) -> list[str]:
        """Specials, then tokens by descending count; ties keep first appearance (stable)."""
        kept = [t for t, n in counts.items() if n >= self.min_freq and t not in self.SPECIALS]
        kept.sort(key=lambda t: -counts[t])
        room = None if self.max_size is None else self.max_size - len(self.SPECIALS)
        return list(self.SPECIALS) + kept[:room]

    @property
    def _fitted(self) -> bool:
        return hasattr(self, "itos_")

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise UserError("this Vocab is not fitted yet; call fit(sequences) first or load one with Vocab.from_dict")

    # -- special ids -----------------------------------------------------------------------------

    def _special_id(self, symbol: str) -> int:
        if not self.specials:
            raise UserError(f"this vocabulary has no special symbols (specials=False), so no id for {symbol}")
        return self.SPECIALS.index(symbol)

    @property
    def pad_id(self) -> int:
        return self._special_id(self.PAD)

    @property
    def unk_id(self) -> int:
        return self._special_id(self.UNK)

    @property
    def sos_id(self) -> int:
        return self._special_id(self.SOS)

    @property
    def eos_id(self) -> int:
        return self._special_id(self.EOS)

    # -- lookups ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.itos_)

    def __contains__(self, token) -> bool:
        self._check_fitted()
        return isinstance(token, str) and self.normalize(token) in self.stoi_

    def normalize(self, token: str) -> str:
        """The form in which `token` is counted and looked up: lowercased when lowercase=True."""
        return token.lower() if self.lowercase else token

    def index(self, token: str) -> int:
        """The id of `token`: unk_id when unknown (specials=True), else a UserError."""
        self._check_fitted()
        i = self.stoi_.get(self.normalize(token))
        if i is not None:
            return i
        if self.specials:
            return self.unk_id
        shown = ", ".join(map(repr, self.itos_[:20])) + (", ..." if len(self.itos_) > 20 else "")
        raise UserError(
            f"unknown label {token!r}; expected one of the {len(self.itos_)} labels seen in training: {shown}"
        )

    def encode(self, tokens: Sequence[str], wrap: bool = False) -> list[int]:
        """Token ids (T,) of `tokens`; wrap=True gives <sos> ids <eos>, (T + 2,)."""
        ids = [self.index(t) for t in tokens]
        return [self.sos_id, *ids, self.eos_id] if wrap else ids

    def decode(self, ids: Iterable[int], strip: bool = True) -> list[str]:
        """The tokens of `ids` (any iterable of ints: list, NumPy array, 1-D tensor).

        strip=True drops <pad>, <sos> and <eos> (keeping <unk>).
        """
        self._check_fitted()
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos_):
                raise UserError(f"expected ids in 0..{len(self.itos_) - 1}, found {i}")
            tokens.append(self.itos_[i])
        if strip and self.specials:
            dropped = {self.PAD, self.SOS, self.EOS}
            tokens = [t for t in tokens if t not in dropped]
        return tokens

    def one_hot(self, ids) -> np.ndarray:
        """One-hot vectors x_t of int ids: shape (...) -> (..., vocab_size) float32.

        U @ one_hot(i) == U[:, i] for U (H, vocab_size); for ids (B, T), one_hot(ids) @ U.T
        is (B, T, H), the U x_t of every step.
        """
        self._check_fitted()
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise UserError(f"expected integer ids, found an array of dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.itos_)):
            bad = ids.min() if ids.min() < 0 else ids.max()
            raise UserError(f"expected ids in 0..{len(self.itos_) - 1}, found {bad}")
        return np.eye(len(self.itos_), dtype=np.float32)[ids]  # (..., vocab_size)

    # -- saving --------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Options and learned state as a JSON-serialisable dict; from_dict rebuilds it exactly."""
        self._check_fitted()
        return {**{k: getattr(self, k) for k in _OPTIONS}, "itos": list(self.itos_), "counts": dict(self.counts_)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        """The Vocab that `to_dict` described."""
        expected = {*_OPTIONS, "itos", "counts"}
        if not isinstance(d, dict) or set(d) != expected:
            found = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise UserError(f"expected a vocabulary dict with keys {sorted(expected)}, found {found}")
        if not isinstance(d["itos"], list) or not all(isinstance(t, str) for t in d["itos"]):
            raise UserError("expected the vocabulary's itos to be a list of strings")
        if not isinstance(d["counts"], dict):
            raise UserError("expected the vocabulary's counts to be an object")
        twice = next((t for t, n in Counter(d["itos"]).items() if n > 1), None)
        if twice is not None:  # stoi would keep one of its ids: encoding and decoding would disagree
            raise UserError(f"expected the vocabulary's itos to hold each token once, found {twice!r} twice or more")
        vocab = cls(**{k: d[k] for k in _OPTIONS})
        vocab.itos_ = list(d["itos"])
        vocab.stoi_ = {token: i for i, token in enumerate(vocab.itos_)}
        vocab.counts_ = dict(d["counts"])
        if vocab.specials and tuple(vocab.itos_[: len(cls.SPECIALS)]) != cls.SPECIALS:
            raise UserError(
                f"expected the vocabulary to start with {list(cls.SPECIALS)}, found {vocab.itos_[: len(cls.SPECIALS)]}"
            )
        return vocab


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be True or False, got {value!r}")


def _natural_order(counts: Counter) -> list[str]:
    """Labels sorted as numbers when all are integers (1 2 10), else alphabetically."""
    labels = list(counts)
    if labels and all(_INTEGER.fullmatch(t) for t in labels):
        return sorted(labels, key=lambda t: (int(t), t))
    return sorted(labels)
