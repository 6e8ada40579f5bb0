"""Data contracts: what a dataset's file must contain, declared as data.

A contract lists columns with their type, whether they are required, ranges,
patterns, enumerations, maximum lengths, references to other datasets or to
reference data, and which columns hold personal identifiers. Validation
(``ingest.validate``) reads these declarations; no dataset has its own code path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from telereg.core.errors import ContractError
from telereg.core.privacy import IdentifierKind
from telereg.ingest import reasons

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from telereg.core.principal import Principal
    from telereg.core.settings import Settings


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    GEOMETRY = "geometry"


#: How the lake stores each contract type that is not text (the engine's type names).
ENGINE_TYPES = {
    ColumnType.INTEGER: "int64",
    ColumnType.FLOAT: "float64",
    ColumnType.BOOLEAN: "boolean",
    ColumnType.DATE: "date",
    ColumnType.TIMESTAMP: "timestamp",
}


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"
    GEOJSON = "geojson"


TABULAR = (FileFormat.CSV, FileFormat.XLSX, FileFormat.PARQUET)


@dataclass(frozen=True)
class Form:
    """The form a text value must have: the regular expression checked (whole value), the
    same in words (a message translated where it is shown) and a value that has it. The words
    and the example are what an error report tells a submitter; the expression is for the
    datasets' reference. A form without words, or whose example does not have it, is refused
    when it is declared (see :func:`form_problem`)."""

    regex: str
    words: str
    #: a value of the form, shown after the words ("…, such as 13800138000")
    example: str
    #: a code's form: a value that is a mobile or ID-card number alone (see
    #: :data:`PERSONAL_NUMBER`) is refused, as a code must not name a person
    refuses_personal_numbers: bool = False

    def __post_init__(self) -> None:
        problem = form_problem(self)
        if problem is not None:
            raise ContractError(f"the form {self.regex!r} {problem}")


def form_problem(form: Form) -> str | None:
    """Why ``form`` cannot be declared (None when it can): the words and the example are
    what a submitter is told, so both must be there, and the example must have the form."""
    try:
        fits = re.fullmatch(form.regex, form.example) is not None
    except re.error as err:
        return f"is not a regular expression ({err})"
    example = repr(form.example)
    problems = {
        "is not described in words": not form.words.strip(),
        "has no example": not form.example,
        # (the reason reads "…: {form}, such as {example}", and is matched back so)
        "gives its example in its words: declare it as the form's example": (
            ", such as " in form.words
        ),
        f"has {_REASONS_SEPARATOR!r} in its words or example, which separates reasons": any(
            _REASONS_SEPARATOR in text for text in (form.words, form.example)
        ),
        f"does not fit its example {example}": not fits,
        f"refuses personal numbers, and its example {example} is one": (
            form.refuses_personal_numbers
            and re.fullmatch(PERSONAL_NUMBER, form.example) is not None
        ),
    }
    return next((problem for problem, found in problems.items() if found), None)


#: How a row's reasons are joined (the quarantine's ``reasons``, a column's rules), which
#: ``core.i18n.localise`` splits them at.
_REASONS_SEPARATOR = "; "


@dataclass(frozen=True)
class Reference:
    """Values must exist in another dataset's current data, or in reference data.

    ``dataset`` names a contract (the operator's own current submissions are
    searched when ``same_operator``), or ``region:city`` / ``region:county`` (or both,
    ``region:city+county``) for the administrative codes of the configured region.
    """

    dataset: str
    column: str
    same_operator: bool = True

    def describe(self) -> str:
        if self.dataset.startswith("region:"):
            levels = self.dataset.removeprefix("region:").split("+")
            return reasons.REGION_CODE.format(level=" or ".join(levels))
        named = f"`{self.dataset}.{self.column}`"
        return reasons.SAME_OPERATOR.format(reference=named) if self.same_operator else named


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str
    description_zh: str = ""
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    pattern: Form | None = None
    enum: tuple[str, ...] | None = None
    max_length: int = 256
    identifier: IdentifierKind | None = None
    references: Reference | None = None
    #: other header names accepted for this column (e.g. the Chinese header operators use)
    aliases: tuple[str, ...] = ()
    #: for geometry columns: the accepted geometry types (WKT names)
    geometry_types: tuple[str, ...] | None = None
    #: for identifier columns: a leading part that names no one, kept in the clear beside the
    #: token as (column name, characters), e.g. an IMEI's TAC, which names the device model
    kept_prefix: tuple[str, int] | None = None
    #: for a date standing for its month (the first day of the month reported): a month
    #: alone (``2021-12``, ``202112``, ``2021/12``, ``2021年12月``) is read as its first day
    month: bool = False
    #: for a listed column: the Chinese names operators write its values by, as (name,
    #: code) pairs, several names for a code where usage varies (``在网`` and ``开通``); a
    #: value written so is read as its code, and the datasets page shows the names
    labels: tuple[tuple[str, str], ...] = ()
    #: for a number that may be a share: a value written as a percentage (``95%``) is read
    #: as its share (``0.95``)
    percent: bool = False

    def __post_init__(self) -> None:
        if self.percent and self.type is not ColumnType.FLOAT:
            raise ContractError(f"column {self.name}: only a float column takes a percentage")
        if self.pattern is not None and not isinstance(self.pattern, Form):
            # (a bare regular expression would tell a submitter nothing they can read)
            raise ContractError(
                f"column {self.name}: a pattern is declared as a Form, with its form in words "
                "and an example, not as a bare regular expression"
            )
        if self.pattern is not None and len(self.pattern.example) > self.max_length:
            raise ContractError(f"column {self.name}: the form's example is too long for it")
        if self.kept_prefix is not None and self.pattern is None:
            # (the prefix is kept only where the value has the form: see ingest.service)
            raise ContractError(f"column {self.name}: a kept prefix needs a pattern")

    @property
    def masks_numbers(self) -> bool:
        """Free text (a name, an address, a description: no form, list or reference holds
        it), where a contact's phone or ID number may be written: such numbers are masked
        on the way into the lake, as they are not pseudonymised."""
        return (
            self.type is ColumnType.STRING
            and not self.pattern
            and not self.enum
            and self.references is None
            and self.identifier is None
        )

    def rules(self) -> list[str]:
        """The column's rules in words, for listings and generated docs."""
        rules = [reasons.RULE_REQUIRED if self.required else reasons.RULE_OPTIONAL]
        if self.minimum is not None:
            rules.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            rules.append(f"<= {self.maximum:g}")
        if self.pattern:
            rules.append(
                reasons.RULE_MATCHES.format(
                    form=self.pattern.words,
                    example=self.pattern.example,
                    pattern=self.pattern.regex,
                )
            )
            if self.pattern.refuses_personal_numbers:
                rules.append(reasons.RULE_NOT_PERSONAL)
        if self.enum:
            named = {code: [n for n, c in self.labels if c == code] for code in self.enum}
            values = ", ".join(
                f"`{code}`" + (f" ({'/'.join(names)})" if names else "")
                for code, names in named.items()
            )
            rules.append(reasons.RULE_ONE_OF.format(values=values))
        if self.type in (ColumnType.STRING, ColumnType.GEOMETRY):
            rules.append(reasons.RULE_AT_MOST.format(length=self.max_length))
        if self.references:
            rules.append(reasons.RULE_REFERS_TO.format(reference=self.references.describe()))
        if self.geometry_types:
            rules.append(reasons.RULE_GEOMETRY.format(kinds=" or ".join(self.geometry_types)))
        if self.identifier:
            rules.append(reasons.RULE_IDENTIFIER.format(kind=self.identifier.value))
        if self.kept_prefix:
            name, length = self.kept_prefix
            rules.append(reasons.RULE_KEPT_PREFIX.format(length=length, name=name))
        if self.masks_numbers:
            rules.append(reasons.RULE_NUMBERS_MASKED)
        if self.percent:
            rules.append(reasons.RULE_PERCENT)
        return rules


