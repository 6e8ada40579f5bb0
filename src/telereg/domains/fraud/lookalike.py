"""Lookalike fraud domains: names that imitate a bank, payment service, platform or authority.

A domain scores 0 to 100, the sum of the points of the signals it shows (capped):
one brand signal, the strongest of

* ``homoglyph``: a protected name written with lookalike characters (Cyrillic а, 0 for o);
* ``typosquat``: the registrable name one or two edits from an official one (alipey.com);
* ``impersonation``: a protected name in a label outside its official domains (icbc-kefu.top);

and small aggravating signals: a random-looking name (``entropy``), many ``digits`` or
``hyphens``, a ``deep_subdomain``, an often-abused TLD (``risky_tld``), first seen recently
(``new``). The official domains of a protected name and their subdomains score 0.
Protected names come from ``reference/data/protected_names.csv``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path

import pyarrow as pa
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

from telereg.core.errors import InputError
from telereg.reference.lists import DATA, read_documented_csv

PROTECTED_NAMES_FILE = DATA / "protected_names.csv"
KINDS = frozenset({"bank", "payment", "commerce", "government", "operator"})

MAX_SCORE = 100.0
HIGH_SCORE = 60.0  # a brand signal plus one aggravating signal, or a disguised brand alone
MEDIUM_SCORE = 35.0  # a brand signal alone, or several aggravating signals together

HOMOGLYPH_POINTS = 60.0  # writing a protected name in lookalike characters is deliberate deceit
IMPERSONATION_POINTS = 45.0  # a protected name outside its official domains deserves a look
TYPOSQUAT_POINTS = {1: 45.0, 2: 30.0}  # one edit is as telling as the name itself, two less so
TYPOSQUAT_MIN_LENGTH = {1: 4, 2: 5}  # shorter names have too many innocent neighbours (mit, miit)
TYPOSQUAT_MAX_EDITS = max(TYPOSQUAT_POINTS)
RISKY_TLD_POINTS = 15.0  # cheap, loosely policed TLDs carry most reported phishing
NEW_POINTS = 15.0  # fraud domains are used within days of registration, then dropped
NEW_WITHIN_DAYS = 30  # "new": first seen at most this many days before the scoring date
ENTROPY_POINTS = 10.0  # generated names hide a campaign's many domains from blocklists
ENTROPY_MIN_BITS = 3.2  # per character; ten distinct characters give 3.32
ENTROPY_MIN_LENGTH = 10  # entropy says little about shorter names
ENTROPY_MAX_VOWEL_SHARE = 0.25  # English and pinyin names are ~40 % vowels, random strings ~20 %
DIGITS_POINTS = 5.0  # digits mixed into a name are a generator's or a disguiser's mark
DIGITS_MIN = 4  # counted in a label with letters: all-digit names (4399, 12306) are a local habit
HYPHENS_POINTS = 5.0  # brand-service-action names (jd-kefu-tuikuan) are the lookalike pattern
HYPHENS_MIN = 2  # one hyphen is common in honest names
DEEP_SUBDOMAIN_POINTS = 5.0  # long names push the registrable part out of a phone's address bar
DEEP_SUBDOMAIN_LABELS = 4  # counting a second level like com.cn as one, so www.sina.com.cn has 3
WHOLE_TOKEN_MAX = 3  # keywords this short (ccb, boc, gov) match only a whole hyphen-separated token
EDGE_TOKEN_MAX = 5  # 4-5 characters (nfra, tmall) only at a token's start or end: infrastructure
MAX_NAME_LENGTH = 253  # RFC 1035, in the DNS (xn--) form
MAX_LABEL_LENGTH = 63  # RFC 1035

#: TLDs with cheap registration that phishing and fraud reports name most often.
RISKY_TLDS = frozenset(
    {
        "top", "xyz", "cc", "vip", "shop", "icu", "club", "buzz", "work", "cyou",
        "tk", "ml", "ga", "cf", "gq", "live", "online", "site", "fun", "ltd",
    }
)  # fmt: skip
#: Registries' own second levels under a two-letter country TLD (com.cn, gov.cn, com.hk, co.uk):
#: the name is registered one level below them.
SECOND_LEVEL_NAMES = frozenset({"com", "net", "org", "gov", "edu", "ac", "co"})
#: Characters that pass for a Latin letter in an address bar, mapped to that letter.
CONFUSABLES = {
    "\N{CYRILLIC SMALL LETTER A}": "a",
    "\N{CYRILLIC SMALL LETTER IE}": "e",
    "\N{CYRILLIC SMALL LETTER O}": "o",
    "\N{CYRILLIC SMALL LETTER ER}": "p",
    "\N{CYRILLIC SMALL LETTER ES}": "c",
    "\N{CYRILLIC SMALL LETTER HA}": "x",
    "\N{CYRILLIC SMALL LETTER U}": "y",
    "\N{CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I}": "i",
    "\N{CYRILLIC SMALL LETTER JE}": "j",
    "\N{CYRILLIC SMALL LETTER DZE}": "s",
    "\N{CYRILLIC SMALL LETTER KOMI DE}": "d",
    "\N{CYRILLIC SMALL LETTER SHHA}": "h",
    "\N{CYRILLIC SMALL LETTER PALOCHKA}": "l",
    "\N{CYRILLIC SMALL LETTER QA}": "q",
    "\N{CYRILLIC SMALL LETTER WE}": "w",
    "\N{GREEK SMALL LETTER OMICRON}": "o",
    "\N{GREEK SMALL LETTER ALPHA}": "a",
    "\N{GREEK SMALL LETTER NU}": "v",
    "\N{GREEK SMALL LETTER IOTA}": "i",
    "\N{GREEK SMALL LETTER KAPPA}": "k",
    "\N{GREEK SMALL LETTER RHO}": "p",
    "\N{GREEK SMALL LETTER UPSILON}": "u",
    "\N{GREEK SMALL LETTER CHI}": "x",
    "\N{LATIN SMALL LETTER DOTLESS I}": "i",
    "\N{LATIN SMALL LETTER SCRIPT G}": "g",
    "0": "o",
    "3": "e",
    "5": "s",
}
ONE_READINGS = ("l", "i")  # "1" passes for either; the first reading is the canonical one
SEQUENCE_CONFUSABLES = (("rn", "m"), ("vv", "w"))  # pairs that read as one letter
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)
_DOTS = str.maketrans({"\N{IDEOGRAPHIC FULL STOP}": "."})  # typed by Chinese input methods
_VOWELS = frozenset("aeiou")


class ReasonCode(StrEnum):
    IMPERSONATION = "impersonation"
    TYPOSQUAT = "typosquat"
    HOMOGLYPH = "homoglyph"
    ENTROPY = "entropy"
    RISKY_TLD = "risky_tld"
    NEW = "new"
    DIGITS = "digits"
    HYPHENS = "hyphens"
    DEEP_SUBDOMAIN = "deep_subdomain"
    OFFICIAL = "official"
    INVALID = "invalid"
    #: the police confirmed it as used for fraud (police feedback)
    CONFIRMED = "confirmed"


class RiskLevel(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


#: When two brand signals score the same, the more specific one names the domain.
_BRAND_PRIORITY = {ReasonCode.HOMOGLYPH: 3, ReasonCode.TYPOSQUAT: 2, ReasonCode.IMPERSONATION: 1}


@dataclass(frozen=True)
class Protected:
    """A brand or organisation that fraud impersonates, with its official domains."""

    name: str
    name_zh: str
    kind: str
    official_domains: tuple[str, ...]
    keywords: tuple[str, ...]
    #: as English pages name it (the key, when a list gives none)
    name_en: str = ""


@dataclass(frozen=True)
class Reason:
    code: str
    detail: str
    points: float


@dataclass(frozen=True)
class DomainScore:
    """The score of one domain; ``registrable`` is in DNS (xn--) form, empty when invalid."""

    domain: str
    registrable: str
    score: float
    level: str
    brand: str | None
    reasons: tuple[Reason, ...]


REASON_TYPE = pa.struct([("code", pa.string()), ("detail", pa.string()), ("points", pa.float64())])
#: The columns :func:`score_domains` adds, in order.
SCORE_FIELDS = (
    pa.field("registrable", pa.string()),
    pa.field("score", pa.float64()),
    pa.field("level", pa.string()),
    pa.field("brand", pa.string()),
    pa.field("reasons", pa.list_(REASON_TYPE)),
)

_HOSTNAME_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
#: A keyword: ascii letters and digits (English, pinyin, a hotline), or Chinese characters (a
#: short name people use: 建行 for 中国建设银行), which Chinese labels carry anywhere.
_KEYWORD = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]{2,}")


def load_protected(path: Path | None = None) -> tuple[Protected, ...]:
    """The protected names of ``path``, by default the shipped list; raises InputError if bad."""
    if path is None:
        return _shipped_protected()
    return _read_protected(path)


@cache
def _shipped_protected() -> tuple[Protected, ...]:
    return _read_protected(PROTECTED_NAMES_FILE)


def _read_protected(path: Path) -> tuple[Protected, ...]:
    rows = read_documented_csv(path)
    columns = {"name", "name_zh", "kind", "official_domains", "keywords"}
    if rows and not columns <= rows[0].keys():
        raise InputError(f"needs the columns {sorted(columns)}", where=str(path))
    protected = tuple(_protected(row, where=str(path)) for row in rows)
    names = [p.name for p in protected]
    if len(set(names)) != len(names):
        raise InputError("a name appears twice", where=str(path))
    return protected


def _protected(row: dict[str, str], *, where: str) -> Protected:
    name = row["name"].strip()
    domains = tuple(row["official_domains"].lower().split())
    keywords = tuple(row["keywords"].lower().split())
    where = f"{where}: {name}"
    if not name or row["kind"].strip() not in KINDS:
        raise InputError(f"needs a name and a kind among {sorted(KINDS)}", where=where)
    if not domains or not all(_is_ascii_hostname(d) for d in domains):
        raise InputError("needs official domains written as ascii host names", where=where)
    if not keywords or not all(_KEYWORD.fullmatch(k) for k in keywords):
        raise InputError(
            "needs keywords of ascii letters and digits, or of Chinese characters", where=where
        )
    english = (row.get("name_en") or "").strip() or name
    return Protected(name, row["name_zh"].strip(), row["kind"].strip(), domains, keywords, english)


def _is_ascii_hostname(domain: str) -> bool:
    labels = domain.split(".")
    return len(labels) >= 2 and all(_HOSTNAME_LABEL.fullmatch(label) for label in labels)


@dataclass(frozen=True)
class _Host:
    labels: tuple[str, ...]  # lower case, Unicode (xn-- decoded)
    ascii_labels: tuple[str, ...]  # the DNS form
    suffix_size: int  # labels in the public suffix: 1 (com), 2 (com.cn)

    @property
    def registrable(self) -> str:
        return ".".join(self.ascii_labels[-self.suffix_size - 1 :])

    @property
    def registered_label(self) -> str:
        """The label the owner chose: icbc in www.icbc.com.cn."""
        return self.labels[-self.suffix_size - 1]

    @property
    def own_labels(self) -> tuple[str, ...]:
        """The labels left of the public suffix."""
        return self.labels[: -self.suffix_size]


def _parse_host(domain: str) -> _Host:
    text = unicodedata.normalize("NFKC", domain).translate(_DOTS).strip().lower()
    labels = text.removesuffix(".").split(".")
    if len(labels) < 2:
        raise InputError("a host name has at least two labels")
    decoded, encoded = zip(*(_parse_label(label) for label in labels), strict=True)
    if len(".".join(encoded)) > MAX_NAME_LENGTH:
        raise InputError(f"longer than {MAX_NAME_LENGTH} characters")
    if not any(ch.isalpha() for ch in decoded[-1]):
        raise InputError("the top-level domain has no letters (an IP address?)")
    second_level = len(labels) > 2 and len(encoded[-1]) == 2 and encoded[-2] in SECOND_LEVEL_NAMES
    return _Host(tuple(decoded), tuple(encoded), 2 if second_level else 1)


def _parse_label(label: str) -> tuple[str, str]:
    """The Unicode and DNS forms of one label."""
    if label.startswith("xn--"):
        try:
            decoded = label[4:].encode("ascii").decode("punycode").lower()
        except UnicodeError as err:
            raise InputError(f"{label!r} is not valid punycode") from err
        encoded = label
    else:
        decoded = label
        encoded = label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
    if not decoded or len(encoded) > MAX_LABEL_LENGTH:
        raise InputError(f"a label must have 1 to {MAX_LABEL_LENGTH} characters")
    if decoded[0] == "-" or decoded[-1] == "-":
        raise InputError(f"{decoded!r} starts or ends with a hyphen")
    if not all(ch.isalnum() or ch == "-" for ch in decoded):
        raise InputError(f"{decoded!r} has characters a host name cannot have")
    return decoded, encoded


@lru_cache(maxsize=1 << 16)
def skeletons(text: str) -> tuple[str, ...]:
    """The readings of ``text`` with lookalikes replaced: а→a, à→a, 0→o, rn→m; 1 gives l and i."""
    if not text.isascii():  # à, ā, á read as a
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    base = text.translate(_CONFUSABLE_TABLE)
    readings = [base.replace("1", one) for one in ONE_READINGS] if "1" in base else [base]
    for sequence, letter in SEQUENCE_CONFUSABLES:
        readings = [reading.replace(sequence, letter) for reading in readings]
    return tuple(dict.fromkeys(readings))


@dataclass(frozen=True)
class _Keyword:
    brand: Protected
    text: str
    skeleton: str


@dataclass(frozen=True)
class _OfficialLabel:
    brand: Protected
    domain: str
    label: str  # the registered label: alipay in alipay.com
    skeleton: str


@dataclass(frozen=True)
class _Index:
    """The protected names arranged for matching."""

    official: dict[str, Protected]  # official domain → the first brand listing it
    anywhere: re.Pattern[str] | None
    anywhere_keywords: dict[str, list[_Keyword]]
    whole: dict[str, list[_Keyword]]
    edge: dict[str, list[_Keyword]]
    edge_lengths: tuple[int, ...]
    labels: dict[str, list[_OfficialLabel]]
    typo: tuple[_OfficialLabel, ...]
    typo_skeletons: tuple[str, ...]


@lru_cache(maxsize=4)
def _index(protected: tuple[Protected, ...]) -> _Index:
    anywhere: dict[str, list[_Keyword]] = {}
    whole: dict[str, list[_Keyword]] = {}
    edge: dict[str, list[_Keyword]] = {}
    labels: dict[str, list[_OfficialLabel]] = {}
    for brand in protected:
        # The Chinese name too, anywhere: Chinese labels (支付宝客服.com) have no hyphens to split.
        for text in (*brand.keywords, brand.name_zh):
            keyword = _Keyword(brand, text, skeletons(text)[0])
            if not text.isascii() or len(text) > EDGE_TOKEN_MAX:
                table = anywhere
            else:
                table = whole if len(text) <= WHOLE_TOKEN_MAX else edge
            table.setdefault(keyword.skeleton, []).append(keyword)
        for domain in brand.official_domains:
            label = domain.split(".")[0]
            official = _OfficialLabel(brand, domain, label, skeletons(label)[0])
            labels.setdefault(official.skeleton, []).append(official)
    # Numeric names' neighbours are other service numbers (12306, 12309), not typos.
    typo = tuple(o for group in labels.values() for o in group if not o.label.isdigit())
    by_length = sorted(anywhere, key=len, reverse=True)  # the longest keyword at a place wins
    pattern = "|".join(re.escape(k) for k in by_length)
    return _Index(
        official={d: b for b in reversed(protected) for d in b.official_domains},
        anywhere=re.compile(f"(?=({pattern}))") if pattern else None,
        anywhere_keywords=anywhere,
        whole=whole,
        edge=edge,
        edge_lengths=tuple(sorted({len(k) for k in edge})),
        labels=labels,
        typo=typo,
        typo_skeletons=tuple(o.skeleton for o in typo),
    )


@dataclass(frozen=True)
class _BrandHit:
    brand: Protected
    reason: Reason
    matched: int  # length of what matched, to prefer cmbchina over cmbc

    @property
    def rank(self) -> tuple[float, int, int]:
        return (self.reason.points, _BRAND_PRIORITY[ReasonCode(self.reason.code)], self.matched)


def _keyword_hits(label: str, index: _Index) -> list[_BrandHit]:
    """Protected keywords carried by one label, plainly or in lookalike characters."""
    joined = label.replace("-", "")
    found: list[_Keyword] = []
    if index.anywhere is not None:
        for reading in skeletons(joined):
            for match in index.anywhere.finditer(reading):
                found += index.anywhere_keywords[match.group(1)]
    for token in filter(None, label.split("-")):
        for reading in skeletons(token):
            found += index.whole.get(reading, ())
            for size in index.edge_lengths:
                found += index.edge.get(reading[:size], ())
                if len(reading) > size:
                    found += index.edge.get(reading[-size:], ())
    hits = []
    for keyword in dict.fromkeys(found):
        if keyword.text in joined:
            reason = Reason(
                ReasonCode.IMPERSONATION,
                f"{keyword.brand.name}: {keyword.text!r} in {label!r}",
                IMPERSONATION_POINTS,
            )
        else:
            reason = Reason(
                ReasonCode.HOMOGLYPH,
                f"{keyword.brand.name}: {label!r} reads as {keyword.text!r}",
                HOMOGLYPH_POINTS,
            )
        hits.append(_BrandHit(keyword.brand, reason, len(keyword.text)))
    return hits


def _registered_label_hits(label: str, index: _Index) -> list[_BrandHit]:
    """Official names that the registered label copies in lookalikes or misspells."""
    if label.isdigit():
        return []
    hits = []
    for reading in skeletons(label):
        hits += [
            _BrandHit(
                official.brand,
                Reason(
                    ReasonCode.HOMOGLYPH,
                    f"{official.brand.name}: {label!r} looks like {official.domain}",
                    HOMOGLYPH_POINTS,
                ),
                len(official.label),
            )
            for official in index.labels.get(reading, ())
            if official.label != label
        ]
        matches = process.extract(
            reading,
            index.typo_skeletons,
            scorer=DamerauLevenshtein.distance,
            score_cutoff=TYPOSQUAT_MAX_EDITS,
            limit=None,
        )
        for _, distance, position in matches:
            official = index.typo[position]
            edits = int(distance)
            if edits == 0 or min(len(label), len(official.label)) < TYPOSQUAT_MIN_LENGTH[edits]:
                continue
            reason = Reason(
                ReasonCode.TYPOSQUAT,
                f"{official.brand.name}: {label!r} is {edits} edit(s) from {official.domain}",
                TYPOSQUAT_POINTS[edits],
            )
            hits.append(_BrandHit(official.brand, reason, len(official.label)))
    return hits


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _aggravations(host: _Host, risky_tlds: AbstractSet[str]) -> list[Reason]:
    """The small signals that make any name, imitating or not, more suspect."""
    reasons = []
    longest = max(host.own_labels, key=len).replace("-", "")
    letters = [ch for ch in longest if ch.isascii() and ch.isalpha()]
    if (
        longest.isascii()
        and len(longest) >= ENTROPY_MIN_LENGTH
        and letters
        and sum(ch in _VOWELS for ch in letters) / len(letters) <= ENTROPY_MAX_VOWEL_SHARE
        and (bits := _entropy(longest)) >= ENTROPY_MIN_BITS
    ):
        reasons.append(
            Reason(
                ReasonCode.ENTROPY, f"{longest!r}: {bits:.2f} bits per character", ENTROPY_POINTS
            )
        )
    digits = max(
        (
            (sum(ch.isdigit() for ch in label), label)
            for label in host.own_labels
            if any(ch.isalpha() for ch in label)
        ),
        default=(0, ""),
    )
    if digits[0] >= DIGITS_MIN:
        reasons.append(
            Reason(ReasonCode.DIGITS, f"{digits[0]} digits in {digits[1]!r}", DIGITS_POINTS)
        )
    hyphens = sum(label.count("-") for label in host.own_labels)
    if hyphens >= HYPHENS_MIN:
        reasons.append(Reason(ReasonCode.HYPHENS, f"{hyphens} hyphens", HYPHENS_POINTS))
    depth = len(host.own_labels) + 1
    if depth >= DEEP_SUBDOMAIN_LABELS:
        reasons.append(Reason(ReasonCode.DEEP_SUBDOMAIN, f"{depth} labels", DEEP_SUBDOMAIN_POINTS))
    if host.ascii_labels[-1] in risky_tlds:
        reasons.append(Reason(ReasonCode.RISKY_TLD, f".{host.ascii_labels[-1]}", RISKY_TLD_POINTS))
    return reasons


@dataclass(frozen=True)
class _Assessment:
    """What a domain's name alone says; the date-dependent ``new`` signal is added later."""

    registrable: str
    brand: str | None
    reasons: tuple[Reason, ...]
    final: bool  # official or invalid: nothing more to add


