"""Character ids of word forms, for character-level word features (rnnkit.nn.chars).

The character vocabulary is a `Vocab` over characters: `<pad>` 0, `<unk>` 1 (a character training
never saw), and `<sos>`, `<eos>` marking where a word begins and ends, so the first and last
characters (capitals, suffixes) are seen as such:

    "Ravi"    ->  <sos> R a v i <eos>
    <sos>     ->  <sos>              the sentence's own markers are one-character "words"
    <eos>     ->  <eos>
    padding   ->  (no characters)

A dataset is turned into characters once, when it is encoded: each distinct word form gets a row
of a table (n_forms, L) and each token the index of its row, so a batch gathers rows with NumPy
indexing and no Python work per token. Words longer than MAX_WORD_CHARS keep their first and last
MAX_WORD_CHARS // 2 characters (a URL does not widen every batch it is in; prefixes and suffixes,
the telling parts, stay).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from rnnkit.data.vocab import Vocab

MAX_WORD_CHARS = 24  # characters kept of a long word (plus the two markers)
PAD_FORM = 0  # the table row of padding positions: no characters


def fit_chars(sentences: Iterable[Sequence[str]]) -> Vocab:
    """The character vocabulary of the tokens in `sentences` (case kept)."""
    return Vocab(lowercase=False).fit(tuple(token) for sentence in sentences for token in sentence)


def _clip(word: str) -> str:
    if len(word) <= MAX_WORD_CHARS:
        return word
    half = MAX_WORD_CHARS // 2
    return word[:half] + word[-half:]


def char_table(sentences: Sequence[Sequence[str]], chars: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Every token's row in a table of character ids.

    Returns forms (N_tok,) int64, the row of each token of the wrapped sentences
    (<sos> tokens <eos>, laid end to end as in `batching.encode`), and table (n_forms, L) int64,
    the character ids of each distinct form, padded with <pad>; row 0 is padding (no characters).
    """
    sos, eos = chars.sos_id, chars.eos_id
    rows: dict[str, int] = {}
    spelled: list[list[int]] = [[], [sos], [eos]]  # padding, the sentence's <sos> and <eos>
    forms = []
    for sentence in sentences:
        forms.append(1)
        for token in sentence:
            row = rows.get(token)
            if row is None:
                row = rows[token] = len(spelled)
                spelled.append([sos, *(chars.index(c) for c in _clip(token)), eos])
            forms.append(row)
        forms.append(2)
    L = max(len(s) for s in spelled)
    table = np.full((len(spelled), L), chars.pad_id, dtype=np.int64)
    for i, s in enumerate(spelled):
        table[i, : len(s)] = s
    return np.asarray(forms, dtype=np.int64), table


def gather(table: np.ndarray, forms: np.ndarray) -> np.ndarray:
    """The character ids of the forms (B, T) -> (B, T, L'), L' the longest of these words."""
    chars = table[forms]  # (B, T, L)
    used = (chars != 0).any(axis=(0, 1))  # (L,): columns that some word reaches
    return chars[:, :, : int(used.sum())] if used.any() else chars[:, :, :1]
