"""An offline English->German (or any CLDR pair) parallel corpus, generated from the data
that PyPI packages ship: Babel's CLDR locale data and num2words.

`--data cldr:en-de` builds it once (deterministic for a seed) into the array_record cache.
Each example is a real sentence in both languages, from one of a few dozen sentence
templates translated by hand, whose slots are filled from CLDR: dates in three formats
(German writes "Dienstag, 5. März 2024" for "Tuesday, March 5, 2024"), times (2:30 PM ->
14:30), prices in five currencies (€1,234.50 -> 1.234,50 €), quantities with units,
country, language, weekday and month names, and numbers written out in words, where German
reorders the digits ("twenty-one" -> "einundzwanzig"). Sentences are split into train,
validation and test by a hash of the source, so a test sentence never occurs in training
(its parts do, in other combinations).
"""

from __future__ import annotations

import datetime
import hashlib
import random
import re

from scaling.errors import DataError

SPLIT_PER_MILLE = {"validation": 16, "test": 16}  # the rest is train
DEFAULT_EXAMPLES = 150_000  # drawn before de-duplication
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
UNITS = {  # CLDR unit -> (English frame, German frame) around the quantity
    "length-kilometer": ("The distance is {}.", "Die Entfernung beträgt {}."),
    "length-meter": ("The wall is {} high.", "Die Mauer ist {} hoch."),
    "mass-kilogram": ("The package weighs {}.", "Das Paket wiegt {}."),
    "mass-gram": ("The letter weighs {}.", "Der Brief wiegt {}."),
    "duration-hour": ("The trip takes {}.", "Die Reise dauert {}."),
    "duration-minute": ("The break lasts {}.", "Die Pause dauert {}."),
    "duration-day": ("The course lasts {}.", "Der Kurs dauert {}."),
    "temperature-celsius": ("The temperature is {}.", "Die Temperatur beträgt {}."),
}
# English and German frames with one slot; the slot's kind picks the filler.
FRAMES = {
    "country": [
        ("We are traveling to {}.", "Wir reisen nach {}."),
        ("{} is a beautiful country.", "{} ist ein schönes Land."),
        ("My friend lives in {}.", "Mein Freund wohnt in {}."),
    ],
    "language": [
        ("I speak {}.", "Ich spreche {}."),
        ("She is learning {}.", "Sie lernt {}."),
        ("Do you understand {}?", "Verstehst du {}?"),
    ],
    "weekday": [
        ("Today is {}.", "Heute ist {}."),
        ("The shop is closed on {}.", "Der Laden ist am {} geschlossen."),
    ],
    "month": [
        ("My birthday is in {}.", "Mein Geburtstag ist im {}."),
        ("It often rains in {}.", "Im {} regnet es oft."),
    ],
    "date": [
        ("The meeting is on {}.", "Das Treffen ist am {}."),
        ("The letter was written on {}.", "Der Brief wurde am {} geschrieben."),
        ("{}", "{}"),
    ],
    "time": [
        ("The train leaves at {}.", "Der Zug fährt um {} ab."),
        ("We eat at {}.", "Wir essen um {}."),
    ],
    "price": [
        ("The price is {}.", "Der Preis beträgt {}."),
        ("The ticket costs {}.", "Die Fahrkarte kostet {}."),
    ],
    "number": [
        ("{}", "{}"),
        ("The answer is {}.", "Die Antwort ist {}."),
    ],
}


def parse_pair(arg: str) -> tuple[str, str]:
    """'en-de' -> ('en', 'de'); DataError for anything else."""
    parts = arg.split("-")
    if len(parts) != 2 or not all(re.fullmatch(r"[a-z]{2,3}", p) for p in parts):
        raise DataError(f"--data cldr:{arg}: expected a language pair such as cldr:en-de")
    return parts[0], parts[1]