def _assess(domain: str, index: _Index, risky_tlds: AbstractSet[str]) -> _Assessment:
    try:
        host = _parse_host(domain)
    except InputError as err:
        return _Assessment("", None, (Reason(ReasonCode.INVALID, err.message, 0.0),), final=True)
    for start in range(len(host.ascii_labels) - 1):
        official = ".".join(host.ascii_labels[start:])
        if brand := index.official.get(official):
            reason = Reason(ReasonCode.OFFICIAL, f"{brand.name}: {official}", 0.0)
            return _Assessment(host.registrable, None, (reason,), final=True)
    hits = [hit for label in host.own_labels for hit in _keyword_hits(label, index)]
    hits += _registered_label_hits(host.registered_label, index)
    best = max(hits, key=lambda hit: hit.rank, default=None)
    reasons = ([best.reason] if best else []) + _aggravations(host, risky_tlds)
    return _Assessment(
        host.registrable, best.brand.name if best else None, tuple(reasons), final=False
    )


def _level(score: float) -> RiskLevel:
    if score >= HIGH_SCORE:
        return RiskLevel.HIGH
    if score >= MEDIUM_SCORE:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def _finish(
    domain: str, assessment: _Assessment, *, first_seen: date | None, as_of: date
) -> DomainScore:
    reasons = assessment.reasons
    if not assessment.final and first_seen is not None:
        age = (as_of - first_seen).days
        if 0 <= age <= NEW_WITHIN_DAYS:
            detail = f"first seen {first_seen.isoformat()}, {age} days before {as_of.isoformat()}"
            reasons += (Reason(ReasonCode.NEW, detail, NEW_POINTS),)
    score = min(MAX_SCORE, math.fsum(reason.points for reason in reasons))
    return DomainScore(
        domain=domain,
        registrable=assessment.registrable,
        score=score,
        level=_level(score),
        brand=assessment.brand,
        reasons=reasons,
    )


