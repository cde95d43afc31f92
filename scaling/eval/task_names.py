"""Names of the built-in evaluation tasks (scaling/eval/synthetic.py) and the parser of
`train.eval_tasks`, here without dependencies so that a command checks them (through the
evaluator registry, scaling/eval/registry.py) before anything heavy is imported."""

from __future__ import annotations

ARITHMETIC = [f"{d}D{op}" for op in "+-" for d in range(2, 6)] + ["2Dx", "1DC"]
SCRAMBLE_NAMES = ["CL", "A1", "A2", "RI", "RW"]
TASKS = ARITHMETIC + SCRAMBLE_NAMES + ["copy", "kv_recall"]


def parse_eval_tasks(text: str) -> list[tuple[str, int]]:
    """`train.eval_tasks`, "NAME[@SHOTS],...", as (name, shots) pairs; a ConfigError names an
    unknown task or a bad shot count."""
    from scaling.config import ConfigError

    out = []
    for item in (x.strip() for x in text.split(",") if x.strip()):
        name, _, k = item.partition("@")
        known = name == "next_line" or name in TASKS or name.startswith(("jsonl:", "yaml:"))
        if not known or (k and not k.isdigit()):
            raise ConfigError(f"train.eval_tasks: {item!r} is not NAME[@SHOTS] with NAME one of "
                              f"next_line, jsonl:PATH, yaml:PATH, {', '.join(TASKS)}")
        out.append((name, int(k or 0)))
    return out
