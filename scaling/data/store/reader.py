"""Reading a token store: each split is one token stream, its shards opened on first use.

Legend: K shards, N tokens of a split, D documents, B rows, R positions a row.

Global token i of a split lies in shard k = the last with cum_tokens[k] <= i (the
manifest's counts, summed); a process memory-maps (reads whole, on object storage) only
the shards its rows touch, and `opened` records which, so nothing ever loads a split.
Documents never cross shards, so a token's document is found inside its own shard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling import storage
from scaling.data.cache import load_npy
from scaling.data.store import layout, tokenizer_ref
from scaling.errors import DataError

UNIGRAM_MAX_TOKENS = 1 << 26  # unigram entropy from at most this many validation tokens


class StoreSplit:
    """One split of a store, read as the stream of its shards in manifest order."""

    def __init__(self, store: str, manifest: dict, split: str, max_documents: int = 0):
        self.store, self.split = store, split
        shards = manifest["splits"][split]["shards"]
        self.names = [s["name"] for s in shards]
        self._counts = {"tokens": [s["tokens"] for s in shards],
                        "docs": [s["documents"] for s in shards]}
        self.cum_tokens = np.concatenate([[0], np.cumsum(self._counts["tokens"])]).astype(
            np.int64)  # [K + 1]
        self.cum_docs = np.concatenate([[0], np.cumsum(self._counts["docs"])]).astype(
            np.int64)  # [K + 1]
        self._sentences = [s.get("sentences") for s in shards]
        self._check_present()
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self.opened: set[int] = set()
        self.num_tokens = int(self.cum_tokens[-1])
        self.num_documents = int(self.cum_docs[-1])
        if max_documents and max_documents < self.num_documents:
            k = int(np.searchsorted(self.cum_docs, max_documents, side="right")) - 1
            local = max_documents - int(self.cum_docs[k])
            self.num_tokens = int(self.cum_tokens[k] + self.array(k, "docs")[local])
            self.num_documents = max_documents

    def _check_present(self) -> None:
        """Every shard's token and document files exist: one listing per directory, so a
        damaged store fails at start-up, not when a row first reaches the missing shard."""
        listed: dict[str, set[str]] = {}
        for name in self.names:
            for what in ("tokens", "docs"):
                path = layout.shard_file(self.store, name, what)
                folder, _, base = path.rpartition("/")
                if folder not in listed:
                    listed[folder] = set(storage.listdir(folder))
                if base not in listed[folder]:
                    raise DataError(f"{path}: a shard file of the store is missing; the store "
                                    f"is damaged: delete it and prepare it again")

    def array(self, k: int, what: str) -> np.ndarray:
        """File `what` of shard k, opened once (memory-mapped when local)."""
        key = (k, what)
        if key not in self._arrays:
            path = layout.shard_file(self.store, self.names[k], what)
            try:
                arr = load_npy(path)
            except FileNotFoundError:
                raise DataError(f"{path}: a shard file of the store is missing; the store is "
                                f"damaged: delete it and prepare it again") from None
            except (OSError, ValueError, EOFError) as e:
                raise DataError(f"{path}: unreadable shard ({type(e).__name__}); the store is "
                                f"damaged: delete it and prepare it again") from None
            want = {"tokens": self._counts["tokens"][k], "docs": self._counts["docs"][k]}.get(what)
            if arr.ndim != 1 or (want is not None and len(arr) != want):
                raise DataError(f"{path}: holds {arr.shape} values, the manifest says {want}; "
                                f"the store is damaged: delete it and prepare it again")
            self._arrays[key] = arr
            self.opened.add(k)
        return self._arrays[key]

    def num_rows(self, seq_len: int) -> int:
        """Rows of seq_len + 1 tokens (overlapping by one) that fit in the stream."""
        return max(0, (self.num_tokens - 1) // seq_len)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the stream, across shard boundaries."""
        if start >= stop:
            return np.zeros([0], np.int32)
        out, k = [], int(np.searchsorted(self.cum_tokens, start, side="right")) - 1
        while start < stop:
            base, end = int(self.cum_tokens[k]), int(self.cum_tokens[k + 1])
            take = min(stop, end)
            if take > start:
                out.append(np.asarray(self.array(k, "tokens")[start - base : take - base]))
            start, k = take, k + 1
        return np.concatenate(out) if len(out) != 1 else out[0]

    def locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document number, the document's first token) of each stream position in `idx`."""
        flat = np.asarray(idx, np.int64).reshape(-1)
        shard = np.searchsorted(self.cum_tokens, flat, side="right") - 1
        doc, first = np.empty_like(flat), np.empty_like(flat)
        for k in np.unique(shard):
            at = shard == k
            local = flat[at] - self.cum_tokens[k]
            starts = self.array(int(k), "docs")
            d = np.searchsorted(starts, local, side="right") - 1
            doc[at] = self.cum_docs[k] + d
            first[at] = self.cum_tokens[k] + starts[d]
        return doc.reshape(np.shape(idx)), first.reshape(np.shape(idx))

    def documents(self, tokenizer):
        """The split's documents as text again (decoded; for a trained SentencePiece or the
        byte tokenizer that is exactly the text, bos and eos dropped)."""
        for k in range(len(self.names)):
            tokens, starts = self.array(k, "tokens"), self.array(k, "docs")
            ends = np.append(starts[1:], len(tokens))
            for lo, hi in zip(starts, ends, strict=True):
                if self.cum_docs[k] + np.searchsorted(starts, lo) >= self.num_documents:
                    return
                yield tokenizer.decode(np.asarray(tokens[lo:hi]).tolist())

    def token_counts(self, vocab_size: int, limit: int = UNIGRAM_MAX_TOKENS) -> np.ndarray:
        """Occurrences of each id among the first `limit` tokens [V]."""
        counts = np.zeros(vocab_size, np.int64)
        start = 0
        while start < min(self.num_tokens, limit):
            stop = min(self.num_tokens, limit, start + (1 << 22))
            counts += np.bincount(self.read(start, stop), minlength=vocab_size)[:vocab_size]
            start = stop
        return counts

    def sentence_stream(self):
        """The split's sentences (layout "sentences") as a SentenceStream: token arrays stay
        per shard; the index arrays (one entry a sentence and a document) are joined."""
        from scaling.data.batches.sentences import SentenceStream

        if any(s is None for s in self._sentences):
            raise DataError(f"{self.store}: the store has no sentence layout, which BERT's "
                            f"next-sentence pairs need; prepare it with --set data.nsp=true")
        tokens, starts, docs = [], [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
        tok_base = sent_base = 0
        for k in range(len(self.names)):
            s, d = self.array(k, "sent_starts"), self.array(k, "sent_docs")
            tokens.append(self.array(k, "sent_tokens"))
            starts.append(np.asarray(s[1:]) + tok_base)
            docs.append(np.asarray(d[1:]) + sent_base)
            tok_base, sent_base = tok_base + int(s[-1]), sent_base + len(s) - 1
        return SentenceStream(ShardedArray(tokens), np.concatenate(starts),
                              np.concatenate(docs))


class ShardedArray:
    """Arrays back to back, sliced as one (`a[lo:hi]`) without joining them."""

    def __init__(self, parts: list[np.ndarray]):
        self.parts = parts
        self.cum = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def __getitem__(self, item: slice) -> np.ndarray:
        start, stop, _ = item.indices(len(self))
        out, k = [], int(np.searchsorted(self.cum, start, side="right")) - 1
        while start < stop and k < len(self.parts):
            take = min(stop, int(self.cum[k + 1]))
            if take > start:
                out.append(np.asarray(self.parts[k][start - self.cum[k] : take - self.cum[k]]))
            start, k = take, k + 1
        return np.concatenate(out) if out else self.parts[0][:0]


@dataclass(frozen=True)
class Store:
    """An opened store: its manifest, its tokenizer and its two splits."""

    path: str
    manifest: dict
    tokenizer: object
    train: StoreSplit
    validation: StoreSplit

    max_documents: int = 0

    @property
    def key(self) -> str:
        """Names the data in iterator states: the store's build key (and the cap)."""
        cap = f"-max{self.max_documents}" if self.max_documents else ""
        return f"store-{self.manifest['build_key'][:20]}{cap}"


def open_store(path: str, max_documents: int = 0) -> Store:
    """The complete store at `path` (local or a URI); DataError if it is not one."""
    path = storage.absolute(path)
    manifest = layout.read_manifest(path)
    if manifest is None:
        raise DataError(f"{path}: no token store there (no {layout.MANIFEST}; an unfinished "
                        f"`scaling prepare` leaves none: rerun it to complete the store)")
    tokenizer = tokenizer_ref.load(path, manifest)
    splits = {s: StoreSplit(path, manifest, s, max_documents) for s in layout.SPLITS}
    return Store(path, manifest, tokenizer, splits["train"], splits["validation"], max_documents)
