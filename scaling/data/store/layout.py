"""The token store on disk: file names, the manifest, and checks a reader makes on both.

    STORE/manifest.json      written last: its presence means the store is complete
    STORE/build.json         timings and worker counts (not part of the store's identity)
    STORE/tokenizer/         the tokenizer: spm.model, HuggingFace files, or byte.json
    STORE/SPLIT/GGGGG-PP.tokens.npy      documents back to back, each `[bos] ids eos` [N]
    STORE/SPLIT/GGGGG-PP.docs.npy        each document's first token in the shard [D] int64
    STORE/SPLIT/GGGGG-PP.sent_tokens.npy (layout "sentences", for NSP) sentences back to
    STORE/SPLIT/GGGGG-PP.sent_starts.npy   back [M], sentence starts [S + 1], each
    STORE/SPLIT/GGGGG-PP.sent_docs.npy     document's first sentence [D + 1]
    STORE/.parts/            while building: plan.json, one GGGGG.json a finished group,
                             progress/ (removed when the manifest is written)

G is the shard group (consecutive source units, planned from the listing alone), P a part of
it (a new part starts when a group's split passes `MAX_PART_TOKENS`). A split is logically one
token stream: its shards in manifest order.
"""

from __future__ import annotations

import json

from scaling import storage
from scaling.errors import DataError

FORMAT = "scaling-token-store-v1"
MANIFEST, BUILD, TOKENIZER, PARTS = "manifest.json", "build.json", "tokenizer", ".parts"
SPLITS = ("train", "validation")
DOC_FILES = ("tokens", "docs")
SENTENCE_FILES = ("sent_tokens", "sent_starts", "sent_docs")


def shard_name(split: str, group: int, part: int) -> str:
    return f"{split}/{group:05d}-{part:02d}"


def shard_file(store: str, shard: str, what: str) -> str:
    return storage.join(store, f"{shard}.{what}.npy")


def read_manifest(store: str) -> dict | None:
    """The store's manifest, checked; None when the store is not (yet) complete."""
    path = storage.join(store, MANIFEST)
    try:
        text = storage.path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({storage.error_text(e)})") from None
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e.msg}); the store is damaged: delete it "
                        f"and prepare it again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        seen = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise DataError(f"{path}: a store of format {seen!r}, this code reads {FORMAT!r}; "
                        f"prepare it again with this version (scaling prepare)")
    for split in SPLITS:
        shards = manifest.get("splits", {}).get(split, {}).get("shards")
        if not isinstance(shards, list):
            raise DataError(f"{path}: no shard list for split {split!r}; the store is damaged: "
                            f"delete it and prepare it again")
    return manifest


def write_json(path: str, value: dict) -> None:
    storage.write_atomic(path, json.dumps(value, indent=1, sort_keys=True) + "\n")
