"""Word-level instruction vocabulary: text -> fixed-length token ids, without torch.

Why: the default language encoder is trained on the project's own instructions (nothing may be
downloaded), and the robot must turn an instruction into the same ids as training did, on the
inference path where torch is absent. Index 0 pads, index 1 is an unknown word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

PAD, UNKNOWN = 0, 1
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words of ``text`` ("Pick up the RED cube!" -> 4 words)."""
    return _WORD.findall(text.lower())


def build_vocabulary(texts: Iterable[str]) -> tuple[str, ...]:
    """Sorted distinct words of ``texts`` (ids are 2 + position)."""
    return tuple(sorted({w for text in texts for w in words(text)}))


def tokenize(texts: Iterable[str], vocabulary: tuple[str, ...], max_words: int) -> np.ndarray:
    """(N, max_words) int64 ids; words beyond ``max_words`` are cut, unknown words map to 1."""
    index = {w: i + 2 for i, w in enumerate(vocabulary)}
    texts = list(texts)
    out = np.full((len(texts), max_words), PAD, dtype=np.int64)
    for row, text in enumerate(texts):
        ids = [index.get(w, UNKNOWN) for w in words(text)][:max_words]
        out[row, : len(ids)] = ids
    return out
