"""Checkpoints: an orbax CheckpointManager under `<workdir>/checkpoints` (docs/reliability.md).

One step directory holds four items:
  state   the TrainState arrays (step, params, opt_state, skipped), each process its shards
  data    the data iterator's position (JSON; batch s is a pure function of (seed, s))
  config  the run's Config (JSON)
  meta    library versions, XLA flags, mesh, tokenizer hash (JSON; compat.py `run_metadata`)

orbax writes a step into `<step>.orbax-checkpoint-tmp-*` and renames it when complete (on
object storage, which cannot rename: into `<step>/` with a `commit_success.txt` marker
written last), so `latest_step()` only sees committed steps, and deletes old steps only after
the new one has committed. What this wrapper adds: leftover temporary directories are removed
at start, the retention policy (keep_last + keep_period), save errors turned into one-line
UserErrors, a refusal to save non-finite values, and a refusal to restore into a different
model (the mismatched parameter paths are listed, scaling/checkpoint/compat.py; nothing is
partially restored).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from scaling import storage
from scaling.checkpoint import noise
from scaling.checkpoint.compat import check_compatible, flat_shapes, path_text
from scaling.config import TrainConfig
from scaling.errors import UserError

ITEMS = ("state", "data", "config", "meta")


TMP_MARKER = ".orbax-checkpoint-tmp"  # orbax's suffix for a step that has not committed
COMMIT_FILE = "commit_success.txt"  # written last into a step on object storage (orbax)


class DamagedCheckpointError(Exception):
    """A committed step that cannot be read back: a missing or damaged item, an empty
    directory, unreadable metadata. Resume moves it aside and tries the previous step."""


def checkpoint_dir(workdir: str) -> str:
    """Where a run directory (a local path or a URI) keeps its checkpoints."""
    return storage.join(storage.absolute(workdir), "checkpoints")


def retention(train: TrainConfig) -> policies.PreservationPolicy:
    """Keep the newest `keep_last` steps, plus every step divisible by `keep_period`."""
    keep = [policies.LatestN(n=train.keep_last)]
    if train.keep_period > 0:
        keep.append(policies.EveryNSteps(interval_steps=train.keep_period))
    return policies.AnyPreservationPolicy(keep)


def _handlers(partial: bool) -> dict:
    """Handlers named up front, so that a fresh manager can read a step's array metadata
    before any restore; `partial` (PyTree handler) allows restoring the parameters alone."""
    state = ocp.PyTreeCheckpointHandler() if partial else ocp.StandardCheckpointHandler()
    return {"state": state, **{name: ocp.JsonCheckpointHandler() for name in ITEMS[1:]}}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


class Checkpoints:
    """The checkpoints of one run directory.

    `read_only` opens another run's checkpoints (for --init_from): nothing is written or
    cleaned there, since that run may still be saving.
    """

    def __init__(self, directory: str, train: TrainConfig | None = None, *,
                 read_only: bool = False):
        self.directory = directory
        if read_only and not storage.path(directory).is_dir():
            raise UserError(f"no checkpoints in {directory}: expected a run directory "
                            f"written by `scaling train`")
        try:
            if not read_only:
                storage.makedirs(directory)
                if jax.process_index() == 0:
                    remove_tmp_dirs(directory)
            options = ocp.CheckpointManagerOptions(
                read_only=read_only, create=not read_only,
                cleanup_tmp_directories=not read_only,
                enable_async_checkpointing=True,
                preservation_policy=None if read_only else retention(train),
            )
            self.manager = ocp.CheckpointManager(
                storage.path(directory), item_handlers=_handlers(partial=read_only),
                options=options)
        except OSError as e:
            raise UserError(f"cannot use checkpoint directory {directory}: "
                            f"{e.strerror or _first_line(e)}") from None

    def latest_step(self) -> int | None:
        """The newest committed step, or None."""
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, *, data: dict, config: dict, meta: dict) -> None:
        """Start an async save of `step` (waits for the previous save first and surfaces its
        error). Refuses non-finite values: a checkpoint is always something to resume from."""
        bad = nonfinite_paths(state)
        if bad:
            raise UserError(f"refusing to checkpoint step {step}: non-finite values in "
                            f"{', '.join(bad[:5])}; the last committed step is "
                            f"{self.latest_step()}")
        if step in self.manager.all_steps():
            return  # already committed (e.g. resumed at the final step)
        self._check_writable()
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data),
            config=ocp.args.JsonSave(config), meta=ocp.args.JsonSave(meta))
        noise.save_started()  # its machinery's tracebacks wait for the outcome
        try:
            self.manager.save(step, args=args, force=True)
        except Exception as e:  # noqa: BLE001 - any failure to write is reported, not raised raw
            raise self._save_error(e) from None

    def _check_writable(self) -> None:
        """Create and remove a probe directory (on object storage, a probe object). An
        unwritable directory must fail here: inside orbax it leaves non-daemon threads
        waiting (up to 10 minutes) at exit."""
        probe = storage.join(self.directory, f".probe-{jax.process_index()}-{os.getpid()}")
        try:
            if storage.is_remote(probe):
                storage.write_atomic(probe, b"")
                storage.path(probe).unlink()
            else:
                os.mkdir(probe)
                os.rmdir(probe)
        except OSError as e:
            raise self._save_error(e) from None

    def wait(self) -> None:
        """Block until the pending save has committed; raise a UserError if it failed."""
        try:
            self.manager.wait_until_finished()
            self.manager.check_for_errors()
        except Exception as e:  # noqa: BLE001
            raise self._save_error(e) from None
        noise.save_committed()

    def close(self) -> None:
        """Wait for the pending save, then release orbax's threads."""
        try:
            self.wait()
        finally:
            self.manager.close()

    def _save_error(self, e: BaseException) -> UserError:
        try:  # an earlier async save may still be committing: let it, then say what is there
            self.manager.wait_until_finished()
        except Exception:  # noqa: BLE001 - that save's own failure is reported elsewhere
            pass
        committed = committed_steps(self.directory)
        last = max(committed) if committed else None
        noise.note_reported_failure()  # orbax's tracebacks for it are dropped
        return UserError(
            f"saving a checkpoint to {self.directory} failed ({_first_line(e)}); the last "
            f"committed step {last} is intact. Check that the directory is writable and the "
            f"disk has space, then rerun to resume")

    def verify(self, step: int) -> dict:
        """What can be checked cheaply before restoring `step`: every item is present and
        committed, the JSON items parse, the array metadata (shapes, dtypes) reads and
        holds parameters. Returns {"tree": array metadata, "meta": ..., "config": ...};
        raises DamagedCheckpointError naming the problem."""
        path = storage.path(storage.join(self.directory, str(step)))
        for item in ITEMS:
            if not (path / item).is_dir():
                raise DamagedCheckpointError(f"item {item!r} is missing")
        try:
            meta, config = self.read_json(step, "meta"), self.read_json(step, "config")
            tree = self.saved_tree(step)
        except Exception as e:  # noqa: BLE001 - any unreadable item is damage
            raise DamagedCheckpointError(_first_line(e)) from None
        if not isinstance(meta, dict) or not isinstance(config, dict):
            raise DamagedCheckpointError("the meta or config item is not a JSON object")
        if not tree or not flat_shapes(dict(tree).get("params") or {}):
            raise DamagedCheckpointError("the state item holds no parameters (metadata lost)")
        return {"tree": tree, "meta": meta, "config": config}

    def quarantine(self, step: int) -> str:
        """Move a damaged step aside to `<step>.damaged` (never deleted) and forget it."""
        src = storage.join(self.directory, str(step))
        dst, n = f"{src}.damaged", 1
        while storage.path(dst).exists():
            n += 1
            dst = f"{src}.damaged{n}"
        storage.path(src).rename(dst)  # on object storage: a copy, then a delete
        self.manager.reload()
        return dst

    def restore(self, step: int, target, tree=None) -> dict:
        """Restore `step` onto `target`, a tree of ShapeDtypeStructs carrying the *current*
        mesh's shardings (this is what reshards). Returns {state, data, config, meta}.
        Raises UserError listing the paths if the saved tree differs from `target`, and
        DamagedCheckpointError if the arrays cannot be read."""
        check_compatible(self.saved_tree(step) if tree is None else tree, target,
                         self.directory, step)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore(),
            config=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore())
        try:
            restored = self.manager.restore(step, args=args)
        except Exception as e:  # noqa: BLE001 - truncated or corrupted array files
            raise DamagedCheckpointError(_first_line(e)) from None
        return {name: restored[name] for name in ITEMS}

    def restore_params(self, step: int, target_params) -> dict:
        """Only the parameters of `step` (for --init_from), onto `target_params`' shardings."""
        saved = self.saved_tree(step)
        check_compatible({"params": saved.get("params", {})}, {"params": target_params},
                         self.directory, step)
        item = {"params": target_params}
        args = ocp.args.Composite(state=ocp.args.PyTreeRestore(
            item, restore_args=ocp.checkpoint_utils.construct_restore_args(item),
            partial_restore=True))
        return self.manager.restore(step, args=args)["state"]["params"]

    def restore_numpy(self, step: int) -> dict:
        """The whole saved state of `step` as host NumPy arrays in a nested dict (for tools
        and tests; needs a `read_only` instance)."""
        saved = self.saved_tree(step)
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved)
        args = ocp.args.Composite(state=ocp.args.PyTreeRestore(
            saved, restore_args=restore_args))
        return self.manager.restore(step, args=args)["state"]

    def saved_tree(self, step: int):
        """The saved state's tree of array metadata (shape, dtype), read without the arrays."""
        return self.manager.item_metadata(step)["state"]

    def read_json(self, step: int, item: str) -> dict:
        """One JSON item of `step` (e.g. `meta`), without touching the arrays."""
        return self.manager.restore(step, args=ocp.args.Composite(
            **{item: ocp.args.JsonRestore()}))[item]