@dataclass(frozen=True)
class RangeWhen:
    """A range a number must keep in the rows where another column has one of some values:
    a rule across two columns. A target's value is a share (0 to 1) when its indicator is
    a coverage, and a whole number when it counts sites; one rule per such case.

    ``words`` is the rule as a reader is told it (a marked message: the reason a row that
    breaks it is quarantined with, and its line in the datasets reference).
    """

    column: str
    when: str
    values: tuple[str, ...]
    words: str
    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False

    def problem(self, contract: Contract) -> str | None:
        """What is wrong with the rule in ``contract``, or None."""
        names = {c.name: c for c in contract.columns}
        number, listed = names.get(self.column), names.get(self.when)
        problems = {
            f"names no numeric column {self.column}": number is None
            or number.type not in (ColumnType.INTEGER, ColumnType.FLOAT),
            f"names no listed column {self.when}": listed is None or not listed.enum,
            "names values its column does not list": listed is not None
            and not set(self.values) <= set(listed.enum or ()),
            "sets no bound": self.minimum is None and self.maximum is None and not self.whole,
            "is not described in words": not self.words.strip(),
            f"has {_REASONS_SEPARATOR!r} in its words, which separates reasons": (
                _REASONS_SEPARATOR in self.words
            ),
        }
        return next((problem for problem, found in problems.items() if found), None)


