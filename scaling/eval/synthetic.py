"""Built-in tasks generated deterministically from a seed (no download), as generate tasks
scored by exact match, greedy to the end of the line.

- GPT-3 §3.9.1 arithmetic: `2D+` ... `5D+`, `2D-` ... `5D-` (operands drawn uniformly from
  [0, 10^n)), `2Dx` (2-digit multiplication), `1DC` (three 1-digit numbers, composite
  operation, parentheses around the last two): "Q: What is 48 plus 76? A: 124".
- GPT-3 §3.9.2 word scrambling of words of 5..14 letters: `CL` cycled letters, `A1` anagram
  of all but the first and last letter, `A2` all but the first two and last two, `RI` a
  random punctuation or space character between letters, `RW` reversed word.
- in-context tasks a small model can show: `copy` (repeat a random letter sequence) and
  `kv_recall` (the value of one key of a list of key=value pairs).
"""

from __future__ import annotations

import random
import string

from scaling.eval.task_names import ARITHMETIC, SCRAMBLE_NAMES, TASKS  # noqa: F401  (public here)
from scaling.eval.tasks import Example, Task, TaskSpec

_OPS = {"+": ("plus", lambda a, b: a + b), "-": ("minus", lambda a, b: a - b),
        "x": ("times", lambda a, b: a * b)}
_WORDS = (
    "ability absolute academic accepted accident account achieve acquire actually addition "
    "address advanced adventure advertise afternoon agreement aircraft alliance although "
    "analysis ancient animal announce another anything apparent approach argument article "
    "assembly attention audience autumn balance bargain battery beautiful because bedroom "
    "behaviour believe benefit birthday blanket borrow boundary bracket breakfast brother "
    "building business calendar campaign capacity captain careful category celebrate central "
    "certain chairman challenge champion channel chapter character chemical children chicken "
    "circle climate clothing collect college comfort command comment common company compare "
    "complete computer concert condition confirm connect consider contain content continue "
    "control corner country courage creature culture current customer daughter decision "
    "deliver density deposit describe desert design destroy develop diamond digital dinner "
    "direction discover distance document domestic dramatic economy education effective "
    "election element elephant emotion empire employee energy engine enormous entrance "
    "episode equipment evening evidence exactly example exchange exercise expensive "
    "experience explain express factory failure familiar fashion feature festival fiction "
    "finger flavour foreign forever fortune forward freedom friendly function furniture "
    "garden general gentle giant glass government gradual grammar grateful guitar handle "
    "happen harbour harvest heaven history holiday horizon hospital however husband "
    "imagine important improve include increase industry inevitably infinite inside "
    "instance interest internal invisible island journey justice kitchen knowledge language "
    "laughter leather liberty library lightning literature machine magazine maintain "
    "manager marriage material measure medicine memory message method middle million "
    "minister minute mission mistake moment monster morning mountain museum mystery "
    "natural neighbour network normal nothing notice number objects obvious occasion "
    "october officer opinion opponent orange organise original outside package painting "
    "parallel parent partner passenger pattern peaceful people perfect perhaps period "
    "permanent person picture planet plastic pleasure pocket poetry political position "
    "possible potato powerful practice prepare present pressure pretty printer private "
    "problem produce product program project promise property protect provide purpose "
    "quality quarter question quickly rainbow reading reality reason receive record "
    "reflect region remember report require research resource response result return "
    "river science season second secret section sentence service shadow silence simple "
    "sister society soldier special station stomach strange student subject succession "
    "summer support surface system teacher theatre thousand through tomorrow totally "
    "traffic transport treasure triangle trouble umbrella uniform universe unusual valley "
    "vegetable version village violin visitor weather welcome western window winter "
    "without wonderful wooden yesterday").split()
_UNSCRAMBLE = "Please unscramble the letters into a word, and write that word:\n"


def _spec() -> TaskSpec:
    return TaskSpec(kind="generate", separator="\n\n", target_delimiter=" ", stop=("\n",),
                    max_new_tokens=8)


def arithmetic_example(name: str, rng: random.Random) -> Example:
    """One GPT-3 §3.9.1 question for a task name such as `3D-`, `2Dx` or `1DC`."""
    if name == "1DC":
        a, b, c = (rng.randrange(10) for _ in range(3))
        o1, o2 = rng.choice("+-*"), rng.choice("+-*")
        expr = f"{a}{o1}({b}{o2}{c})"
        value = eval(expr)  # noqa: S307  (digits and +-* only, built just above)
        return Example(f"Q: What is {expr}? A:", (str(value),), 0)
    digits, op = int(name[0]), name[2]
    a, b = rng.randrange(10 ** digits), rng.randrange(10 ** digits)
    word, fn = _OPS[op]
    return Example(f"Q: What is {a} {word} {b}? A:", (str(fn(a, b)),), 0)


def _cycle(w, rng):
    k = rng.randrange(1, len(w))
    return w[k:] + w[:k]


def _anagram(w, rng, keep):
    inner = list(w[keep:-keep])
    for _ in range(10):  # a different order when there is one
        rng.shuffle(inner)
        if "".join(inner) != w[keep:-keep]:
            break
    return w[:keep] + "".join(inner) + w[-keep:]


def _insert(w, rng):
    marks = string.punctuation + " "
    return "".join(ch + rng.choice(marks) for ch in w[:-1]) + w[-1]


SCRAMBLES = {"CL": _cycle, "A1": lambda w, r: _anagram(w, r, 1),
             "A2": lambda w, r: _anagram(w, r, 2), "RI": _insert, "RW": lambda w, r: w[::-1]}


def scramble_example(name: str, rng: random.Random) -> Example:
    word = rng.choice([w for w in _WORDS if 4 < len(w) < 15])
    return Example(f"{_UNSCRAMBLE}{SCRAMBLES[name](word, rng)} =", (word,), 0)


def copy_example(rng: random.Random, n: int = 5) -> Example:
    seq = " ".join(rng.choice(string.ascii_lowercase) for _ in range(n))
    return Example(f"Copy: {seq} ->", (seq,), 0)


def kv_recall_example(rng: random.Random, n: int = 4) -> Example:
    keys = rng.sample(string.ascii_lowercase, n)
    values = [str(rng.randrange(10)) for _ in keys]
    pairs = " ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    i = rng.randrange(n)
    return Example(f"{pairs}. {keys[i]}?", (values[i],), 0)


assert set(SCRAMBLES) == set(SCRAMBLE_NAMES)


def synthetic_task(name: str, n: int, seed: int) -> Task:
    """`n` scored examples and `n` demonstrations (the train split) of a built-in task; the
    two splits come from different seeds."""
    def make(rng):
        if name in ARITHMETIC:
            return arithmetic_example(name, rng)
        if name in SCRAMBLES:
            return scramble_example(name, rng)
        return copy_example(rng) if name == "copy" else kv_recall_example(rng)

    test, train = random.Random(f"{name}/test/{seed}"), random.Random(f"{name}/train/{seed}")
    return Task(name, tuple(make(test) for _ in range(n)), tuple(make(train) for _ in range(n)),
                _spec())

