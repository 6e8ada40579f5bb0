"""What the ingest tells a submitter, as message templates.

The submission record, the error report and the quarantine keep these
messages in English, as the API returns them; pages show them in the reader's
language by matching them back to their templates (``core.i18n.localise``).
A message the ingest gives is built here, so every one of them can be
translated: ``MISSING.format(...)``, never an f-string at the call site.
"""

from __future__ import annotations

from telereg.core.i18n import N_

# Rules about one row (validate.row_checks).
REQUIRED = N_("required value is missing")
NOT_VALID = N_("not a valid {type}")
IMPLAUSIBLE_YEAR = N_("the year is not between {first} and {last}: write the year with four digits")
BELOW_MINIMUM = N_("below the minimum {minimum}")
ABOVE_MAXIMUM = N_("above the maximum {maximum}")
WRONG_FORM = N_("does not have the expected form: {form}, such as {example}")
NOT_ONE_OF = N_("not one of: {allowed}")
TOO_LONG = N_("longer than {length} characters")
LOOKS_PERSONAL = N_("looks like a phone or ID-card number: codes must not be personal identifiers")

# The forms of values (contracts.Form), as the error report and the datasets page name them
# (each form's example follows its words: ", such as …").
FORM_MOBILE_NUMBER = N_(
    "an 11-digit mobile number beginning 13 to 19 (86 or +86 before it allowed)"
)
FORM_IMSI = N_("an IMSI: 15 digits beginning 460")
FORM_IMEI = N_("an IMEI: 14 to 16 digits")
FORM_ID_NUMBER = N_("an 18-character ID number: 17 digits, then a digit or X")
FORM_ADMIN_CODE = N_("a 6-digit administrative division code")
FORM_CODE = N_("{shortest} to {longest} letters, digits, _ or -")
FORM_DIGITS = N_("{shortest} to {longest} digits (+ before them allowed)")

# Rules across rows, against other data and the period (validate.set_checks).
OUTSIDE_PERIOD = N_("outside the period {period}")
UNKNOWN_VALUE = N_("unknown value: not found in {reference}")
DUPLICATE = N_("duplicate {key}: first seen in row {row}")
REGION_CODE = N_("a {level} code of the configured region")
SAME_OPERATOR = N_("{reference} of the same operator")
UNREADABLE_GEOMETRY = N_("not a readable geometry")
WRONG_GEOMETRY = N_("geometry is not one of: {kinds}")
OUTSIDE_LONLAT = N_(
    "coordinates outside longitude -180 to 180 or latitude -90 to 90 (projected coordinates?)"
)
INVALID_GEOMETRY = N_("geometry is not valid (e.g. self-intersecting)")
EMPTY_GEOMETRY = N_("the geometry is empty (no coordinates)")
AWAY_FROM_REGION = N_(
    "the geometry lies wholly outside the region {region} (longitude and latitude swapped?)"
)
CANNOT_STORE = N_(
    "the file could not be stored (is the data dir's disk full or read-only?): {detail}"
)
UNREADABLE_LINE = N_("unreadable line: {detail}")
FEWER_FIELDS = N_("the line has {found} fields, the header {expected}")
#: (the reader stops counting at one too many, so how many more is not known)
MORE_FIELDS = N_("the line has more fields than the header's {expected}")
NOT_UTF8_LINE = N_("not UTF-8 text")
STRAY_QUOTE = N_("a quote inside a value that is not itself quoted")

# The submission's outcome.
NO_ROW_PASSED = N_("no row passed validation")
ROWS_IN_MONTH = N_("the rows are of {month}, not {period}: was the period meant to be {month}?")
SOME_QUARANTINED = N_("{quarantined} of {total} rows quarantined")
ALL_ACCEPTED = N_("all {total} rows accepted")
IGNORED_COLUMNS = N_("ignored unknown column(s): {columns}")
SHEETS_READ = N_(
    "read {count} sheets with the same header ({sheets}): a row of a later sheet is "
    "numbered {rows} times the sheet's place after the first, plus its row"
)
SHEETS_IGNORED = N_("ignored sheet(s) whose header differs from the first sheet's: {sheets}")
HIDDEN_SHEETS = N_("hidden sheet(s) not read: {sheets}")
COLUMNS_NOT_IN_FIRST_SHEET = N_(
    "column(s) of later sheets that the first sheet lacks were not read ({columns}): "
    "give the first sheet every column"
)
TOTAL_ROWS = N_("{count} total row(s) (合计, 小计) skipped")
VALUES_WITHOUT_HEADER = N_("values in column(s) with no header were not read: {columns}")
COLUMNS_WITHOUT_HEADER = N_("column(s) with no header were not read: {columns}")
MERGED_FILLED = N_("{count} cell(s) of merged ranges read as the value merged over them")
SHEETS_BEFORE = N_("sheet(s) before the one with the dataset's columns not read: {sheets}")
DAYS_LACKING = N_(
    "replaces submission {id}, whose rows ran {was}, with rows of {now}: the days this "
    "file lacks are no longer in use; a month sent in parts must be sent as one file"
)
FEWER_ROWS = N_(
    "replaces submission {id}, which had {before} accepted rows, with {now}: "
    "if this is the wrong file, send submission {id}'s file again to put it back in use"
)
SUPERSEDED_ON_ARRIVAL = N_("superseded on arrival by submission {id}, received later")

