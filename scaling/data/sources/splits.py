"""Which split a document of a local source belongs to: decided by its key alone.

A document goes to validation when sha256 of its key (relative path, `path#part`,
`path:line`, `path:row`) falls in the first `VALIDATION_PER_MILLE`/1000 of the hash range.
A corpus whose split comes out empty moves one document across (the smallest hash into an
empty validation split, the largest into an empty train split), so each split has one.
"""

from __future__ import annotations

import hashlib

VALIDATION_PER_MILLE = 30  # ~3% of documents


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def is_validation(key: str) -> bool:
    """Whether the document called `key` belongs to the validation split (hash of the key)."""
    return int.from_bytes(key_digest(key)[:8], "big") % 1000 < VALIDATION_PER_MILLE
