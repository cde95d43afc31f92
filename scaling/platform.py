"""The target platform, resolved once when a run starts (docs/design.md, "Platform").

`model.dtype=auto` and `model.attention=auto` name a choice that depends on where the model
runs, which is not always where Python runs: an ahead-of-time compile for a TPU topology on
a CPU host must get bfloat16 and the TPU path. Every entry point (train, bench, AOT compile,
eval, generate) calls `resolve(config, devices)` with the devices the model will run on, so
no layer looks at `jax.default_backend()` while tracing.
"""

from __future__ import annotations

import dataclasses

from scaling.host_memory import tune_malloc

DTYPES = ("auto", "float32", "bfloat16", "float16")  # model.dtype


def platform_of(devices) -> str:
    """'cpu', 'gpu' or 'tpu' for a list of (possibly compile-only) devices."""
    platform = devices[0].platform.lower()
    return "gpu" if platform in ("gpu", "cuda", "rocm") else platform


def auto_dtype(platform: str) -> str:
    """Compute dtype for `auto`: bfloat16 on accelerators (params stay float32), float32 on
    CPU, where bfloat16 matmuls are emulated and slower."""
    return "float32" if platform == "cpu" else "bfloat16"


FUSED = {"gpu": "cudnn", "tpu": "splash"}  # the fused attention kernel of each platform
TPU_MULTIPLE = 128  # splash on TPU: sequence lengths a multiple of the vector lane width
# Said once per run when `auto` turns attention-probability dropout off (docs/performance.md).
RECIPE = ("the fused kernel runs without attention-probability dropout (model.attn_dropout "
          "{rate} -> 0; residual and embedding dropout {residual} kept): {why}; set "
          "model.attention=xla to keep it")
NO_DROPOUT = {"cudnn": "JAX's cuDNN attention takes its dropout seed as a fixed integer, "
                       "which would repeat one mask every step",
              "splash": "the splash kernel has no dropout"}


def auto_attention(platform: str) -> str:
    """Attention path for `auto`: the platform's fused kernel (cuDNN on GPU, splash on TPU),
    the XLA path on CPU."""
    return FUSED.get(platform, "xla")


def attention_plan(config, platform: str) -> tuple[str, float, list[str]]:
    """(path, attention dropout, notes) that `config` (a scaling.config.Config) runs with on
    `platform`: `auto` becomes the fused kernel with attention dropout off (the recipe, said
    in a note); a fused kernel that cannot run the setting gives way to the XLA path, and a
    note says why. Paths: xla | cudnn | splash | splash-interpret (splash on CPU)."""
    m = config.model
    want = auto_attention(platform) if m.attention == "auto" else m.attention
    fused = "splash" if want.startswith("splash") else want
    why = _blocker(config, fused, platform)
    if want == "xla" or why:
        return "xla", m.attn_dropout, [why] if why else []
    if m.attn_dropout > 0 and m.attention == "auto":
        return want, 0.0, [RECIPE.format(rate=m.attn_dropout, residual=m.dropout,
                                         why=NO_DROPOUT[fused])]
    if m.attn_dropout > 0:
        return "xla", m.attn_dropout, [
            f"model.attention={m.attention} runs on the XLA path: model.attn_dropout "
            f"{m.attn_dropout} > 0 and {NO_DROPOUT[fused]}; set model.attn_dropout=0 (or "
            f"model.attention=auto) for the fused kernel"]
    if fused == "splash" and platform != "tpu":
        return "splash-interpret", 0.0, [
            f"model.attention=splash on {platform}: the kernel runs in Pallas interpret "
            f"mode (slow; meant for checks)"]
    return want, m.attn_dropout, []


def _blocker(config, fused: str, platform: str) -> str | None:
    """Why `fused` cannot run `config` on `platform`, in one line, or None."""
    if fused == "cudnn" and platform != "gpu":
        return f"model.attention=cudnn runs on the XLA path: cuDNN needs a GPU, not {platform}"
    if fused == "splash" and platform == "gpu":
        return "model.attention=splash runs on the XLA path: the splash kernel is for TPU"
    if fused == "splash" and config.mesh.stage > 1:
        return ("model.attention=splash runs on the XLA path: not inside the pipeline's "
                "stage shard_map (mesh.stage > 1)")
    if fused == "splash" and platform == "tpu" and config.seq_len % TPU_MULTIPLE:
        return (f"model.attention=splash runs on the XLA path: sequence length "
                f"{config.seq_len} is not a multiple of {TPU_MULTIPLE}")
    return None


def attention_summary(config, devices) -> dict:
    """summary.json's `attention`: the setting, the path it runs on `devices`, the attention
    dropout that path applies and the notes (why not fused; the recipe)."""
    path, rate, notes = attention_plan(config, platform_of(devices))
    return {"setting": config.model.attention, "path": path, "attn_dropout": rate,
            "notes": notes}


def attention_line(config, devices) -> str:
    """One line for start-up and `bench compile`: the path `config` runs and why."""
    s = attention_summary(config, devices)
    return f"attention: {s['path']} (model.attention={s['setting']})" + \
        "".join(f"; {n}" for n in s["notes"])


# CPU unrolls scanned stacks up to this depth: measured faster there (no while loop, no
# stacked residual buffers), while compile time grows with the depth (README, "Performance").
CPU_UNROLL_MAX_LAYERS = 24


def auto_scan_unroll(platform: str, n_layers: int) -> int:
    """Layers per iteration of a scanned stack for `model.scan_unroll=0`: all of them on CPU
    for stacks up to CPU_UNROLL_MAX_LAYERS deep, else 1 (a loop: compile time independent of
    depth, which large models on GPU/TPU need)."""
    return n_layers if platform == "cpu" and n_layers <= CPU_UNROLL_MAX_LAYERS else 1


def resolve(config, devices):
    """`config` (a scaling.config.Config) with `auto` dtype and attention, and
    `scan_unroll=0`, replaced by the concrete choice for the platform of `devices`; the
    attention path is `attention_plan`'s (its attention dropout too). On CPU
    devices this process's allocator is tuned too (scaling/host_memory.py)."""
    platform = platform_of(devices)
    if platform == "cpu":  # steps run here: keep their buffers in the heap (host_memory.py)
        tune_malloc()
    m = config.model
    attention, attn_dropout, _ = attention_plan(config, platform)
    model = dataclasses.replace(
        m,
        dtype=auto_dtype(platform) if m.dtype == "auto" else m.dtype,
        attention=attention, attn_dropout=attn_dropout,
        scan_unroll=m.scan_unroll or auto_scan_unroll(
            platform, max(m.n_layers, m.n_decoder_layers)),
    )
    return dataclasses.replace(config, model=model)