class AfterIngest(Protocol):
    """What a dataset's domain does once a submission of it is in use (opens the cases
    the file reports). It runs again whenever the file is sent again, so it must do
    nothing twice; ``principal`` is who sent the file."""

    def __call__(self, session: Session, *, settings: Settings, principal: Principal) -> object:
        """Act on the dataset's current files."""


@dataclass(frozen=True)
class Contract:
    name: str
    domain: str
    title: str
    title_zh: str
    description: str
    columns: tuple[Column, ...]
    #: the description in Chinese (the datasets page shows it to Chinese readers)
    description_zh: str = ""
    #: sets of columns whose values must be unique within a submission
    unique: tuple[tuple[str, ...], ...] = ()
    #: a date/timestamp column whose values must fall inside the submission's period
    period_column: str | None = None
    formats: tuple[FileFormat, ...] = TABULAR
    #: GeoJSON input: the feature geometry goes into this column (WKT)
    geometry_column: str | None = None
    #: longitude and latitude columns, converted from GCJ-02 when a file declares it
    coordinates: tuple[str, str] | None = None
    examples: dict[str, str] = field(default_factory=dict)
    #: submitted by the administration only, never by an operator's users (reference data
    #: that operators are measured against; what the police confirmed)
    administration_only: bool = False
    #: a reference list with no month of its own (corridors, key places): a file sent
    #: without a period is filed under the month it arrives in. Every other dataset
    #: without a ``period_column`` needs the period it describes.
    standing: bool = False
    #: the domain's follow-up once a submission is in use (ingest imports no domain)
    after_ingest: AfterIngest | None = None
    #: ranges a number must keep depending on another column (see :class:`RangeWhen`)
    ranges_when: tuple[RangeWhen, ...] = ()

    def __post_init__(self) -> None:
        for rule in self.ranges_when:
            if problem := rule.problem(self):
                raise ContractError(f"contract {self.name}: a rule on {rule.column} {problem}")

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def rules_of(self, column: Column) -> list[str]:
        """The column's rules in words, with the rules across columns that bound it."""
        return column.rules() + [r.words for r in self.ranges_when if r.column == column.name]

    @property
    def identifier_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.identifier is not None)

    def lake_schema(self) -> dict[str, str]:
        """Column name → engine type, as the lake stores the dataset (identifiers as tokens)."""
        schema = {"source_row": "int64"}
        for column in self.columns:
            stored = "string" if column.identifier else ENGINE_TYPES.get(column.type, "string")
            schema[column.name] = stored
            if column.kept_prefix is not None:
                schema[column.kept_prefix[0]] = "string"
        return schema | {"operator": "string", "period": "string"}

    def header_map(self) -> dict[str, str]:
        """Accepted header spellings (normalised) → column name: the name, its aliases and
        the Chinese name the dataset's documentation gives it."""
        mapping: dict[str, str] = {}
        for column in self.columns:
            chinese = (column.description_zh,) if column.description_zh else ()
            for spelling in (column.name, *column.aliases, *chinese):
                mapping.setdefault(normalise_header(spelling), column.name)
        return mapping


