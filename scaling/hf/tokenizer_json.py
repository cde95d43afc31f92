"""A run's tokenizer in the form `transformers.AutoTokenizer` loads: `tokenizer.json` (built
with the `tokenizers` library), `tokenizer_config.json` and `special_tokens_map.json`.

- A HuggingFace tokenizer is copied byte for byte (it is one already).
- The byte tokenizer (id = byte + 7) becomes a byte-level BPE without merges: each byte is
  one token, spelled with GPT-2's printable stand-in characters (Radford et al. 2019, §2.2),
  so encode and decode are exact.
- A SentencePiece BPE model (ours: identity normalization, no dummy prefix, byte fallback,
  digits split, "\\n" a piece of its own) becomes a BPE whose merges are the model's pieces
  ranked by score (each piece made of two pieces of the vocabulary, the rank of the piece it
  makes), with spaces spelled "▁", byte fallback, and "\\n" an added token.

The tokenizer puts the run's bos first when the run's sequences start with it
(`data.bos_prefix`), so `transformers` pipelines feed the model what it was trained on.
"""

from __future__ import annotations

import json
import os

from scaling.errors import UserError

# the user-defined pieces our SentencePiece training adds (sentencepiece.py); the library's
# Python API cannot tell user-defined pieces apart, so a foreign model's others are not known
USER_DEFINED = ("\n",)


def _byte_chars() -> list[str]:
    """Byte b -> a printable character: printable Latin-1 bytes stand for themselves, the
    others are moved past 255 in order (the byte-level BPE alphabet of GPT-2)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def _specials(tok) -> dict[int, str]:
    """id -> text of the tokenizer's special tokens."""
    from scaling.data.tokenizers.base import SPECIAL_PIECES

    if tok.kind == "byte":
        return dict(enumerate(SPECIAL_PIECES))
    sp = tok._sp
    return {
        i: sp.id_to_piece(i) for i in range(tok.vocab_size) if sp.is_control(i) or sp.is_unknown(i)
    }


def _byte_backend(tok):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {text: i for i, text in _specials(tok).items()}
    offset = len(vocab)
    vocab.update({c: offset + b for b, c in enumerate(_byte_chars())})
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return backend


def _sentencepiece_backend(tok):
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    sp = tok._sp
    n = tok.vocab_size
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    user = [p for p in USER_DEFINED if sp.piece_to_id(p) != sp.unk_id()]
    normal = {
        sp.id_to_piece(i): i
        for i in range(n)
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))
        and sp.id_to_piece(i) not in user
    }
    merges = []
    for piece, i in normal.items():
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            if left in normal and right in normal:
                merges.append((i, normal[left], normal[right], left, right))
    merges.sort()
    unk = sp.id_to_piece(sp.unk_id())
    backend = Tokenizer(
        models.BPE(
            vocab=vocab,
            merges=[(a, b) for *_, a, b in merges],
            unk_token=unk,
            byte_fallback=True,
            fuse_unk=True,
        )
    )
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    backend.add_tokens([AddedToken(p, normalized=False, special=False) for p in user])
    return backend


def hf_backend(tok, bos_prefix: bool):
    """A `tokenizers.Tokenizer` that encodes and decodes as `tok` does, with `tok`'s
    special tokens (and bos first when `bos_prefix`)."""
    from tokenizers import AddedToken, processors

    if tok.kind == "byte":
        backend = _byte_backend(tok)
    elif tok.kind == "sentencepiece":
        backend = _sentencepiece_backend(tok)
    else:
        raise UserError(f"a {tok.kind} tokenizer has no HuggingFace form here")
    backend.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in _specials(tok).values()]
    )
    if bos_prefix and tok.bos_id is not None:
        bos = backend.id_to_token(tok.bos_id)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.bos_id)]
        )
    return backend


def _role_texts(tok, backend) -> dict[str, str]:
    roles = {
        "bos": tok.bos_id,
        "eos": tok.eos_id,
        "unk": tok.unk_id,
        "pad": tok.pad_id,
        "mask": tok.mask_id,
        "cls": tok.cls_id,
        "sep": tok.sep_id,
    }
    return {f"{r}_token": backend.id_to_token(i) for r, i in roles.items() if i is not None}


def write_hf_tokenizer(tok, directory: str, bos_prefix: bool) -> None:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json of `tok` (a byte or
    SentencePiece tokenizer; an HF one is copied as it is) into `directory`."""
    if tok.kind == "hf":
        tok.save_copy(directory)
        return
    backend = hf_backend(tok, bos_prefix)
    path = os.path.join(directory, "tokenizer.json")
    try:
        backend.save(path)
    except Exception as e:  # noqa: BLE001 - the library raises plain Exceptions for OS errors
        raise UserError(f"cannot write {path}: {str(e).splitlines()[0]}") from None
    roles = _role_texts(tok, backend)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **roles,
        "add_bos_token": bool(bos_prefix and tok.bos_id is not None),
        "clean_up_tokenization_spaces": False,
        "model_max_length": 10**30,
    }
    for name, table in (("tokenizer_config.json", config), ("special_tokens_map.json", roles)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            json.dump(table, f, indent=2, ensure_ascii=False)
