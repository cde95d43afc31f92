"""What must agree between a checkpoint and the run restoring it: the parameter tree (every
path and shape, checked before any array is read), the tokenizer (its hash), the config (its
changes named on resume), and the environment a bit-exact resume needs (library versions,
XLA flags, mesh, device and process counts: warned about, not refused).
"""

from __future__ import annotations

import os
import warnings

import jax

from scaling.errors import UserError


class ResumeWarning(UserWarning):
    """A resume whose environment differs from the save's: bit-exactness is not promised."""



def _key_name(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def path_text(path) -> str:
    """A leaf's key path as 'params/decoder/.../kernel'."""
    return "/".join(_key_name(k) for k in path)


def flat_shapes(tree) -> dict[str, tuple]:
    """{'params/decoder/.../kernel': shape} for every leaf; dict keys, attributes and indices
    all become path parts, so a saved (dict) tree and a live (dataclass) tree compare equal."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {path_text(path): tuple(getattr(v, "shape", ())) for path, v in leaves}


def mismatched_paths(saved, target) -> list[str]:
    """Human-readable differences: missing, unexpected, or differently shaped leaves."""
    a, b = flat_shapes(saved), flat_shapes(target)
    out = [f"{p}: in the checkpoint, not in the model" for p in sorted(a.keys() - b.keys())]
    out += [f"{p}: in the model, not in the checkpoint" for p in sorted(b.keys() - a.keys())]
    out += [f"{p}: checkpoint {a[p]} vs model {b[p]}"
            for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
    return out


def check_compatible(saved, target, directory: str, step: int) -> None:
    """UserError listing every mismatched path (before any array is read)."""
    bad = mismatched_paths(saved, target)
    if bad:
        raise UserError(
            f"checkpoint step {step} in {directory} does not fit this model ({len(bad)} "
            f"mismatched paths: {'; '.join(bad)}). Use the run's original model settings, "
            f"or a new --workdir (with --init_from to start from its parameters)")


# ---------------------------------------------------------------------------------------------
# Metadata: what must match for a bit-exact resume.


def run_metadata(mesh, tokenizer) -> dict:
    """Library versions, XLA flags, mesh shape and tokenizer of the running job."""
    import flax
    import optax
    import orbax.checkpoint as ocp

    return {
        "versions": {"jax": jax.__version__, "jaxlib": jax.lib.__version__,
                     "flax": flax.__version__, "optax": optax.__version__,
                     "orbax": ocp.__version__},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "mesh": {str(k): int(v) for k, v in mesh.shape.items()  # replica=1: as before it
                 if not (k == "replica" and v == 1)},
        "devices": jax.device_count(), "processes": jax.process_count(),
        "platform": jax.default_backend(),
        "tokenizer": {"hash": tokenizer.hash, "vocab_size": int(tokenizer.vocab_size)},
    }


def check_tokenizer(saved: dict, now: dict) -> None:
    """UserError if this run's tokenizer is not the one the checkpoint was trained with
    (sha256 of the model file): the same ids would mean other words, silently."""
    tok_saved, tok_now = saved.get("tokenizer", {}), now["tokenizer"]
    if tok_saved.get("hash") != tok_now["hash"]:
        raise UserError(
            f"the checkpoint was trained with another tokenizer ({tok_saved.get('vocab_size')} "
            f"tokens, hash {str(tok_saved.get('hash'))[:12]}...) than this run's "
            f"({tok_now['vocab_size']} tokens, hash {tok_now['hash'][:12]}...); token ids would "
            f"mean other words. Use the same --data and data.tokenizer settings (or the run's "
            f".model file) or start a new run directory")


def check_resume_metadata(saved: dict, now: dict) -> list[str]:
    """Warn (ResumeWarning) for each difference that breaks bit-exactness (versions, XLA
    flags, mesh, device or process count); raise via `check_tokenizer` if the tokenizer
    changed. Returns the differences found."""
    check_tokenizer(saved, now)
    diffs = [f"{key}: saved {saved.get(key)!r}, now {now[key]!r}"
             for key in ("versions", "xla_flags", "mesh", "devices", "processes", "platform")
             if saved.get(key) != now[key]]
    for d in diffs:
        warnings.warn(f"resuming with a changed {d}; the run continues but is not promised to "
                      f"be bit-identical to an uninterrupted one", ResumeWarning, stacklevel=2)
    return diffs


def config_changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """'section.key old -> new' for every value that differs between two config dicts."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a} -> {b}")
    return out


def check_resumable(saved_tree, workdir: str, step: int) -> None:
    """UserError when `step` holds parameters only (`scaling convert` saves no optimizer
    state): there is nothing to resume, only parameters to start from."""
    if "opt_state" not in dict(saved_tree):
        raise UserError(f"{workdir} holds imported parameters only (step {step}, "
                        f"written by `scaling convert`), nothing to resume; train from "
                        f"them in a new run: --workdir NEW --init_from {workdir}")