# A file refused as a whole.
WRONG_FORMAT = N_("dataset {dataset} accepts {formats}, not {format}")
CANNOT_READ = N_("cannot read the file: {detail}")
CANNOT_READ_GBK = N_("cannot read the file as GBK either: {detail}")
NO_DATA_ROWS = N_("the file has a header but no data rows")
MISSING_COLUMNS = N_("missing required column(s) {missing}; expected {expected}; found {found}")
TWO_COLUMNS = N_("columns {first} and {second} both give {name}")
NO_PERIOD = N_("cannot tell the period: no valid {column}; give the period")
MONTH_FROM_ROWS = N_(
    "period {period} taken from the rows; {outside} row(s) dated outside it are quarantined"
)
SPANS_MONTHS = N_("rows span {first} to {last}; send one file per month or give the period")
PERIOD_REQUIRED = N_(
    "{dataset} has no date column to take the month from: give the period (YYYY-MM) "
    "the file describes"
)
PERIOD_AFTER_NOW = N_(
    "period {period} is after the current month {current}: give the month the file describes"
)
PERIOD_TOO_EARLY = N_("period {period} is before the year {first}: write the year with four digits")
EMPTY_FILE = N_("the file is empty")
ZIP_NOT_XLSX = N_("a ZIP archive, not an XLSX workbook")
UNSAVED_FORMULAS = N_(
    "{count} formula cell(s) of sheet {sheet} have no saved result ({cells}): the program "
    "that wrote the file did not calculate them; open it in Excel or WPS, save it, and "
    "send it again"
)
OLD_WORKBOOK = N_(
    "this is an old Excel (.xls) or WPS (.et) workbook: save it as an Excel workbook "
    "(.xlsx) and send that"
)
BINARY_FILE = N_("a binary file, not CSV, XLSX, Parquet or GeoJSON")
COMPRESSED_FILE = N_(
    "a {kind}-compressed file, not CSV, XLSX, Parquet or GeoJSON: unpack it and send the "
    "file inside"
)
PDF_FILE = N_("a PDF document, not CSV, XLSX, Parquet or GeoJSON: send the data itself")
NAME_CONTRADICTS = N_("the name says {claimed} but the content is {found}")
UNKNOWN_ENCODING = N_("the CSV file is neither UTF-8 nor GBK/GB18030 text")
LINE_TOO_LONG = N_("a line is longer than the reader allows")
BLANK_ROWS = N_("{count} rows with no value at all were skipped")
TITLE_ROWS = N_("{count} title row(s) above the header were skipped")
TITLE_LINES = N_("{count} title line(s) above the header were skipped")
NORMALISED = N_(
    "{count} row(s) passed once their values were normalised (full-width characters, "
    "spaces around a value, a listed value's Chinese name, dates and numbers as "
    "spreadsheets write them)"
)
NOT_VALID_TEXT = N_("not valid {encoding} text ({detail})")
CANNOT_READ_CSV = N_("cannot read as CSV: {detail}")
UNCLOSED_QUOTE = N_(
    "a quoted value is not closed near the top of the file (the reader could not tell where "
    "values end); check the first rows for a missing quote"
)
MIXED_ENCODINGS = N_("the CSV file mixes encodings")
HEADER_TWICE = N_("the column {header} appears twice in the header")
CANNOT_OPEN_WORKBOOK = N_("cannot open the workbook: {detail}")
NO_WORKSHEET = N_("the workbook has no visible worksheet (only charts, or hidden sheets?)")
EMPTY_SHEET = N_("the first sheet is empty")
CANNOT_READ_PARQUET = N_("cannot read the Parquet file: {detail}")
NOT_UTF8_VALUE = N_(
    "column {column} holds bytes that are not UTF-8 text, first in row {row}: write it as text"
)
NOT_JSON = N_("not valid JSON: {detail}")
NOT_FEATURE_COLLECTION = N_("GeoJSON must be a FeatureCollection")
NO_FEATURES = N_("the FeatureCollection has no features")
NOT_FEATURES = N_("GeoJSON features must be a list of Feature objects")
GEOJSON_CRS = N_(
    "the file declares the coordinate system {crs}; send longitude and latitude in WGS-84 "
    "(or GCJ-02, declared at upload)"
)
GEOMETRY_PROPERTY = N_("a property is named {name}, as the geometry column is; rename it")
CANNOT_READ_FORMAT = N_("cannot read the {format} file: {detail}")

# Refusals before any reading.
OWN_OPERATOR_ONLY = N_("operator users submit only their own operator's data")
ADMINISTRATION_ONLY = N_("{dataset} is the administration's to submit")
ADMINISTRATION_CODE = N_(
    "{dataset} is the administration's own data: send it under the operator code {code}"
)

#: Words that appear as values in the messages above (column types, region levels).
VALUE_WORDS = (
    N_("string"),
    N_("integer"),
    N_("float"),
    N_("boolean"),
    N_("date"),
    N_("timestamp"),
    N_("geometry"),
    N_("city"),
    N_("county"),
)

# A column's rules in words (``contracts.Column.rules``: the datasets page and docs).
RULE_REQUIRED = N_("required")
RULE_OPTIONAL = N_("optional")
RULE_MATCHES = N_("{form}, such as `{example}` (`{pattern}`)")
RULE_NOT_PERSONAL = N_("not a mobile or ID-card number")
RULE_ONE_OF = N_("one of {values}")
RULE_AT_MOST = N_("at most {length} characters")
RULE_REFERS_TO = N_("refers to {reference}")
RULE_GEOMETRY = N_("WKT / GeoJSON geometry: {kinds}")
RULE_IDENTIFIER = N_("personal identifier ({kind}): pseudonymised at ingest")
RULE_KEPT_PREFIX = N_("its first {length} characters are kept as `{name}`")
RULE_NUMBERS_MASKED = N_("phone or ID numbers written in it are masked (`138****5678`)")
RULE_PERCENT = N_("a percentage (`95%`) is read as its share (0.95)")