class Generator:
    """Sentence pairs for languages (src, tgt); `example(rng)` draws one."""

    def __init__(self, src: str, tgt: str):
        if (src, tgt) != ("en", "de"):
            raise DataError(f"--data cldr:{src}-{tgt}: the sentence templates exist for en-de "
                            f"only; use cldr:en-de, or tsv:/jsonl: files for other pairs")
        from babel import Locale  # lazy: only corpus building needs Babel

        self.src, self.tgt = src, tgt
        self.loc = {lang: Locale.parse(lang) for lang in (src, tgt)}
        self.countries = self._names("territories", lambda k: k.isalpha() and len(k) == 2)
        self.languages = self._names("languages", lambda k: k.isalpha() and len(k) == 2)

    def _names(self, attr: str, keep) -> list[tuple[str, str]]:
        """(src name, tgt name) of CLDR's `attr`, simple names only (no parentheses)."""
        a, b = getattr(self.loc[self.src], attr), getattr(self.loc[self.tgt], attr)
        pairs = [(a[k], b[k]) for k in sorted(a) if k in b and keep(k)]
        return [(x, y) for x, y in pairs if "(" not in x + y and "," not in x + y]

    def _words(self, n: int, lang: str) -> str:
        from num2words import num2words

        return num2words(n, lang=lang)

    def fill(self, kind: str, rng: random.Random) -> tuple[str, str]:
        """One slot value in both languages."""
        from babel.dates import format_date, format_time
        from babel.numbers import format_currency

        s, t = self.src, self.tgt
        if kind in ("country", "language"):
            return rng.choice(self.countries if kind == "country" else self.languages)
        if kind == "weekday":
            i = rng.randrange(7)
            return tuple(self.loc[x].days["format"]["wide"][i] for x in (s, t))
        if kind == "month":
            i = rng.randrange(1, 13)
            return tuple(self.loc[x].months["format"]["wide"][i] for x in (s, t))
        if kind == "date":
            day = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73_000))
            style = rng.choice(("full", "long", "medium"))
            return tuple(format_date(day, style, locale=x) for x in (s, t))
        if kind == "time":
            at = datetime.time(rng.randrange(24), rng.choice((0, 5, 15, 30, 45, 50)))
            return tuple(format_time(at, "short", locale=x).replace("\u202f", " ")
                         for x in (s, t))
        if kind == "price":
            cents = rng.random() < 0.7
            amount = round(rng.uniform(0.5, 5000), 2) if cents else rng.randrange(1, 500)
            code = rng.choice(CURRENCIES)
            return tuple(format_currency(amount, code, locale=x).replace("\xa0", " ")
                         for x in (s, t))
        if kind == "number":
            n = rng.randrange(1000) if rng.random() < 0.8 else rng.randrange(1000, 100_000)
            return self._words(n, s), self._words(n, t)
        raise ValueError(kind)

    def quantity(self, rng: random.Random) -> tuple[str, str]:
        """A unit sentence; the quantity in digits, or in words for small numbers."""
        from babel.units import format_unit

        unit = rng.choice(sorted(UNITS))
        n = rng.randrange(1, 100) if rng.random() < 0.7 else rng.randrange(100, 10_000)
        words = n < 100 and rng.random() < 0.5
        out = []
        for lang, frame in zip((self.src, self.tgt), UNITS[unit], strict=True):
            text = format_unit(n, unit, length="long", locale=lang).replace("\xa0", " ")
            if words:
                digits = format_unit(n, unit, length="long", locale=lang).split(" ")[0]
                text = text.replace(digits.replace("\xa0", " "), self._words(n, lang), 1)
            out.append(frame.format(text))
        return out[0], out[1]

    def arithmetic(self, rng: random.Random) -> tuple[str, str]:
        a, b = rng.randrange(20), rng.randrange(20)
        sw, tw = (lambda n: self._words(n, self.src)), (lambda n: self._words(n, self.tgt))
        return (f"{sw(a)} plus {sw(b)} is {sw(a + b)}.",
                f"{tw(a)} plus {tw(b)} ist {tw(a + b)}.")

    def example(self, rng: random.Random) -> tuple[str, str]:
        r = rng.random()
        if r < 0.15:
            return self.quantity(rng)
        if r < 0.2:
            return self.arithmetic(rng)
        if r < 0.27:  # two slots: countries that are neighbours
            (a, x), (b, y) = self.fill("country", rng), self.fill("country", rng)
            return f"{a} and {b} are neighbours.", f"{x} und {y} sind Nachbarn."
        kind = rng.choice(sorted(FRAMES))
        src_frame, tgt_frame = rng.choice(FRAMES[kind])
        a, b = self.fill(kind, rng)
        src, tgt = src_frame.format(a), tgt_frame.format(b)
        return src[:1].upper() + src[1:], tgt[:1].upper() + tgt[1:]


def split_of(source: str) -> str:
    """train, validation or test, by a hash of the source sentence."""
    h = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 1000
    if h < SPLIT_PER_MILLE["test"]:
        return "test"
    if h < SPLIT_PER_MILLE["test"] + SPLIT_PER_MILLE["validation"]:
        return "validation"
    return "train"


def generate_pairs(src: str, tgt: str, seed: int = 0,
                   n: int = DEFAULT_EXAMPLES) -> dict[str, list[tuple[str, str]]]:
    """split -> [(source, target)], de-duplicated by source, in generation order."""
    gen, rng = Generator(src, tgt), random.Random(seed)
    seen, out = set(), {"train": [], "validation": [], "test": []}
    for _ in range(n):
        a, b = gen.example(rng)
        if a in seen:
            continue
        seen.add(a)
        out[split_of(a)].append((a, b))
    return out
