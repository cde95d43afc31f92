"""`scaling translate`: one source a line in, one translation a line out, in order, with a
trained encoder-decoder run (decoding itself: scaling/translator.py)."""

from __future__ import annotations

import sys

from scaling.errors import UserError
from scaling.families import family_of
from scaling.translator import Translator


def load_translator(workdir: str):
    """(Translator, params, config, corpus, metadata) for a run directory."""
    from scaling.checkpoint.load import load_run, run_corpus
    from scaling.data.api import seq2seq_fields_of

    run = load_run(workdir, check=_can_translate)
    corpus, tokenizer = run_corpus(run, seq2seq_fields_of(run.config))
    translator = Translator(run.config, run.mesh, tokenizer, run.shardings)
    return translator, run.params, run.config, corpus, run.meta


def _can_translate(config, workdir: str) -> None:
    """What translation refuses (load_run's `check`): a family that does not translate."""
    if family_of(config.model).translator is None:
        raise UserError(f"{workdir} is a {config.model.family}-family run, which does not "
                        f"translate; translation needs an encoder-decoder (encdec) run")


def read_lines(path: str) -> list[str]:
    """The lines of `path` ('-' = stdin), strict UTF-8; one clear error otherwise."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"--input {path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"--input {path}: is a directory, not a file of sentences") from None
    except OSError as e:
        raise UserError(f"--input {path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"--input {path}: not UTF-8 text ({e.reason} at byte {e.start})") \
            from None
    return text.splitlines()


def translate_command(workdir: str, path: str, beam: int, alpha: float, max_extra: int,
                      batch: int) -> int:
    """`scaling translate`: one translation a line on stdout, in input order; an empty line
    translates to an empty line."""
    if beam < 1 or batch < 1 or max_extra < 0 or not alpha >= 0:
        raise UserError("--beam and --batch must be >= 1, --max-extra-len and --alpha >= 0")
    lines = read_lines(path)
    translator, params, config, _, _ = load_translator(workdir)
    todo = [i for i, line in enumerate(lines) if line.strip()]

    def warn(j, n):
        print(f"scaling: warning: line {todo[j] + 1}: {n} source tokens cut to "
              f"model.max_len={config.model.max_len}", file=sys.stderr)

    sources = translator.encode([lines[i] for i in todo], warn)
    done = dict(zip(todo, translator.translate(params, sources, beam=beam, alpha=alpha,
                                               max_extra=max_extra, batch=batch), strict=True))
    for i in range(len(lines)):
        print(done.get(i, ""))
    return 0
