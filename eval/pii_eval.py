# ruff: noqa: E501  (the template tables below read best one per line)
"""Precision and recall of the personal-data detector (``hybrid_router.pii``) on a labelled set.

    ./hr python -m eval.pii_eval [--data ../shared/data] [--dtype q8|fp32|none] [--seed 0]

Two parts, each labelled with character spans:

1. **patterns**: sentences written for this script with realistic synthetic values slotted in (e-mail
   addresses, phone numbers in 14 national and international formats, Luhn-valid card numbers of 5
   issuers, mod-97-valid IBANs of 9 countries, IPv4 and IPv6 addresses), and **hard negatives**: the
   same kind of sentences with dates, prices, order / invoice / tracking numbers, version strings, ISBNs,
   times, MAC addresses, Luhn-failing 16-digit numbers, IBANs with a wrong check, years and big numbers,
   none of them personal data; some templates carry a person's name (for the NER part of the detector);
2. **names**: the WNUT-17 test set (tweets and forum text, CC-BY-4.0), gold ``person`` -> PERSON,
   ``location`` -> LOCATION, ``corporation`` and ``group`` -> ORG, run through the project's trained NER
   model (``minilm-l6-conll03-ner``, onnxruntime, the browser's q8 by default) as the worker does
   (every word piece, ``entities.group_entities``), merged with the patterns by ``pii.detect``.

A finding is correct when kind, start and end equal a gold span's ("exact"); "overlap" counts one that
overlaps a gold span of its kind. Also per text: does it contain any personal data (what the
``sensitive: "local"`` policy needs). Without the NER model (``--dtype none``, or not built) the names part
is skipped.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "py_src"), str(ROOT)]

from hybrid_router import pii  # noqa: E402
from hybrid_router.entities import group_entities  # noqa: E402
from hybrid_router.pii import Finding  # noqa: E402

Span = tuple[str, int, int]  # kind, start, end


@dataclass
class Example:
    text: str
    gold: list[Span] = field(default_factory=list)
    part: str = "patterns"


# --- synthetic values -----------------------------------------------------------------------------------

FIRST = ["anna", "james", "li", "fatima", "lukas", "maria", "olu", "sofia", "raj", "chen", "emma", "noah",
         "zoe", "mateo", "ines", "yuki", "omar", "clara"]  # fmt: skip
LAST = ["smith", "berg", "nguyen", "okafor", "muller", "garcia", "kowalski", "rossi", "khan", "dubois",
        "tanaka", "silva", "jensen", "haddad"]  # fmt: skip
DOMAINS = [
    "example.com",
    "mail.example.org",
    "company.co.uk",
    "uni-example.edu",
    "example.de",
    "post.example.net",
]
NAMES = ["Anna Berg", "James O'Connor", "Fatima Haddad", "Lukas Müller", "Maria Garcia", "Chen Wei",
         "Oluwaseun Okafor", "Sofia Rossi", "Raj Patel", "Emma Dubois", "Yuki Tanaka", "Mateo Silva"]  # fmt: skip


def _d(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice([f"{f}.{last}", f"{f[0]}{last}", f"{f}_{last}{rng.randint(1, 99)}", f"{f}+news",
                        f"{last}.{f}", f"{f}{rng.randint(1970, 2005)}"])  # fmt: skip
    return f"{local}@{rng.choice(DOMAINS)}"


PHONE_FORMATS: list[Callable[[random.Random], str]] = [
    lambda r: f"+44 20 {_d(r, 4)} {_d(r, 4)}",
    lambda r: f"+44 7700 {_d(r, 6)}",
    lambda r: f"+1-{r.randint(201, 989)}-555-{_d(r, 4)}",
    lambda r: f"+1 ({r.randint(201, 989)}) 555-{_d(r, 4)}",
    lambda r: f"+49 (0)30 {_d(r, 7)}",
    lambda r: f"+49 151 {_d(r, 8)}",
    lambda r: f"0049 89 {_d(r, 7)}",
    lambda r: f"0151 {_d(r, 8)}",
    lambda r: f"030 {_d(r, 8)}",
    lambda r: f"07700 {_d(r, 6)}",
    lambda r: f"0{r.randint(1, 9)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}",
    lambda r: f"+33 6 {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}",
    lambda r: f"({r.randint(201, 989)}) {r.randint(200, 999)}-{_d(r, 4)}",
    lambda r: f"{r.randint(201, 989)}-{r.randint(200, 999)}-{_d(r, 4)}",
]


def _luhn_complete(body: str) -> str:
    return next(body + d for d in string.digits if pii.luhn_valid(body + d))


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                                 ("6011", 16), ("3530", 16)])  # fmt: skip
    number = _luhn_complete(prefix + _d(rng, length - len(prefix) - 1))
    if length == 15:
        return rng.choice([number, f"{number[:4]} {number[4:10]} {number[10:]}"])
    sep = rng.choice(["", " ", "-"])
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


def _alnum(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(n))


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))


BBAN: dict[str, Callable[[random.Random], str]] = {
    "DE": lambda r: _d(r, 18),
    "GB": lambda r: _letters(r, 4) + _d(r, 14),
    "FR": lambda r: _d(r, 10) + _alnum(r, 11) + _d(r, 2),
    "NL": lambda r: _letters(r, 4) + _d(r, 10),
    "ES": lambda r: _d(r, 20),
    "IT": lambda r: _letters(r, 1) + _d(r, 10) + _alnum(r, 12),
    "CH": lambda r: _d(r, 5) + _alnum(r, 12),
    "AT": lambda r: _d(r, 16),
    "BE": lambda r: _d(r, 12),
}


def iban(rng: random.Random, *, valid: bool = True) -> str:
    country = rng.choice(sorted(BBAN))
    bban = BBAN[country](rng)
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    if not valid:
        check = (check + rng.randint(1, 96)) % 97 or 2
    compact = f"{country}{check:02d}{bban}"
    return rng.choice([compact, " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))])


def ip(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind == 1:
        return ".".join(str(rng.randint(1, 223)) for _ in range(4))
    if kind == 2:
        return ":".join(f"{rng.randint(0, 65535):x}" for _ in range(8))
    return f"2001:db8::{rng.randint(1, 65535):x}:{rng.randint(1, 65535):x}"


VALUES: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": email,
    "PHONE": lambda r: r.choice(PHONE_FORMATS)(r),
    "CARD": card,
    "IBAN": iban,
    "IP": ip,
    "PERSON": lambda r: r.choice(NAMES),
}

TEMPLATES = [
    "Please send the signed contract to {EMAIL} before Friday.",
    "My e-mail is {EMAIL}, write me if anything changes.",
    "Forward this thread to {EMAIL} and {EMAIL} please.",
    "Hi, this is {PERSON}. You can reach me at {EMAIL}.",
    "My phone number is {PHONE}, call after 5pm.",
    "Our office line is {PHONE} (Monday to Friday, 9-17).",
    "Text me on {PHONE} when you land at 14:30.",
    "{PERSON} asked me to call her back on {PHONE} about order #48213.",
    "Charge it to my card {CARD}, expiry 09/27.",
    "The card ending in the number {CARD} was declined twice yesterday.",
    "Refund the $49.99 to {CARD} please.",
    "Transfer 250 EUR to {IBAN}, reference INV-2024-117.",
    "My IBAN is {IBAN} (account holder {PERSON}).",
    "Rent goes to {IBAN} on the 1st of every month.",
    "The server at {IP} keeps timing out on port 8443.",
    "Block {IP} in the firewall, it sent 12000 requests in 5 minutes.",
    "SSH into {IP} and restart nginx 1.24.0.",
    "Write a polite reply to {PERSON} ({EMAIL}) declining the meeting on 2024-03-12.",
    "Summarize this: {PERSON} called from {PHONE} about invoice 2024-0098 for 1,250.00 EUR.",
    "Draft a letter: pay 89.90 EUR to {IBAN} by 15.04.2025, questions to {EMAIL}.",
]

NEGATIVES: list[Callable[[random.Random], str]] = [
    lambda r: f"The meeting moved to {r.randint(1, 28):02d}.{r.randint(1, 12):02d}.{r.randint(2020, 2026)} at {r.randint(8, 18)}:{r.choice(['00', '15', '30', '45'])}.",
    lambda r: f"Between {r.randint(1950, 1990)} and {r.randint(1991, 2024)} the town grew to {r.randint(10, 900)} {_d(r, 3)} people.",
    lambda r: f"It costs ${r.randint(1, 9)},{_d(r, 3)}.{_d(r, 2)} or {r.randint(1, 9)} {_d(r, 3)} {_d(r, 3)} EUR in total.",
    lambda r: f"Order #{_d(r, r.randint(8, 12))} shipped on {r.randint(2020, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.",
    lambda r: f"Invoice no. {_d(r, 10)} is overdue; the amount is {r.randint(100, 9999)}.{_d(r, 2)} USD.",
    lambda r: f"Tracking number {_d(r, 12)} shows the parcel in the depot.",
    lambda r: f"Upgrade from version {r.randint(1, 12)}.{r.randint(0, 20)}.{r.randint(0, 99)} to v{r.randint(1, 12)}.{r.randint(0, 9)}.{_d(r, 5)}.",
    lambda r: f"ISBN 978-{r.randint(0, 9)}-{_d(r, 2)}-{_d(r, 6)}-{r.randint(0, 9)} is out of print.",
    lambda r: f"The device MAC is {':'.join(_alnum(r, 2).replace('O', 'A') for _ in range(6))} and it runs at 10:30:45.",
    lambda r: f"This 16-digit number fails Luhn: {_bad_luhn(r)}.",
    lambda r: f"Typo in the account: {iban(r, valid=False)}.",
    lambda r: f"Release {r.randint(1, 5)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)} fixed {r.randint(2, 80)} bugs.",
    lambda r: f"Our zip code is {_d(r, 5)} and the room is {r.randint(100, 999)}.",
    lambda r: f"Multiply {_d(r, 7)} by {_d(r, 4)} and round to 3.{_d(r, 5)}.",
    lambda r: f"Population: {r.randint(1, 99)} {_d(r, 3)} {_d(r, 3)} in {r.randint(1990, 2024)}.",
    lambda r: f"Use std::vector<int> and a::b::c, then print {r.randint(2, 9)}:{r.randint(10, 59)}:{r.randint(10, 59)}.",
    lambda r: f"Install lodash@{r.randint(1, 4)}.{r.randint(0, 17)}.{r.randint(0, 21)} and ping @{r.choice(FIRST)} on chat.",
    lambda r: f"Customer ID {_d(r, 9)}, ticket {r.randint(10000, 99999)}, case 0{_d(r, 9)}.",
    lambda r: f"The temperature was {r.randint(-20, 40)}.{r.randint(0, 9)} degrees on {r.randint(1, 12)}/{r.randint(1, 28)}/{r.randint(2000, 2024)}.",
    lambda r: f"Coordinates {r.randint(10, 60)}.{_d(r, 6)}, {r.randint(1, 30)}.{_d(r, 6)} mark the spot.",
]  # fmt: skip


# A second set, written after the patterns were final and run once: formats, templates and negatives the
# patterns were not developed against (its figures are the ones to trust; the first set is a regression
# check that the patterns were written alongside).
HELDOUT_PHONES: list[Callable[[random.Random], str]] = [
    lambda r: f"+34 6{_d(r, 2)} {_d(r, 3)} {_d(r, 3)}",
    lambda r: f"+91 98{_d(r, 3)} {_d(r, 5)}",
    lambda r: f"(02) {_d(r, 4)} {_d(r, 4)}",
    lambda r: f"03-{_d(r, 4)}-{_d(r, 4)}",
    lambda r: f"0800 {_d(r, 3)} {_d(r, 4)}",
    lambda r: f"1-800-555-{_d(r, 4)}",
    lambda r: f"06-{_d(r, 8)}",
    lambda r: f"+61 4{_d(r, 2)} {_d(r, 3)} {_d(r, 3)}",
    lambda r: f"+39 06 {_d(r, 4)} {_d(r, 4)}",
    lambda r: f"+81 90-{_d(r, 4)}-{_d(r, 4)}",
]


def heldout_card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 19), ("3528", 16), ("36", 14), ("65", 16), ("62", 16)])
    number = _luhn_complete(prefix + _d(rng, length - len(prefix) - 1))
    return number if length != 16 else " ".join(number[i : i + 4] for i in range(0, 16, 4))


def heldout_iban(rng: random.Random) -> str:
    country = rng.choice(["PL", "SE", "NO", "DK", "PT", "IE", "LU", "FI"])
    bban = (_letters(rng, 4) + _d(rng, 14)) if country == "IE" else _d(rng, pii.IBAN_LENGTHS[country] - 4)
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    compact = f"{country}{check:02d}{bban}"
    return rng.choice([compact, " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))])


def heldout_email(rng: random.Random) -> str:
    f, last = rng.choice(FIRST), rng.choice(LAST)
    return rng.choice([f"{f.title()}.{last.title()}@Example.COM", f"{f}-{last}@dept.uni.example.ac.uk",
                       f"{f}.{last}@example.io", f"info@{last}-consulting.example"])  # fmt: skip


def heldout_ip(rng: random.Random) -> str:
    return rng.choice([f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"fe80::{rng.randint(1, 65535):x}:{rng.randint(1, 65535):x}",
                       f"2a02:{rng.randint(1, 65535):x}:{rng.randint(1, 65535):x}::{rng.randint(1, 255)}"])  # fmt: skip


HELDOUT_VALUES: dict[str, Callable[[random.Random], str]] = {
    "EMAIL": heldout_email,
    "PHONE": lambda r: r.choice(HELDOUT_PHONES)(r),
    "CARD": heldout_card,
    "IBAN": heldout_iban,
    "IP": heldout_ip,
    "PERSON": lambda r: r.choice(
        [
            "Priya Sharma",
            "Tom Becker",
            "Aisha Bello",
            "Jean-Luc Martin",
            "Ewa Nowak",
            "Diego Alvarez",
            "Hannah Schmidt",
            "Kenji Sato",
        ]
    ),  # fmt: skip
}
HELDOUT_TEMPLATES = [
    "Can you proofread this e-mail before I send it to {EMAIL}? Thanks!",
    "Reply-To: {EMAIL}",
    "Dear {PERSON}, as discussed on the phone ({PHONE}), here are the figures for Q3.",
    "Reservation for 4 at 19:30 under {PERSON}, contact {PHONE}.",
    "Emergency contact: {PERSON}, {PHONE}",
    "Pay with {CARD} and ship to 221B Baker Street.",
    "card: {CARD} cvv 123 exp 11/28",
    "Beneficiary {PERSON}, account {IBAN}, amount 1.200,00 EUR.",
    "Why does curl to {IP} return 403 since the update on 3 May?",
    "Log line: 2024-05-03T10:12:44Z GET /api/v2/users 500 from {IP}",
]
HELDOUT_NEGATIVES: list[Callable[[random.Random], str]] = [
    lambda r: f"Flight LH{r.randint(100, 9999)} leaves {r.randint(1, 28)} May at {r.randint(10, 23)}:{r.randint(10, 59)} from gate B{r.randint(1, 60)}.",
    lambda r: f"The GDP grew by {r.randint(1, 9)}.{r.randint(0, 9)}% to {r.randint(1, 30)} {_d(r, 3)} {_d(r, 3)} {_d(r, 3)} dollars.",
    lambda r: f"Serial number {_alnum(r, 4)}-{_d(r, 6)}-{_d(r, 4)} is out of warranty.",
    lambda r: f"Pip says torch=={r.randint(1, 2)}.{r.randint(0, 9)}.{r.randint(0, 9)} needs numpy>={r.randint(1, 2)}.{r.randint(10, 26)}.{r.randint(0, 9)}.",
    lambda r: f"Booking reference {_alnum(r, 6)}, confirmation {_d(r, 10)}.",
    lambda r: f"Score after {r.randint(60, 90)} minutes: {r.randint(0, 5)}-{r.randint(0, 5)}, attendance {r.randint(10, 99)},{_d(r, 3)}.",
    lambda r: f"Solve {r.randint(2, 99)}x + {r.randint(2, 999)} = {_d(r, 7)} for x.",
    lambda r: f"The hash is {''.join(r.choice('0123456789abcdef') for _ in range(40))}.",
    lambda r: f"Part no. {_d(r, 3)}-{_d(r, 3)}-{_d(r, 4)} fits the {r.randint(2005, 2024)} model.",
    lambda r: f"Timestamp {r.randint(1600000000, 1800000000)} equals {r.randint(2021, 2026)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}.",
]  # fmt: skip


def heldout(seed: int, per_template: int = 30, per_negative: int = 30) -> list[Example]:
    rng = random.Random(seed + 1)
    saved = dict(VALUES)
    VALUES.update(HELDOUT_VALUES)
    try:
        out = [fill(t, rng) for t in HELDOUT_TEMPLATES for _ in range(per_template)]
    finally:
        VALUES.clear()
        VALUES.update(saved)
    return out + [Example(make(rng)) for make in HELDOUT_NEGATIVES for _ in range(per_negative)]


def _bad_luhn(rng: random.Random) -> str:
    while True:
        number = "4" + _d(rng, 15)
        if not pii.luhn_valid(number):
            return " ".join(number[i : i + 4] for i in range(0, 16, 4))


def fill(template: str, rng: random.Random) -> Example:
    text, gold, pos = "", [], 0
    while (start := template.find("{", pos)) >= 0:
        end = template.index("}", start)
        kind = template[start + 1 : end]
        text += template[pos:start]
        value = VALUES[kind](rng)
        gold.append((kind, len(text), len(text) + len(value)))
        text += value
        pos = end + 1
    return Example(text + template[pos:], gold)


def synthetic(seed: int, per_template: int = 30, per_negative: int = 25) -> list[Example]:
    rng = random.Random(seed)
    out = [fill(t, rng) for t in TEMPLATES for _ in range(per_template)]
    out += [Example(make(rng)) for make in NEGATIVES for _ in range(per_negative)]
    return out


# --- WNUT-17 and the NER model ------------------------------------------------------------------------

WNUT_KINDS = {"person": "PERSON", "location": "LOCATION", "corporation": "ORG", "group": "ORG"}


def wnut(data: Path) -> list[Example]:
    out, tokens, tags = [], [], []
    lines = (data / "wnut17" / "emerging.test.annotated").read_text(encoding="utf-8").splitlines() + [""]
    for line in lines:
        if line.strip():
            word, tag = line.split("\t")[:2]
            tokens.append(word)
            tags.append(tag)
            continue
        if tokens:
            out.append(_wnut_example(tokens, tags))
        tokens, tags = [], []
    return out


def _wnut_example(tokens: list[str], tags: list[str]) -> Example:
    text, starts = "", []
    for t in tokens:
        starts.append(len(text) + (1 if text else 0))
        text += (" " if text else "") + t
    gold: list[Span] = []
    for i, tag in enumerate(tags):
        kind = WNUT_KINDS.get(tag[2:])
        if tag.startswith("B-") and kind:
            j = i + 1
            while j < len(tags) and tags[j] == f"I-{tag[2:]}":
                j += 1
            gold.append((kind, starts[i], starts[j - 1] + len(tokens[j - 1])))
    return Example(text, gold, "names")


class Ner:
    """The trained NER model as the worker runs it: every word piece labelled, then grouped."""

    def __init__(self, dtype: str) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        folder = _ner_folder()
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        name = "model_quantized.onnx" if dtype == "q8" else "model.onnx"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(folder / "onnx" / name), opts, providers=["CPUExecutionProvider"]
        )
        import json

        config = json.loads((folder / "config.json").read_text())
        self.labels = {int(k): v for k, v in config["id2label"].items()}

    def entities(self, text: str) -> list[Any]:
        import numpy as np

        enc = self.tok(text, truncation=True, max_length=256, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        logits = self.session.run(None, feeds)[0][0]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        pieces = self.tok.convert_ids_to_tokens(enc["input_ids"][0])
        tokens = [
            {"word": piece, "entity": self.labels[int(p.argmax())], "score": float(p.max())}
            for piece, p in zip(pieces, probs, strict=True)
            if piece not in ("[CLS]", "[SEP]", "[PAD]")
        ]
        return group_entities(text, tokens)


def _ner_folder() -> Path:
    import glob

    from builder.common import cache_root

    hits = sorted(glob.glob(str(cache_root() / "models" / "minilm-l6-conll03-ner" / "*" / "onnx")))
    if not hits:
        raise FileNotFoundError("the NER model minilm-l6-conll03-ner is not built (./hr build)")
    return Path(hits[-1]).parent


# --- scoring --------------------------------------------------------------------------------------------


def score(examples: Sequence[Example], found: Sequence[Sequence[Finding]]) -> dict[str, Counter[str]]:
    c: dict[str, Counter[str]] = {}
    for ex, fs in zip(examples, found, strict=True):
        gold = set(ex.gold)
        pred = {(f.kind, f.start, f.end) for f in fs}
        for kind in {k for k, _, _ in gold | pred}:
            counts = c.setdefault(kind, Counter())
            g = {s for s in gold if s[0] == kind}
            p = {s for s in pred if s[0] == kind}
            counts["gold"] += len(g)
            counts["pred"] += len(p)
            counts["tp"] += len(g & p)
            counts["tp_overlap_pred"] += sum(any(a < e and s < b for _, s, e in g) for _, a, b in p)
            counts["tp_overlap_gold"] += sum(any(a < e and s < b for _, a, b in p) for _, s, e in g)
        doc = c.setdefault("any personal data (per text)", Counter())
        doc["gold"] += bool(gold)
        doc["pred"] += bool(pred)
        doc["tp"] += bool(gold) and bool(pred)
        doc["tp_overlap_pred"] += bool(gold) and bool(pred)
        doc["tp_overlap_gold"] += bool(gold) and bool(pred)
    return c


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}" if b else "-"


def table(title: str, counts: dict[str, Counter[str]]) -> None:
    print(f"\n**{title}**\n")
    print(
        "| kind | gold | found | precision % (exact) | recall % (exact) | precision % (overlap) | recall % (overlap) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    order = [*pii.KINDS, "any personal data (per text)"]
    for kind in sorted(counts, key=lambda k: order.index(k) if k in order else 99):
        n = counts[kind]
        print(
            f"| {kind} | {n['gold']} | {n['pred']} | {_pct(n['tp'], n['pred'])} | {_pct(n['tp'], n['gold'])} | "
            f"{_pct(n['tp_overlap_pred'], n['pred'])} | {_pct(n['tp_overlap_gold'], n['gold'])} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--dtype", choices=("q8", "fp32", "none"), default="q8")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ner = None
    if args.dtype != "none":
        try:
            ner = Ner(args.dtype)
        except FileNotFoundError as exc:
            print(f"{exc}: measuring the patterns only")
    syn = synthetic(args.seed)
    n_neg = sum(not ex.gold for ex in syn)
    print(
        f"synthetic set A: {len(syn) - n_neg} texts with personal data, {n_neg} hard negatives (seed {args.seed})"
    )
    held = heldout(args.seed)
    sets = {
        "Synthetic set A (patterns written alongside it)": syn,
        "Synthetic set B (held out, run once)": held,
    }
    for title, examples in sets.items():
        table(
            f"{title}, patterns only (PERSON needs NER)",
            score(examples, [pii.detect(ex.text) for ex in examples]),
        )
    if ner is None:
        return
    names = wnut(args.data)
    n_gold = sum(len(ex.gold) for ex in names)
    print(f"\nWNUT-17 test: {len(names)} texts, {n_gold} gold person/location/org spans")
    sets["WNUT-17 test"] = names
    for title, examples in sets.items():
        entities = [ner.entities(ex.text) for ex in examples]
        found = [pii.detect(ex.text, e) for ex, e in zip(examples, entities, strict=True)]
        table(f"{title}, patterns + NER ({args.dtype})", score(examples, found))
        people = [pii.detect(ex.text, e, labels=("PER",)) for ex, e in zip(examples, entities, strict=True)]
        gold = [Example(ex.text, [g for g in ex.gold if g[0] not in ("ORG", "LOCATION")]) for ex in examples]
        doc = score(gold, people)["any personal data (per text)"]
        print(
            "\nWith PERSON as the only NER kind (ORG and LOCATION not counted as personal data): a text has "
            f"personal data: precision {_pct(doc['tp'], doc['pred'])} %, recall {_pct(doc['tp'], doc['gold'])} % "
            f"({doc['gold']} texts with, {len(examples) - doc['gold']} without)"
        )


if __name__ == "__main__":
    main()
