"""Every check that can be made on a `Config` before any device or dataset work starts.

The allowed values of each choice come from the code that owns them: the registered
families and objectives (scaling/families/), the model settings (models/choices.py, which
the activation, remat and attention tables are checked against at import), dtypes
(platform.py), schedules (schedules.py), tokenizer types (data/tokenizer.py). None of these
imports JAX, so a bad value fails in a fraction of a second. The names in train.eval_tasks
are the evaluators' to check (scaling/eval/registry.py `training_evaluations`, which the
training commands call right after this): the eval package sits above train, which imports
this module.
"""

from __future__ import annotations

from scaling.bounds import MAX_STEPS
from scaling.config import Config, ConfigError
from scaling.data.sources.task_files import TASK_TYPES
from scaling.data.tokenizers import TOKENIZER_TYPES
from scaling.families import (
    family_names,
    family_of,
    get_family,
    get_objective,
    objective_names,
    objective_of,
    param_counts,
)
from scaling.models.choices import (
    ACTIVATIONS,
    ATTENTION,
    NORMS,
    POSITION_EMBEDDINGS,
    REMAT_POLICIES,
)
from scaling.platform import DTYPES
from scaling.rng import DROPOUT_RNGS
from scaling.schedules import SCHEDULES

MAX_DIM = 2**31 - 1  # int32 indices and shapes
MAX_PARAMS = 10**13  # 57x GPT-3: beyond it a size is a typo
OPTIONS = ("data.nsp",)  # boolean switches only some objectives honour (Objective.options)


FSDP_GATHER = ("layer", "step")  # train.fsdp_gather (scaling/train/step.py)


def _choices() -> dict[str, tuple[str, ...]]:
    return {
        "model.family": family_names(),
        "model.pos_emb": POSITION_EMBEDDINGS,
        "model.norm": NORMS,
        "model.activation": tuple(ACTIVATIONS),
        "model.remat": tuple(REMAT_POLICIES),
        "model.dtype": DTYPES,
        "model.attention": ATTENTION,
        "data.tokenizer_type": TOKENIZER_TYPES,
        "optim.schedule": SCHEDULES,
        "train.fsdp_gather": FSDP_GATHER,
        "train.dropout_rng": tuple(DROPOUT_RNGS),
    }


def _check_options(config: Config) -> None:
    """ConfigError for a switch (OPTIONS) that is on while the run's objective ignores it."""
    objective = objective_of(config)
    for key in OPTIONS:
        section, name = key.split(".")
        if getattr(getattr(config, section), name) and key not in objective.options:
            honour = [n for n in objective_names() if key in get_objective(n).options]
            raise ConfigError(f"{key}=true: the {objective.name} objective has no such option "
                              f"(only {', '.join(honour)}); set {key}=false")


