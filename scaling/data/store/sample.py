"""The tokenizer-training sample, drawn deterministically and in bounded memory.

Every train document is cut into chunks of a few lines (`tokenizer.sample_chunks`); each
chunk has a key, the CRC-32 of its text. The sample is the chunks of smallest key, taken in
key order while their characters add up to at most `budget`: a bottom-k sample by hash,
the same whatever order documents are read in and however the work is split (the sample of
a union is the sample of the samples of its parts, which is how a combine merges them).
Each worker keeps only its own candidates under the budget. The sample is then sorted back
into source order (unit, document, chunk) for SentencePiece.
"""

from __future__ import annotations

import heapq
import zlib

from scaling.data.sources import Unit, read_unit
from scaling.data.sources.splits import is_validation

Candidate = tuple[int, str, tuple[int, int, int]]  # (crc, text, (unit, document, chunk))


def select(candidates, budget: int) -> list[Candidate]:
    """The candidates of smallest (crc, text) whose characters add up to at most `budget`."""
    out, total = [], 0
    for cand in sorted(candidates, key=lambda c: (c[0], c[1])):
        total += len(cand[1])
        if total > budget:
            break
        out.append(cand)
    return out


def unit_candidates(indexed_unit: tuple[int, Unit], text_field: str, tfds_data_dir: str,
                    budget: int) -> list[Candidate]:
    """One unit's train-split chunks under the budget (a bounded heap while reading)."""
    from scaling.data.tokenizers import sample_chunks

    index, unit = indexed_unit
    heap: list[tuple[int, str, Candidate]] = []  # max-heap on (crc, text) by negation
    chars = 0
    for d, (key, text) in enumerate(read_unit(unit, text_field, tfds_data_dir)):
        if (unit.split or ("validation" if is_validation(key) else "train")) != "train":
            continue
        for c, chunk in enumerate(sample_chunks(text)):
            cand = (zlib.crc32(chunk.encode("utf-8")), chunk, (index, d, c))
            heapq.heappush(heap, (-cand[0], _Reversed(chunk), cand))
            chars += len(chunk)
            while chars > budget:  # the largest key cannot be taken, here or in any union
                chars -= len(heapq.heappop(heap)[2][1])
    return select([h[2] for h in heap], budget)


class _Reversed(str):
    """A string ordered backwards, so the heap's top is the largest (crc, text)."""

    def __lt__(self, other):
        return str.__gt__(self, other)


def merge(parts, budget: int) -> list[Candidate]:
    return select([c for part in parts for c in part], budget)


def in_source_order(sample: list[Candidate]) -> list[str]:
    return [text for _, text, _ in sorted(sample, key=lambda c: c[2])]