def committed_steps(directory: str) -> list[int]:
    """Step directories that committed (names that are integers; on object storage, holding
    the commit marker), read from storage."""
    steps = [int(n) for n in storage.listdir(directory) if n.isdigit()]
    if storage.is_remote(directory):
        steps = [s for s in steps
                 if storage.path(storage.join(directory, str(s), COMMIT_FILE)).exists()]
    return steps


def remove_tmp_dirs(directory: str) -> None:
    """Delete leftover uncommitted steps now. (orbax's `cleanup_tmp_directories` does it in
    a background thread, so they could still be listed right after start.) Other processes
    write nothing before the barrier at the start of the first save."""
    for name in tmp_dirs(directory):
        try:
            storage.path(storage.join(directory, name)).rmtree()
        except OSError:
            pass


def tmp_dirs(directory: str) -> list[str]:
    """Leftover uncommitted step directories (a save that was interrupted)."""
    return sorted(n for n in storage.listdir(directory) if TMP_MARKER in n)


@jax.jit
def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
              if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def nonfinite_paths(state) -> list[str]:
    """Paths of leaves holding NaN or inf; one fused reduction when all is well."""
    if bool(_all_finite(state)):
        return []
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return [path_text(path) for path, x in leaves
            if np.issubdtype(x.dtype, np.inexact) and not bool(jnp.all(jnp.isfinite(x)))]