def validate(config: Config) -> Config:
    """Raise ConfigError naming the first inconsistent value; return the config unchanged."""
    m, t, o = config.model, config.train, config.optim
    for key, choices in _choices().items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in choices:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(choices)}")
    family_of(m).check(m)
    _check_options(config)  # the objective exists, fits the family and honours the switches
    _ = config.data.spec  # the --data spec, parsed (once) before any data work
    positive = {
        "model.vocab_size": m.vocab_size, "model.n_layers": m.n_layers,
        "model.d_model": m.d_model, "model.n_heads": m.n_heads, "model.d_ff": m.d_ff,
        "model.max_len": m.max_len, "train.steps": t.steps, "train.global_batch": t.global_batch,
        "train.microbatches": t.microbatches, "train.log_every": t.log_every,
        "train.eval_every": t.eval_every, "train.eval_batches": t.eval_batches,
        "train.checkpoint_every": t.checkpoint_every, "train.keep_last": t.keep_last,
        "train.max_nonfinite": t.max_nonfinite,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}={value}: must be a positive integer")
    for key, value in {"model.vocab_size": m.vocab_size, "model.d_model": m.d_model,
                       "model.d_ff": m.d_ff, "model.max_len": m.max_len,
                       "model.n_layers": m.n_layers, "model.n_heads": m.n_heads,
                       "model.vocab_multiple": m.vocab_multiple}.items():
        if value > MAX_DIM:
            raise ConfigError(f"{key}={value}: larger than {MAX_DIM:,}, which no array axis "
                              f"here can hold")
    if t.steps > MAX_STEPS:
        raise ConfigError(f"train.steps={t.steps:,}: more than {MAX_STEPS:.0e} steps; check "
                          f"the value (docs/reliability.md, Bounds)")
    total = param_counts(m)["total"]
    if total > MAX_PARAMS:
        raise ConfigError(f"the model has {total:.3g} parameters, more than {MAX_PARAMS:.0e}; "
                          f"check model sizes (vocab_size, d_model, d_ff, n_layers)")
    if m.d_model % m.n_heads:
        raise ConfigError(
            f"model.n_heads={m.n_heads} does not divide model.d_model={m.d_model}; "
            f"choose heads so that d_model / heads is a whole head width"
        )
    if t.keep_period < 0:
        raise ConfigError(f"train.keep_period={t.keep_period}: must be >= 0 (0 = none)")
    if m.mup_base_width < 0:
        raise ConfigError(f"model.mup_base_width={m.mup_base_width}: must be >= 0 (0 = off)")
    if m.scan_unroll < 0:
        raise ConfigError(f"model.scan_unroll={m.scan_unroll}: must be >= 0 (layers per scan "
                          f"iteration; 0 = auto per platform)")
    if m.local_window < 0 or m.local_every < 1:
        raise ConfigError("model.local_window must be >= 0 and model.local_every >= 1")
    if not 0.0 <= m.dropout < 1.0 or not 0.0 <= m.attn_dropout < 1.0:
        raise ConfigError("model.dropout and model.attn_dropout must lie in [0, 1)")
    if t.seq_len < 0 or config.seq_len > m.max_len:
        raise ConfigError(
            f"train.seq_len={t.seq_len} exceeds model.max_len={m.max_len} (or is negative)"
        )
    if t.global_batch % t.microbatches:
        raise ConfigError(
            f"train.microbatches={t.microbatches} does not divide "
            f"train.global_batch={t.global_batch}"
        )
    if o.lr <= 0 or o.warmup_steps < 0 or not 0 <= o.min_lr_ratio <= 1:
        raise ConfigError("optim.lr must be > 0, warmup_steps >= 0, min_lr_ratio in [0, 1]")
    if not 0.0 <= o.label_smoothing < 1.0:
        raise ConfigError(f"optim.label_smoothing={o.label_smoothing}: must lie in [0, 1)")
    if t.eval_bleu < 0:
        raise ConfigError(f"train.eval_bleu={t.eval_bleu}: must be >= 0 (0 = off)")
    if o.clip_norm < 0 or o.weight_decay < 0 or o.z_loss < 0:
        raise ConfigError("optim.clip_norm, optim.weight_decay and optim.z_loss must be >= 0")
    _check_finetune(config)
    sizes = (config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    if sum(s == -1 for s in sizes) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ConfigError(
            f"mesh sizes data={sizes[0]} fsdp={sizes[1]} tensor={sizes[2]}: each must be "
            f"positive, and at most one may be -1"
        )
    if config.mesh.replica < 1:
        raise ConfigError(f"mesh.replica={config.mesh.replica}: must be a positive integer "
                          f"(the number of slices; 1 = one slice)")
    _check_pipeline(config)
    return config


def _check_pipeline(config: Config) -> None:
    """Pipeline stages (mesh.stage > 1) split a scanned stack of a family that pipelines
    into equal stages. Fewer microbatches than stages is legal but mostly bubble; the run
    says so at start-up (scaling/train/loop.py)."""
    m, stage = config.model, config.mesh.stage
    if stage < 1:
        raise ConfigError(f"mesh.stage={stage}: must be a positive integer (pipeline stages; "
                          f"1 = no pipeline)")
    if stage == 1:
        return
    family = family_of(m)
    if not family.pipeline:
        able = [n for n in family_names() if get_family(n).pipeline]
        raise ConfigError(f"mesh.stage={stage}: the {family.name} family does not run as "
                          f"pipeline stages (only {', '.join(able)}); set mesh.stage=1")
    if not m.scan_layers:
        raise ConfigError(f"mesh.stage={stage} needs model.scan_layers=true (stages split the "
                          f"scanned layer axis)")
    if m.n_layers % stage:
        raise ConfigError(f"mesh.stage={stage} does not divide model.n_layers={m.n_layers}; "
                          f"each stage holds n_layers / stage consecutive layers")


def _check_finetune(config: Config) -> None:
    """A fine-tuning objective needs its task (set by `scaling finetune`)."""
    ft = config.finetune
    if ft.task_type not in ("", *TASK_TYPES):
        raise ConfigError(f"finetune.task_type={ft.task_type!r}: expected one of "
                          f"{', '.join(TASK_TYPES)}")
    if ft.lm_weight < 0 or ft.epochs <= 0 or ft.num_labels < 0 or ft.num_choices < 0:
        raise ConfigError("finetune.lm_weight must be >= 0, finetune.epochs > 0, "
                          "finetune.num_labels and num_choices >= 0")
    objective = objective_of(config)
    if objective.make_model is not None and not (ft.task and ft.task_type):
        raise ConfigError(f"train.objective={objective.name} fine-tunes on a task: run "
                          f"`scaling finetune --init_from RUN --task DIR --workdir DIR`")
