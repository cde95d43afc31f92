"""`scaling sweep`: a spec of model sizes x token or compute budgets, one training run each.

Spec (YAML or JSON):

    base: gpt-tiny                    # preset every run starts from
    settings: {train.global_batch: 16, optim.warmup_steps: 20}   # shared --set overrides
    models:                           # explicit shapes (model.* keys) ...
      - {n_layers: 2, d_model: 64, n_heads: 2, d_ff: 256}
    ladder:                           # ... and/or a width ladder with a width/depth rule
      d_model: [64, 128, 256]
      aspect_ratio: 32                # n_layers = max(1, round(d_model / aspect_ratio))
      head_dim: 32                    # n_heads = d_model / head_dim
      ff_mult: 4                      # d_ff = ff_mult * d_model
    tokens: [2e6, 8e6]                # token budgets: every size x every budget, or
    budgets: [1e13, 1e14]             # IsoFLOP budgets: every size, tokens = C / (6 N), or
    budgets: {1e13: [32, 48, 64], 1e14: [48, 64, 96]}   # each budget's own widths (d_model)
    count: total                      # N for C = 6ND: total (Chinchilla) | non_embedding (Kaplan)
    lr: 1e-3                          # one rate, or per width: {default: 1e-3, 64: 3e-3}
    lrs: [1e-3, 3e-3]                 # optional: a learning-rate grid, every run x every rate
    variants:                         # optional: named setting sets, every run x every variant
      mup: {model.mup_base_width: 64}
      sp: {model.mup_base_width: 0}

Under μP (settings `model.mup_base_width: W`) `lr` is the rate tuned at width W: hidden
matrices of a d_model = d run learn at lr * W / d (scaling/train/optimizer.py), so one rate
serves every size and the spec needs no per-width table.

Each run trains for ceil(tokens / tokens-per-step) steps, so the schedule (warmup + cosine
over train.steps) is matched to its token budget as Chinchilla did (Hoffmann et al. §3.1).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass

from scaling import config as cfg
from scaling import storage
from scaling.bounds import MAX_TOKENS
from scaling.errors import UserError
from scaling.eval import registry as evaluators
from scaling.laws import accounting
from scaling.presets import get_preset
from scaling.validate import validate

SPEC_KEYS = {
    "base",
    "settings",
    "models",
    "ladder",
    "tokens",
    "budgets",
    "count",
    "lr",
    "lrs",
    "variants",
}
LADDER_KEYS = {"d_model", "aspect_ratio", "head_dim", "ff_mult"}


class SpecError(UserError, ValueError):
    """A sweep spec that cannot be expanded into runs."""


@dataclass(frozen=True)
class Run:
    """One planned training run: its directory name, config and budget."""

    name: str
    config: cfg.Config
    tokens: float
    budget: float | None  # nominal IsoFLOP budget, when the spec gives budgets
    variant: str = ""  # the spec's variant name, when it has variants


def load_spec(path: str) -> dict:
    """Parse a YAML (.yaml/.yml) or JSON spec file into a dict."""
    if not os.path.isfile(path):
        raise SpecError(f"sweep spec {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as e:  # the parsers' own errors name line and column
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError(f"{path}: cannot parse the spec ({first})") from None
    if not isinstance(spec, dict):
        raise SpecError(f"{path}: expected a mapping of spec keys at the top level")
    return spec


def _number(value, where: str) -> float:
    """A finite number from a spec value (YAML reads 2e6 as text: text that is a number is
    taken); booleans, nulls, lists, .inf and .nan are refused naming `where`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"spec {where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise SpecError(f"spec {where}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise SpecError(f"spec {where}: expected a finite number, got {value!r}")
    return number