def score_domain(
    domain: str,
    *,
    first_seen: date | None,
    as_of: date,
    protected: Sequence[Protected],
    risky_tlds: AbstractSet[str] = RISKY_TLDS,
) -> DomainScore:
    """How likely ``domain`` is a fraud domain imitating one of ``protected``; never raises."""
    assessment = _assess(domain, _index(tuple(protected)), risky_tlds)
    return _finish(domain, assessment, first_seen=first_seen, as_of=as_of)


def score_domains(
    domains: pa.Table,
    *,
    as_of: date,
    protected: Sequence[Protected] | None = None,
    risky_tlds: AbstractSet[str] = RISKY_TLDS,
    confirmed: Mapping[str, str] | None = None,
) -> pa.Table:
    """``domains`` (domain, first_seen, query_count, …) with :data:`SCORE_FIELDS` added.

    Rows come most suspect first: by score, then by query_count, both descending.
    ``protected`` defaults to the shipped list. ``confirmed``: domains the police confirmed
    as used for fraud (lower case, as observed) → what they said (case and date); such a
    domain is high risk whatever its name looks like.
    """
    if "domain" not in domains.column_names:
        raise InputError("needs a 'domain' column", where="score_domains")
    names = domains.column("domain").to_pylist()
    seen: list[object] = [None] * len(names)
    if "first_seen" in domains.column_names:
        kind = domains.schema.field("first_seen").type
        if not (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
            raise InputError(f"first_seen must be a date, not {kind}", where="score_domains")
        seen = domains.column("first_seen").to_pylist()
    index = _index(tuple(load_protected() if protected is None else protected))
    assessments: dict[str, _Assessment] = {}
    scores = []
    for name, first in zip(names, seen, strict=True):
        text = "" if name is None else str(name)
        if text not in assessments:
            assessments[text] = _assess(text, index, risky_tlds)
        score = _finish(text, assessments[text], first_seen=_as_date(first), as_of=as_of)
        said = (confirmed or {}).get(text.strip().lower())
        if said is not None:
            reasons = (Reason(ReasonCode.CONFIRMED, said, MAX_SCORE), *score.reasons)
            score = replace(score, score=MAX_SCORE, level=RiskLevel.HIGH, reasons=reasons)
        scores.append(score)
    added = (
        [s.registrable for s in scores],
        [s.score for s in scores],
        [str(s.level) for s in scores],
        [s.brand for s in scores],
        [
            [{"code": str(r.code), "detail": r.detail, "points": r.points} for r in s.reasons]
            for s in scores
        ],
    )
    table = domains.drop_columns([f.name for f in SCORE_FIELDS if f.name in domains.column_names])
    for field, values in zip(SCORE_FIELDS, added, strict=True):
        table = table.append_column(field, pa.array(values, type=field.type))
    order = [("score", "descending")]
    if "query_count" in table.column_names:
        order.append(("query_count", "descending"))
    return table.sort_by(order)


def _as_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return None
