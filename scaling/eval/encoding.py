"""Text to the token ids a model reads, following the convention of the model's origin.

A run trained here saw every document start with bos, so its prompts start with bos; a
model imported from HuggingFace reads what its own tokenizer makes (GPT-2's adds nothing,
BERT's adds [CLS]). The run records which in `data.bos_prefix`; the loaded tokenizer carries
it as `add_bos` (scaling/checkpoint/load.py). A sequence with no token at all (an empty
prompt without bos) starts with the prefix token instead, as lm-evaluation-harness does.
"""

from __future__ import annotations


def start_ids(tok) -> tuple[int, ...]:
    """The ids every sequence starts with: (bos,) or ()."""
    add_bos = getattr(tok, "add_bos", True)  # a duck-typed tokenizer: this package's way
    return (tok.bos_id,) if add_bos and tok.bos_id is not None else ()


def prefix_token(tok) -> int:
    """The token an otherwise empty context is made of: bos, else eos (lm-eval's
    `prefix_token_id`)."""
    return tok.bos_id if tok.bos_id is not None else tok.eos_id


def encode_prompt(tok, text: str) -> tuple[int, ...]:
    """`text` as the model reads it at the start of a sequence; never empty."""
    ids = (*start_ids(tok), *tok.encode(text))
    return ids or (prefix_token(tok),)


def encode_pair(tok, context: str, continuation: str) -> tuple[tuple, tuple]:
    """(context ids, continuation ids) exactly as lm-eval's `hf` model encodes a
    loglikelihood request for a causal model (lm_eval.api.model.LM._encode_pair): the
    context's trailing whitespace moves to the continuation, the whole string is encoded
    once and the continuation is the ids after the context's; an empty context is the
    prefix token (or the continuation's first id when it is that token)."""
    if context == "":
        cont = tuple(tok.encode(continuation))
        prefix = prefix_token(tok)
        return ((prefix,), cont) if not cont or cont[0] != prefix else (cont[:1], cont[1:])
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = (*start_ids(tok), *tok.encode(context + continuation))
    ctx = (*start_ids(tok), *tok.encode(context))
    return ctx, whole[len(ctx) :]


def parse_escapes(text: str, flag: str = "--stop") -> str:
    """Backslash escapes (`\\n`, `\\t`, `\\\\`, `\\u2028`) in a command-line string turned
    into the characters they name; other characters are kept as they are."""
    from scaling.errors import UserError

    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{flag} {text!r}: a bad backslash escape ({e.reason}); write a "
            f"backslash itself as \\\\"
        ) from None