def _whole(value) -> int:
    """A width: a whole number (or its text), never a boolean or a float."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(value)
    return int(value)


def _check_types(spec: dict) -> None:
    """The spec's text and mapping keys have their types (the numbers are checked where
    they are read, by _number)."""
    for key in ("base", "count"):
        if key in spec and not isinstance(spec[key], str):
            raise SpecError(f"spec {key}: expected text, got {spec[key]!r}")
    settings = spec.get("settings")
    if settings is not None and not isinstance(settings, dict | list):
        raise SpecError(f"spec settings: expected a mapping of --set keys, got {settings!r}")
    values = settings.values() if isinstance(settings, dict) else []
    for key, value in zip(list(settings or {}) if isinstance(settings, dict) else [], values,
                          strict=True):
        if value is None or isinstance(value, list | dict):
            raise SpecError(f"spec settings: {key}: expected one value, got {value!r}")


def _positive_list(spec: dict, key: str) -> list[float]:
    values = spec.get(key) or []
    values = values if isinstance(values, list) else [values]
    out = [_number(v, key) for v in values]
    if any(v <= 0 for v in out):
        raise SpecError(f"spec {key}: every value must be positive, got {values!r}")
    if key == "tokens" and any(v > MAX_TOKENS for v in out):
        raise SpecError(f"spec tokens: {max(out):g} is more than {MAX_TOKENS:.0e} tokens "
                        f"(docs/reliability.md, Bounds)")
    return out


def _ladder_shapes(ladder: dict) -> list[dict]:
    unknown = set(ladder) - LADDER_KEYS
    if unknown:
        raise SpecError(f"spec ladder: unknown key {sorted(unknown)[0]!r} (known: "
                        f"{', '.join(sorted(LADDER_KEYS))})")  # fmt: skip
    aspect = _number(ladder.get("aspect_ratio", 64), "ladder aspect_ratio")
    head_dim = int(_number(ladder.get("head_dim", 64), "ladder head_dim"))
    ff_mult = _number(ladder.get("ff_mult", 4), "ladder ff_mult")
    if not (aspect > 0 and head_dim > 0 and ff_mult > 0):
        raise SpecError("spec ladder: aspect_ratio, head_dim and ff_mult must be positive")
    shapes = []
    for d in _positive_list(ladder, "d_model"):
        d = int(d)
        if d % head_dim:
            raise SpecError(f"spec ladder: d_model={d} is not a multiple of head_dim={head_dim}")
        shapes.append({"d_model": d, "n_layers": max(1, round(d / aspect)),
                       "n_heads": d // head_dim, "d_ff": int(ff_mult * d)})  # fmt: skip
    return shapes


def _shapes(spec: dict) -> list[dict]:
    shapes = spec.get("models") or []
    if not isinstance(shapes, list) or not all(isinstance(m, dict) for m in shapes):
        raise SpecError(
            "spec models: expected a list of mappings such as {n_layers: 2, "
            "d_model: 128, n_heads: 4, d_ff: 512}"
        )
    shapes = list(shapes)
    if spec.get("ladder") and not isinstance(spec["ladder"], dict):
        raise SpecError("spec ladder: expected a mapping with d_model: [...]")
    if spec.get("ladder"):
        shapes += _ladder_shapes(spec["ladder"])
    if not shapes:
        raise SpecError("spec: list model shapes under 'models' or a width ladder under 'ladder'")
    return shapes


def _lr(spec: dict, d_model: int, base: cfg.Config) -> float:
    lr = spec.get("lr", base.optim.lr)
    if isinstance(lr, dict):
        lr = lr.get(d_model, lr.get(str(d_model), lr.get("default", base.optim.lr)))
    return _number(lr, f"lr (d_model={d_model})")


def _settings(settings) -> list[str]:
    if isinstance(settings, dict):
        return [f"{k}={v}" for k, v in settings.items()]
    return [str(s) for s in settings or []]


def _variants(spec: dict) -> list[tuple[str, list[str]]]:
    """(name, overrides) per variant; one unnamed variant when the spec has none."""
    variants = spec.get("variants")
    if not variants:
        return [("", [])]
    if not isinstance(variants, dict) or not all(
        isinstance(v, dict | list | None) for v in variants.values()
    ):
        raise SpecError(
            "spec variants: expected a mapping of names to settings, such as "
            "{mup: {model.mup_base_width: 64}, sp: {model.mup_base_width: 0}}"
        )
    return [(str(name), _settings(settings)) for name, settings in variants.items()]


def _budgets(spec: dict) -> list[tuple[float, list[int] | None]]:
    """(budget, the widths trained at it or None for every size) per IsoFLOP budget."""
    budgets = spec.get("budgets")
    if not isinstance(budgets, dict):
        return [(c, None) for c in _positive_list(spec, "budgets")]
    out = []
    for key, widths in budgets.items():
        c = _number(key, "budgets")
        try:
            widths = [_whole(w) for w in widths]
        except (TypeError, ValueError):
            raise SpecError(
                f"spec budgets: expected budget: [d_model, ...] entries such as "
                f"1.0e+12: [32, 48, 64], got {key!r}: {widths!r}"
            ) from None
        if c <= 0 or not widths:
            raise SpecError(f"spec budgets: {key!r} needs a positive budget and at least one width")
        out.append((c, widths))
    return out


def _sized_config(spec: dict, base: cfg.Config, shape: dict, variant: list[str],
                  lr: float | None) -> cfg.Config:  # fmt: skip
    overrides = _settings(spec.get("settings")) + variant
    overrides += [f"model.{k}={v}" for k, v in shape.items()]
    config = cfg.apply_overrides(base, overrides)
    lr = _lr(spec, config.model.d_model, base) if lr is None else lr
    return dataclasses.replace(config, optim=dataclasses.replace(config.optim, lr=lr))


def _with_tokens(config: cfg.Config, tokens: float) -> cfg.Config:
    steps = accounting.steps_for_tokens(tokens, config.train.global_batch, config.seq_len)
    train = dataclasses.replace(config.train, steps=steps)
    optim = config.optim
    if optim.warmup_steps >= steps:  # a short run still needs room to decay
        optim = dataclasses.replace(optim, warmup_steps=max(0, steps // 10))
    config = validate(dataclasses.replace(config, train=train, optim=optim))
    evaluators.check(config)  # train.eval_tasks names, as `scaling train` checks them
    return config


def expand(spec: dict) -> list[Run]:
    """Every run the spec asks for, in a stable order (variant, size, learning rate, budget),
    with validated configs."""
    _check_types(spec)
    unknown = set(spec) - SPEC_KEYS
    if unknown:
        raise SpecError(f"spec: unknown key {sorted(unknown)[0]!r} (known: "
                        f"{', '.join(sorted(SPEC_KEYS))})")  # fmt: skip
    if "base" not in spec:
        raise SpecError("spec: 'base' (the preset every run starts from) is required")
    tokens, budgets = _positive_list(spec, "tokens"), _budgets(spec)
    if bool(tokens) == bool(budgets):
        raise SpecError("spec: give exactly one of 'tokens' (token budgets) or 'budgets' "
                        "(IsoFLOP compute budgets)")  # fmt: skip
    count = spec.get("count", "total")
    if count not in ("total", "non_embedding"):
        raise SpecError(f"spec count={count!r}: expected total or non_embedding")
    lrs = _positive_list(spec, "lrs") or [None]
    base = get_preset(str(spec["base"]))
    shapes = _shapes(spec)
    widths = {int(s.get("d_model", base.model.d_model)) for s in shapes}
    for c, chosen in budgets:
        missing = sorted(set(chosen or []) - widths)
        if missing:
            raise SpecError(
                f"spec budgets: {c:g} lists d_model={missing[0]}, which no model "
                f"shape has (widths: {', '.join(map(str, sorted(widths)))})"
            )
    runs = []
    for variant, overrides in _variants(spec):
        prefix = f"{variant}-" if variant else ""
        for shape in shapes:
            for lr in lrs:
                config = _sized_config(spec, base, shape, overrides, lr)
                m = config.model
                n = accounting.param_counts(m)[count]
                name = prefix + f"L{m.n_layers}-d{m.d_model}" + (f"-lr{lr:g}" if lr else "")
                for t in tokens:
                    runs.append(Run(f"{name}-D{t:.3g}", _with_tokens(config, t), t, None, variant))
                for c, chosen in budgets:
                    if chosen is None or m.d_model in chosen:
                        t = c / (6 * n)
                        runs.append(Run(f"{name}-C{c:.3g}", _with_tokens(config, t), t, c, variant))
    return runs


# ---------------------------------------------------------------------------------------------
# Running and gathering.


def _read_json(path: str) -> dict | None:
    try:
        if storage.is_remote(path):  # a cluster sweep's workdir on object storage
            return json.loads(storage.read_text(path))
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def is_finished(run_dir: str) -> bool:
    """A run is finished when its summary.json records the last step and no preemption."""
    s = _read_json(storage.join(run_dir, "summary.json"))
    if not s:
        return False
    return not s.get("preempted") and s.get("end_step", s.get("steps", 0)) >= s.get("steps", 1)


def _train_one(config_dict: dict, run_dir: str) -> dict:
    """Worker body: one ordinary training run (imported late: JAX starts only here)."""
    from scaling.eval.registry import training_evaluations
    from scaling.train.loop import train

    config = cfg.from_dict(config_dict)
    return train(config, run_dir, progress=False, evaluations=training_evaluations(config))


def run_sweep(runs: list[Run], workdir: str, jobs: int = 1, train_fn=None) -> list[str]:
    """Train every unfinished run in `workdir/<name>`, `jobs` at a time (separate processes
    when jobs > 1); finished runs are skipped, interrupted ones resume from checkpoints.
    Returns the names trained now. `train_fn(config_dict, run_dir)` replaces the trainer."""
    train_fn = train_fn or _train_one
    todo = [r for r in runs if not is_finished(os.path.join(workdir, r.name))]
    for r in todo:
        os.makedirs(os.path.join(workdir, r.name), exist_ok=True)
    if jobs <= 1:
        for i, r in enumerate(todo):
            run_dir = os.path.join(workdir, r.name)
            train_fn(r.config.to_dict(), run_dir)
            if not is_finished(run_dir):  # preempted (SIGTERM): leave the rest for the rerun
                print(
                    f"scaling: sweep stopped in run {r.name}; rerun the same command to "
                    f"resume it and the {len(todo) - i - 1} runs after it",
                    flush=True,
                )
                return [t.name for t in todo[: i + 1]]
        return [r.name for r in todo]
    import concurrent.futures
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # JAX does not survive fork
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(train_fn, r.config.to_dict(), os.path.join(workdir, r.name))
                   for r in todo]  # fmt: skip
        for f in futures:
            f.result()  # re-raises a run's error here
    return [r.name for r in todo]


def _row(run: Run, run_dir: str, summary: dict) -> dict:
    counts = accounting.param_counts(run.config.model)
    t = run.config.train
    tokens = summary.get("end_step", t.steps) * accounting.tokens_per_step(
        t.global_batch, run.config.seq_len
    )
    return {
        "name": run.name, "N": counts["total"], "N_non_emb": counts["non_embedding"],
        "D": tokens, "C": accounting.training_flops(counts["total"], tokens),
        "budget": run.budget if run.budget is not None else "",
        "d_model": run.config.model.d_model, "n_layers": run.config.model.n_layers,
        "lr": run.config.optim.lr, "mup_base_width": run.config.model.mup_base_width,
        "variant": run.variant,
        "final_eval_loss": summary.get("final_eval_loss"),
        "best_eval_loss": summary.get("best_eval_loss"),
        "wall_time": summary.get("wall_time"), "steps": summary.get("end_step", t.steps),
        "run_dir": run_dir,
    }  # fmt: skip


def gather_results(runs: list[Run], workdir: str) -> list[dict]:
    """One row per finished run (N, N_non_emb, D, C, losses, wall time); writes
    workdir/results.csv and results.jsonl, the table `scaling fit --results` reads. Runs
    still training (a cluster sweep's) are left out until they finish."""
    import csv
    import io

    rows = []
    for r in runs:
        run_dir = storage.join(workdir, r.name)
        if is_finished(run_dir):
            rows.append(_row(r, run_dir, _read_json(storage.join(run_dir, "summary.json"))))
    if rows:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        storage.write_atomic(storage.join(workdir, "results.csv"), text.getvalue())
        storage.write_atomic(storage.join(workdir, "results.jsonl"),
                             "".join(json.dumps(row) + "\n" for row in rows))  # fmt: skip
    return rows
