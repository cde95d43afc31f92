"""Evaluation tasks in GPT-3's four formats (§2.4), each a small declarative `TaskSpec` plus
examples, so users add tasks without code:

- multiple_choice: {"context", "choices", "answer"}; every choice scored by log-likelihood;
- cloze: {"context", "target"}; the target word (LAMBADA) must be the greedy continuation;
- generate: {"context", "answers"} (or "target"); greedy text to a stop sequence, exact
  match and token F1 against the answers;
- rolling: {"text"}; log-likelihood of whole documents, bits per byte (GPT-2 §3).

Tasks come from local files (`jsonl:PATH`: the format read off the keys; `yaml:PATH`: a spec
naming its JSONL test and train files), from built-in generators (scaling/eval/synthetic.py)
or from the run's own validation text, so evaluation needs no download:

- `next_line`: the first lines of a validation document as context; the true next line among
  three lines drawn from other documents (a HellaSwag-style continuation choice).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from scaling.bounds import MAX_NEW_TOKENS
from scaling.errors import UserError
from scaling.jsonl import jsonl_objects

KINDS = ("multiple_choice", "cloze", "generate", "rolling")


@dataclass(frozen=True)
class Example:
    """`choices[answer]` completes a demonstration: the right choice, the cloze target, the
    first acceptable answer; a rolling document has its text as context and no choices."""

    context: str
    choices: tuple[str, ...] = ()
    answer: int = 0


@dataclass(frozen=True)
class TaskSpec:
    """How a task is prompted and scored (the YAML keys of a task file)."""

    kind: str = "multiple_choice"
    separator: str = "\n\n"  # between demonstrations
    target_delimiter: str = ""  # between a context and its answer, e.g. " "
    unconditional_context: str = "Answer:"  # GPT-3 §2.4's normalization context
    stop: tuple[str, ...] = ("\n",)  # generate: the answer ends at the first of these
    max_new_tokens: int = 16  # generate
    blank: bool = False  # cloze: GPT-3's fill-in-the-blank format ("... ____. -> word")


@dataclass(frozen=True)
class Task:
    """`examples` are scored; `demos` are the pool few-shot demonstrations are drawn from."""

    name: str
    examples: tuple[Example, ...]
    demos: tuple[Example, ...]
    spec: TaskSpec = TaskSpec()


def kind_of(obj) -> str:
    """The format a JSONL object is written in, read off its keys."""
    keys = set(obj) if isinstance(obj, dict) else set()
    for kind, key in (("multiple_choice", "choices"), ("generate", "answers"),
                      ("cloze", "target"), ("rolling", "text")):
        if key in keys:
            return kind
    return "multiple_choice"


def _example(obj, where: str, kind: str = "multiple_choice") -> Example:
    if kind != "multiple_choice":
        return _other_example(obj, where, kind)
    try:
        context, choices, answer = obj["context"], obj["choices"], obj["answer"]
    except (KeyError, TypeError):
        raise UserError(f"{where}: expected an object with context, choices and answer") from None
    if not (isinstance(context, str) and isinstance(choices, list) and len(choices) >= 2
            and all(isinstance(c, str) and c for c in choices)):
        raise UserError(f"{where}: context must be text and choices a list of 2 or more "
                        f"non-empty strings")
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise UserError(f"{where}: answer must be the index of the right choice "
                        f"(0..{len(choices) - 1}), got {answer!r}")
    return Example(context, tuple(choices), answer)


def _other_example(obj, where: str, kind: str) -> Example:
    """cloze {"context", "target"}, generate {"context", "answers" | "target"}, rolling
    {"text"}."""
    obj = obj if isinstance(obj, dict) else {}
    if kind == "rolling":
        if not isinstance(obj.get("text"), str) or not obj["text"]:
            raise UserError(f"{where}: a rolling task needs {{\"text\": non-empty text}}")
        return Example(obj["text"])
    answers = obj.get("answers", [obj["target"]] if "target" in obj else None)
    if not (isinstance(obj.get("context"), str) and isinstance(answers, list) and answers
            and all(isinstance(a, str) and a for a in answers)):
        need = "target" if kind == "cloze" else "answers (a list) or target"
        raise UserError(f"{where}: a {kind} task needs context (text) and {need} "
                        f"(non-empty text)")
    return Example(obj["context"], tuple(answers), 0)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"task file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"task file {path} is a directory; name a .jsonl or .yaml file "
                        f"in it") from None
    except UnicodeDecodeError:
        raise UserError(f"task file {path} is not UTF-8 text; re-encode it as UTF-8") from None


def read_examples(path: str, kind: str | None = None) -> tuple[list[Example], str]:
    """The examples of a JSONL file and their format (`kind`, else read off the keys)."""
    text = _read_text(path)
    objs = list(jsonl_objects(text, lambda n: f"{path}:{n}", UserError))
    kind = kind or (kind_of(objs[0][1]) if objs else "multiple_choice")
    return [_example(obj, f"{path}:{n}", kind) for n, obj in objs], kind


def jsonl_task(path: str, n_demos: int = 16, spec: TaskSpec | None = None) -> Task:
    """A task file: the first `n_demos` lines serve as demonstrations when there are enough
    examples left to score, otherwise demonstrations come from the other examples."""
    examples, kind = read_examples(path, spec.kind if spec else None)
    if len(examples) < 2:
        raise UserError(f"task file {path} needs at least 2 examples, found {len(examples)}")
    k = n_demos if len(examples) > 2 * n_demos else 0
    return Task(f"jsonl:{path}", tuple(examples[k:]), tuple(examples[:k] or examples),
                spec or TaskSpec(kind))


def yaml_task(path: str) -> Task:
    """A YAML task description: `test` (and optional `train`, the demonstrations) name JSONL
    files relative to it; the other keys are `TaskSpec` fields; `name` names the task."""
    import yaml

    try:
        desc = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as e:
        raise UserError(f"task file {path} is not valid YAML ({str(e).splitlines()[0]})") \
            from None
    fields = set(TaskSpec.__dataclass_fields__)
    if not isinstance(desc, dict) or "test" not in desc:
        raise UserError(f"task file {path}: expected a mapping with at least `test: FILE.jsonl`")
    unknown = set(desc) - fields - {"name", "test", "train"}
    if unknown:
        raise UserError(f"task file {path}: unknown keys {sorted(unknown)}; known: name, test, "
                        f"train, {', '.join(sorted(fields))}")
    _check_types(desc, path)
    if desc.get("kind", "multiple_choice") not in KINDS:
        raise UserError(f"task file {path}: kind {desc['kind']!r} is not one of {KINDS}")
    opts = {k: v for k, v in desc.items() if k in fields}
    if "stop" in opts:
        opts["stop"] = tuple(opts["stop"] if isinstance(opts["stop"], list) else [opts["stop"]])
    spec = TaskSpec(**opts)
    where = os.path.dirname(os.path.abspath(path))
    name = str(desc.get("name", os.path.splitext(os.path.basename(path))[0]))
    if "train" not in desc:
        task = jsonl_task(os.path.join(where, desc["test"]), spec=spec)
        return Task(name, task.examples, task.demos, spec)
    test, _ = read_examples(os.path.join(where, desc["test"]), spec.kind)
    train, _ = read_examples(os.path.join(where, desc["train"]), spec.kind)
    return Task(name, tuple(test), tuple(train), spec)


TEXT_KEYS = ("name", "test", "train", "kind", "separator", "target_delimiter",
             "unconditional_context")


def _check_types(desc: dict, path: str) -> None:
    """Each key of a YAML task file has the type its field needs (YAML reads `1`, `[a]`,
    `~`, `.inf` and `yes` as numbers, lists, null and booleans)."""
    def bad(key, want):
        raise UserError(f"task file {path}: {key}: {desc[key]!r} is not {want}")

    for key in TEXT_KEYS:
        if key in desc and not isinstance(desc[key], str):
            bad(key, "text (quote it)")
    stop = desc.get("stop", [])
    if "stop" in desc and not (isinstance(stop, str) or (
            isinstance(stop, list) and all(isinstance(x, str) and x for x in stop))):
        bad("stop", "text or a list of non-empty texts")
    n = desc.get("max_new_tokens", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS:
        bad("max_new_tokens", f"a whole number from 1 to {MAX_NEW_TOKENS}")
    if "blank" in desc and not isinstance(desc["blank"], bool):
        bad("blank", "true or false")


def next_line_task(documents: list[str], n: int, seed: int, context_lines: int = 4) -> Task:
    """Context = `context_lines` consecutive lines of a document, answer = the line after them,
    distractors = three lines from other documents; choice order shuffled by `seed`."""
    rng = random.Random(seed)
    docs = [[ln for ln in d.splitlines() if ln.strip()] for d in documents]
    docs = [d for d in docs if len(d) > context_lines]
    if len(docs) < 4:
        raise UserError("next_line needs at least 4 validation documents with more than "
                        f"{context_lines} non-empty lines; use a larger corpus")
    examples = []
    for _ in range(2 * n):  # half scored, half demonstrations
        i = rng.randrange(len(docs))
        start = rng.randrange(len(docs[i]) - context_lines)
        context = "\n".join(docs[i][start:start + context_lines]) + "\n"
        right = docs[i][start + context_lines]
        others = [rng.choice(docs[j]) for j in rng.sample(
            [j for j in range(len(docs)) if j != i], 3)]
        choices = [right, *others]
        rng.shuffle(choices)
        examples.append(Example(context, tuple(choices), choices.index(right)))
    return Task("next_line", tuple(examples[:n]), tuple(examples[n:]))


def few_shot_prompt(task: Task, example: Example, shots: int, rng: random.Random) -> str:
    """GPT-3 §2.4: `shots` demonstrations (context + right answer) drawn from the task's
    pool, separated by blank lines, then the example's context."""
    pool = [d for d in task.demos if d != example]
    demos = rng.sample(pool, min(shots, len(pool)))
    parts = [d.context + d.choices[d.answer] for d in demos]
    return "\n\n".join([*parts, example.context]) if parts else example.context