def normalise_header(header: str) -> str:
    """A header as it is matched: full-width forms as ASCII (``（秒）`` as ``(秒)``, as
    Chinese input methods and Excel mix them), lower case, a run of spaces, line breaks
    (Alt+Enter in a cell) or hyphens between words as one ``_``, and none beside a
    Chinese character (``通话时长 (秒)`` is ``通话时长(秒)``)."""
    text = unicodedata.normalize("NFKC", header).strip().strip("\ufeff").lower()
    joined = _HEADER_GAPS.sub("_", text)
    return _GAP_BESIDE_WIDE.sub(r"\1", joined)


_HEADER_GAPS = re.compile(r"[\s\-]+")
_GAP_BESIDE_WIDE = re.compile(r"_*([^\x00-\x7f])_*")


# Forms shared by many contracts.
_MOBILE = r"1[3-9][0-9]{9}"
_ID_NUMBER = r"[0-9]{17}[0-9Xx]"
#: What a code must not be (whole value): a mobile number (11 digits, 13 to 19 first) or an
#: ID-card number (18 characters). Codes of other lengths, such as 15-digit cell ids, pass.
PERSONAL_NUMBER = f"{_MOBILE}|{_ID_NUMBER}"
#: the lengths of :data:`PERSONAL_NUMBER`'s values (tested first: a code rarely has them)
PERSONAL_NUMBER_LENGTHS = (11, 18)
# (the examples name no one: a service number, the national standard's sample ID number)
MOBILE_NUMBER = Form(rf"(\+?86)?{_MOBILE}", reasons.FORM_MOBILE_NUMBER, "13800138000")
IMSI = Form(r"460[0-9]{12}", reasons.FORM_IMSI, "460001234567890")
IMEI = Form(r"[0-9]{14,16}", reasons.FORM_IMEI, "356938035643809")
ID_NUMBER = Form(_ID_NUMBER, reasons.FORM_ID_NUMBER, "11010519491231002X")
ADMIN_CODE = Form(r"[1-9][0-9]{5}", reasons.FORM_ADMIN_CODE, "140105")
#: the same, for a city's code (the example a city's)
CITY_ADMIN_CODE = replace(ADMIN_CODE, example="140100")


def code_form(
    shortest: int, longest: int, *, example: str, personal_numbers_refused: bool = True
) -> Form:
    """An identifier such as a cell, site or outlet code: ``shortest`` to ``longest``
    letters, digits, ``_`` or ``-``, and (unless ``personal_numbers_refused`` is false, for
    codes whose own numbering has 11-digit values) not a mobile or ID-card number;
    ``example``: a code as the dataset's submitters write it."""
    return Form(
        rf"[0-9A-Za-z_-]{{{shortest},{longest}}}",
        reasons.FORM_CODE.format(shortest=shortest, longest=longest),
        example,
        refuses_personal_numbers=personal_numbers_refused,
    )


def number_form(shortest: int, longest: int, *, example: str) -> Form:
    """A phone number as a switch records it (landlines, short codes, international):
    ``shortest`` to ``longest`` digits, a ``+`` before them allowed."""
    return Form(
        rf"\+?[0-9]{{{shortest},{longest}}}",
        reasons.FORM_DIGITS.format(shortest=shortest, longest=longest),
        example,
    )


# Columns many datasets share, declared once.
LONGITUDE = Column(
    "longitude",
    ColumnType.FLOAT,
    "Longitude (WGS-84 unless the file declares GCJ-02).",
    "经度",
    minimum=73,
    maximum=136,
    aliases=("经度", "lon", "lng"),
)
LATITUDE = Column(
    "latitude",
    ColumnType.FLOAT,
    "Latitude.",
    "纬度",
    minimum=3,
    maximum=54,
    aliases=("纬度", "lat"),
)
CITY_CODE = Column(
    "city_code",
    ColumnType.STRING,
    "Prefecture-level city code.",
    "地市编码",
    pattern=CITY_ADMIN_CODE,
    references=Reference("region:city", "code"),
    aliases=("地市编码",),
)
COUNTY_CODE = Column(
    "county_code",
    ColumnType.STRING,
    "County code.",
    "区县编码",
    pattern=ADMIN_CODE,
    references=Reference("region:county", "code"),
    aliases=("区县编码",),
)
