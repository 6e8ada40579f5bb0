"""Hand-over of fraud cases to a police liaison: a signed package, then the disposal.

The package is a ZIP of ``cases.csv``, ``cases.xlsx`` and ``manifest.json``
(who, to whom, when, which cases, and each file's SHA-256), plus
``manifest.sig``: the manifest's HMAC-SHA256 under the installation's
``handover_key``. Changing any byte of any file breaks verification. Numbers
appear as tokens; clear numbers are added only through the vault, for a
principal allowed to re-identify, with a reason, each one audited.

The installation keeps each package for the agency to fetch, encrypted as the vault
is (under the vault key, bound to the agency and the package's name): clear numbers
are never at rest in the clear, in the data dir or its backups. What the agency
fetches, and what the CLI writes out, is the package itself. A package's file is kept
``handover_retention_days`` (:mod:`telereg.domains.fraud.retention`); its record stays.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import json
import os
import re
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from telereg.cases import service as cases
from telereg.cases.models import Case, CaseStatus, HandoverPackage
from telereg.core import audit
from telereg.core.errors import (
    ApprovalRequiredError,
    ConfigurationError,
    ConflictError,
    GoneError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    SignatureError,
    TeleregError,
)
from telereg.core.i18n import N_
from telereg.core.models import Agency
from telereg.core.permissions import Permission
from telereg.core.principal import Principal
from telereg.core.privacy import Sealer, may_reidentify, note_as_stored, reidentify
from telereg.core.settings import Settings
from telereg.domains.fraud import casework, findings
from telereg.domains.fraud.casework import DISPOSALS, WORKFLOW, disposals_for, get_case
from telereg.reference.directory import POLICE

_AGENCY = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PACKAGE = re.compile(r"^handover-[A-Za-z0-9_-]{1,80}\.zip$")
COLUMNS = (
    "case_id",
    "type",
    "reference",
    "operator",
    "period",
    "score",
    "signals",
    # what the signals rest on: feature values, the model's probability and its reasons
    "evidence",
    "model_probability",
    "model_reasons",
    "outlet_id",
    # a card's holder (ID number token) and when the card was sold
    "id_number",
    "activated_at",
    # where a card was registered (its holder's city), beside where it is used
    "home_city",
    # an ID number's active cards at the operator (line tokens), when it holds too many
    "lines",
    # where the line's device is: its handsets (IMEI tokens, and the TACs that name the
    # model) and the cell it called from most
    "imeis",
    "device_tacs",
    "main_cell",
    "longitude",
    "latitude",
    "city_code",
    # only with a stated reason, from the vault
    "clear_value",
    "clear_imeis",
    "clear_id_number",
    "clear_lines",
)
_DATA_FILES = ("cases.csv", "cases.xlsx", "manifest.json")
#: The workbook's column titles, for the police officers who read it (the CSV keeps the
#: codes alone, for their systems).
COLUMN_TITLES = {
    "case_id": "案件编号",
    "type": "案件类型",
    "reference": "线索对象",
    "operator": "运营商",
    "period": "月份",
    "score": "得分",
    "signals": "命中信号",
    "evidence": "证据",
    "model_probability": "模型概率",
    "model_reasons": "模型依据",
    "outlet_id": "营业网点",
    "id_number": "证件号（令牌）",
    "activated_at": "入网时间",
    "home_city": "归属地市",
    "lines": "名下号码（令牌）",
    "imeis": "终端 IMEI（令牌）",
    "device_tacs": "终端型号 TAC",
    "main_cell": "主要小区",
    "longitude": "经度",
    "latitude": "纬度",
    "city_code": "所在地市",
    "clear_value": "明文号码",
    "clear_imeis": "明文 IMEI",
    "clear_id_number": "明文证件号",
    "clear_lines": "明文名下号码",
}


@dataclass(frozen=True)
class Handover:
    """A package (``archive``, as the agency receives it): kept, encrypted, at ``path``
    once the session that made it commits."""

    path: Path
    manifest: dict[str, Any]
    archive: bytes


def _to_reveal(subject: dict[str, Any], where: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """The package's clear columns → the tokens of a case whose clear values fill them, with
    a reason (``where``: where each line's device is, :func:`findings.line_whereabouts`)."""
    found = where.get(subject.get("line") or "", {})
    return {
        "clear_value": [subject["line"]] if subject.get("line") else [],
        "clear_imeis": list(found.get("imeis", [])),
        "clear_id_number": [subject["id_number"]] if subject.get("id_number") else [],
        "clear_lines": list(subject.get("lines") or []),
    }


def _rows(
    session: Session,
    settings: Settings,
    principal: Principal,
    chosen: list[Case],
    where: dict[str, dict[str, Any]],
    reveal_reason: str | None,
) -> list[dict[str, Any]]:
    rows = []
    for case in chosen:
        subject = case.subject
        found = where.get(subject.get("line") or "", {})
        reveal = (
            functools.partial(
                reidentify,
                session,
                settings=settings,
                principal=principal,
                reason=reveal_reason,
                context={"hand-over of case": case.id},
                case_id=case.id,
            )
            if reveal_reason
            else None
        )
        clear = {
            column: "; ".join(reveal(token=t) for t in tokens) if reveal else ""
            for column, tokens in _to_reveal(subject, where).items()
        }
        rows.append(
            {
                "case_id": case.id,
                "type": subject.get("type", ""),
                "reference": subject.get("line")
                or subject.get("domain")
                or subject.get("id_number", ""),
                "operator": subject.get("operator", ""),
                "period": subject.get("period", ""),
                "score": subject.get("score", ""),
                "signals": ", ".join(subject.get("rules") or subject.get("signals") or []),
                "evidence": "; ".join(
                    [f"{k}={v:g}" for k, v in (subject.get("evidence") or {}).items()]
                    + list(subject.get("reasons") or [])
                ),
                "model_probability": subject.get("probability", ""),
                "model_reasons": ", ".join(subject.get("model_reasons") or []),
                "outlet_id": subject.get("outlet_id", ""),
                "id_number": subject.get("id_number") or "",
                "activated_at": subject.get("activated_at") or "",
                "home_city": subject.get("home_city") or "",
                "lines": "; ".join(subject.get("lines") or []),
                "imeis": "; ".join(found.get("imeis", [])),
                "device_tacs": "; ".join(found.get("device_tacs", [])),
                "main_cell": found.get("main_cell", ""),
                "longitude": found.get("longitude", ""),
                "latitude": found.get("latitude", ""),
                "city_code": found.get("city_code", ""),
                **clear,
            }
        )
    return rows


def export(
    session: Session,
    *,
    settings: Settings,
    principal: Principal,
    case_ids: list[int],
    agency_code: str,
    note: str,
    reveal_reason: str | None = None,
) -> Handover:
    """Refer the cases to ``agency_code`` and write the signed package to the agency's store.

    Cases must be in review, or already referred to the same agency (a
    re-issue). Nothing is moved if any case cannot be handed over. A blank
    ``reveal_reason`` asks for no clear values; another is checked (the permission, that
    it says why, and that the clear values the package would hold fit in the user's daily
    limit) before anything moves, and a refusal audited. The note and the reason are kept
    with numbers in them masked. The package is written under a hidden
    name and takes its own when ``session`` commits, with the cases' moves and the
    audit records, so a hand-over that is rolled back leaves no package behind.
    """
    principal.require(Permission.CASES_MANAGE)
    note = note_as_stored(note)
    reveal_reason = (reveal_reason or "").strip() or None
    agency = session.scalar(select(Agency).where(Agency.code == agency_code))
    if agency is None:
        raise NotFoundError(N_("no agency {agency}").format(agency=repr(agency_code)))
    if agency.kind != POLICE:
        # Suspect lines, devices and domains are the police's to act on; a health commission
        # or a city government would receive subscribers' data it has no use for.
        raise InputError(
            N_("fraud cases are handed over to a police agency; {agency} is not one").format(
                agency=agency.code
            )
        )
    if not case_ids:
        raise InputError(N_("name at least one case to hand over"))
    chosen = [get_case(session, principal=principal, case_id=i) for i in case_ids]
    for case in chosen:
        again = case.status == CaseStatus.REFERRED.value and case.agency_id == agency.id
        if case.status != CaseStatus.IN_REVIEW.value and not again:
            raise ConflictError(
                N_("case {id} is {status}; only cases in review can be handed over").format(
                    id=case.id, status=case.status
                )
            )
    # Where each line's device is, read from the lake before anything moves: with a reason,
    # the clear values to reveal are counted against the daily limit first.
    lines = {
        c.subject["line"]: str(c.subject.get("period", "")) for c in chosen if c.subject.get("line")
    }
    where = findings.line_whereabouts(session, settings, lines)
    if reveal_reason is not None:
        reveal_reason = may_reidentify(
            session,
            settings=settings,
            principal=principal,
            reason=reveal_reason,
            values=sum(len(t) for c in chosen for t in _to_reveal(c.subject, where).values()),
            objects=[f"case:{c.id}" for c in chosen] + [f"agency:{agency.code}"],
            context={"for": "hand-over"},
        )
    # Each move is a compare-and-set, so of two hand-overs of one case at once the second
    # fails here, before it has written anything, instead of referring it twice.
    for case in chosen:
        if case.status == CaseStatus.IN_REVIEW.value:
            cases.move(
                session,
                principal=principal,
                workflow=WORKFLOW,
                case_id=case.id,
                to=CaseStatus.REFERRED,
                note=note,
                handler=agency.name,
            )
            case.agency_id = agency.id
    rows = _rows(session, settings, principal, chosen, where, reveal_reason)
    created = datetime.now(UTC).replace(microsecond=0)
    manifest = {
        "kind": "telereg fraud hand-over",
        "agency": agency.code,
        "agency_name": agency.name,
        "created_at": created.isoformat(timespec="seconds"),
        "created_by": principal.name,
        "note": note,
        "cases": [c.id for c in chosen],
        "clear_values": reveal_reason is not None,
        # why clear numbers were added, as the audit log has it
        "reveal_reason": reveal_reason,
    }
    name = f"handover-{created:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.zip"
    path = package_path(settings, agency.code, name)
    archive = package_bytes(rows, manifest, settings.secret("handover_key"))
    manifest_sha256, signature = signed_facts(archive)
    staged = _owner_only_file(
        path.with_name(f".{name}.staged"), _sealed(settings, agency.code, name, archive)
    )
    _publish_on_commit(session, staged, path)
    # What it holds, for the list of packages: kept (and rolled back) with the package.
    session.add(
        HandoverPackage(
            agency=agency.code,
            name=name,
            cases=[c.id for c in chosen],
            created_at=created,
            created_by=principal.name,
            clear_values=reveal_reason is not None,
            size=len(archive),
            manifest_sha256=manifest_sha256,
            signature=signature,
        )
    )
    audit.record(
        session,
        actor=principal.name,
        action=casework.HANDOVER_ACTION,
        objects=[f"case:{c.id}" for c in chosen] + [f"agency:{agency.code}"],
        reason=note,
        detail={"file": path.name, "clear_values": reveal_reason is not None},
    )
    return Handover(path, manifest, archive)


def _publish_on_commit(session: Session, staged: Path, path: Path) -> None:
    """Give the staged package its name when ``session`` commits; remove it when the
    transaction it was made in (a savepoint, or one around it) is rolled back."""
    made_in = session.get_nested_transaction() or session.get_transaction()
    enclosing = []
    while made_in is not None:
        enclosing.append(made_in)
        made_in = made_in.parent

    def publish(_: Session) -> None:
        if staged.exists():
            staged.replace(path)

    def discard(_: Session, rolled_back: SessionTransaction) -> None:
        if any(rolled_back is t for t in enclosing):
            staged.unlink(missing_ok=True)

    event.listen(session, "after_commit", publish, once=True)
    event.listen(session, "after_soft_rollback", discard)


def package_bytes(rows: list[dict[str, Any]], manifest: dict[str, Any], key: bytes) -> bytes:
    """The signed and sealed package of ``rows``, described by ``manifest``."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: _safe(v) for k, v in row.items()} for row in rows)
    files = {"cases.csv": text.getvalue().encode("utf-8-sig"), "cases.xlsx": _xlsx(rows)}
    signed = {**manifest, "files": {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}}
    files["manifest.json"] = json.dumps(
        signed, ensure_ascii=False, indent=1, sort_keys=True
    ).encode()
    signature = hmac.new(key, files["manifest.json"], hashlib.sha256).hexdigest()
    made = io.BytesIO()
    with zipfile.ZipFile(made, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(name, data)
        package.writestr("manifest.sig", signature)
        package.comment = b"0" * _SEAL_CHARS
    # The archive is sealed too: the zip comment, its last bytes, becomes the HMAC of every
    # byte before it (headers, dates and flags included), so no byte changes unnoticed.
    body = made.getvalue()[:-_SEAL_CHARS]
    return body + hmac.new(key, body, hashlib.sha256).hexdigest().encode()


def write_package(
    out: Path, rows: list[dict[str, Any]], manifest: dict[str, Any], key: bytes
) -> Path:
    """:func:`package_bytes` written to ``out``, readable by its owner only."""
    return _owner_only_file(out, package_bytes(rows, manifest, key))


def _owner_only_file(out: Path, data: bytes) -> Path:
    """``data`` at ``out``, whole or not at all, in owner-only directories: a package may
    hold clear numbers (the data dir may have been made readable to others before telereg
    first ran in it)."""
    for folder in (out.parent.parent, out.parent):
        folder.mkdir(mode=0o700, exist_ok=True)
    staged = out.with_name(f".{out.name}.tmp")
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        staged.replace(out)
    finally:
        staged.unlink(missing_ok=True)
    return out


#: The archive's seal: a hex HMAC-SHA256 in the zip comment, the file's last bytes.
_SEAL_CHARS = 64


def verify(path: Path, key: bytes) -> dict[str, Any]:
    """The package's manifest, if every byte matches the seal, every file the manifest and
    the manifest its signature (see :func:`verify_archive`)."""
    try:
        archive = path.read_bytes()
    except OSError as err:
        raise SignatureError(
            N_("cannot read the package: {detail}").format(detail=err), where=str(path)
        ) from err
    return verify_archive(archive, key, where=str(path))


def verify_archive(archive: bytes, key: bytes, *, where: str) -> dict[str, Any]:
    """The manifest of a package's bytes, if every byte matches the seal, every file the
    manifest and the manifest its signature.

    The package must hold exactly the signed files and the signature, each once: an
    added file, or a second copy of one under the same name, fails.
    """
    expected_names = sorted((*_DATA_FILES, "manifest.sig"))
    if not archive.startswith(b"PK\x03\x04"):
        raise SignatureError(
            N_("not a hand-over package: a package is a ZIP archive with a seal"),
            where=where,
        )
    body, seal = archive[:-_SEAL_CHARS], archive[-_SEAL_CHARS:]
    sealed = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    if len(archive) <= _SEAL_CHARS or not hmac.compare_digest(sealed, seal):
        raise SignatureError(
            N_(
                "the package does not match its seal: a byte was changed, added or removed, "
                "or it was signed with another key (TELEREG_HANDOVER_KEY)"
            ),
            where=where,
        )
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as package:
            names = sorted(package.namelist())
            if names != expected_names:
                raise SignatureError(
                    N_("a hand-over package holds {expected}, not {found}").format(
                        expected=", ".join(expected_names), found=", ".join(names) or "-"
                    ),
                    where=where,
                )
            content = {n: package.read(n) for n in names}
    # (a flipped flag makes the zip module say the entry is encrypted, or compressed in a
    # way it does not know: a changed package all the same)
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        ValueError,
    ) as err:
        raise SignatureError(
            N_("not a readable hand-over package: {detail}").format(detail=err), where=where
        ) from err
    expected = hmac.new(key, content["manifest.json"], hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(expected, content["manifest.sig"].strip()):
        raise SignatureError(N_("the manifest does not match its signature"), where=where)
    manifest: dict[str, Any] = json.loads(content["manifest.json"])
    for name, digest in manifest["files"].items():
        if hashlib.sha256(content[name]).hexdigest() != digest:
            raise SignatureError(
                N_("{name} was changed after signing").format(name=name), where=where
            )
    return manifest


#: A package brought back for checking is refused above this size (one of a thousand cases,
#: with clear numbers, is under a megabyte).
MAX_PACKAGE_BYTES = 64 << 20


def check_package(
    session: Session, settings: Settings, *, principal: Principal, archive: bytes, filename: str
) -> dict[str, Any]:
    """A package brought back to be checked (a liaison's copy, a file passed on to a
    prosecutor): its manifest, if it is intact and was handed to an agency the principal
    may see (analysts: any; a liaison: its own).

    The installation's key checks it, so a liaison needs no key of its own. Audited either
    way, with the verdict: a refused check's entry is kept though its error rolls the
    request back (:func:`audit.record_refusal`).
    """
    principal.require(Permission.CASES_READ_ASSIGNED)
    named = f"handover:{Path(filename).name[:120] or '-'}"
    try:
        if len(archive) > MAX_PACKAGE_BYTES:
            raise InputError(
                N_("a hand-over package is at most {size} MB").format(size=MAX_PACKAGE_BYTES >> 20),
                where=filename,
            )
        manifest = verify_archive(archive, settings.secret("handover_key"), where=filename)
        agency = str(manifest.get("agency", ""))
        if not (principal.can(Permission.CASES_MANAGE) or principal.agency_code == agency):
            raise PermissionDeniedError(
                N_("this package was handed over to another agency"), where=filename
            )
    except TeleregError as err:
        audit.record_refusal(
            session,
            actor=principal.name,
            action="fraud.handover.checked",
            objects=[named],
            detail={"intact": False, "why": str(err)[:300]},
        )
        raise
    audit.record(
        session,
        actor=principal.name,
        action="fraud.handover.checked",
        objects=[named, *(f"case:{c}" for c in manifest.get("cases", []))],
        detail={"intact": True, "agency": agency},
    )
    return manifest


def record_disposal(
    session: Session, *, principal: Principal, case_id: int, disposal: str, note: str
) -> Case:
    """The agency's outcome for a referred case (the liaison of that agency, or an analyst)."""
    if not note.strip():
        raise InputError(N_("say what was done: a note is required with the disposal"))
    if disposal not in DISPOSALS:
        raise InputError(
            N_("disposal must be one of {allowed}, not {disposal}").format(
                allowed=", ".join(DISPOSALS), disposal=repr(disposal)
            )
        )
    case = get_case(session, principal=principal, case_id=case_id)
    kind = str(case.subject.get("type", ""))
    if disposal not in disposals_for(kind):
        raise InputError(
            N_("a {type} case cannot end with {disposal}; it can end with: {allowed}").format(
                type=kind, disposal=disposal, allowed=", ".join(disposals_for(kind))
            )
        )
    moved = cases.move(
        session,
        principal=principal,
        workflow=WORKFLOW,
        case_id=case.id,
        to=CaseStatus.RESOLVED,
        note=f"{disposal}: {note}",
        permission=Permission.CASES_REPORT_OUTCOME,
    )
    moved.outcome = disposal
    return moved


#: What a package kept encrypted begins with (one kept before they were, a ZIP archive,
#: begins with ``PK``).
_KEPT_SEALED = b"telereg sealed hand-over 1\n"


def _sealer(settings: Settings) -> Sealer:
    return Sealer(settings.secret("vault_key"))


def _sealed(settings: Settings, agency: str, name: str, archive: bytes) -> bytes:
    return _KEPT_SEALED + _sealer(settings).seal(f"handover:{agency}/{name}", archive)


def kept_archive(settings: Settings, path: Path) -> bytes:
    """The package kept at ``path``, as the agency receives it (decrypted; a package kept
    before packages were encrypted is read as it is)."""
    kept = path.read_bytes()
    if not kept.startswith(_KEPT_SEALED):
        return kept
    label = f"handover:{path.parent.name}/{path.name}"
    return _sealer(settings).open(label, kept[len(_KEPT_SEALED) :])


def is_package_name(agency: str, name: str) -> bool:
    """Whether ``agency`` and ``name`` can name a kept package (``handover-….zip``)."""
    return bool(_AGENCY.match(agency) and _PACKAGE.match(name))


def package_path(settings: Settings, agency: str, name: str) -> Path:
    if not is_package_name(agency, name):
        raise InputError(N_("not a hand-over package name"))
    return settings.data_dir / "handovers" / agency / name


def packages(session: Session, settings: Settings, *, principal: Principal) -> list[dict[str, Any]]:
    """Packages the principal may see: every agency's for analysts, its own for a liaison.
    Each names its cases, whether it was withdrawn (none of them is still the agency's:
    it can no longer be fetched by the agency) and when its file was purged under the
    retention policy (``purged_at``; its record is listed still).

    What a package holds is read from its record (:class:`HandoverPackage`), so listing
    opens no package; only one kept without a record (restored from a newer backup than
    the state DB, or put there by hand) is read itself.
    """
    root = settings.data_dir / "handovers"
    if principal.can(Permission.CASES_MANAGE):
        folders = {p.name for p in root.iterdir()} if root.exists() else set()
        agencies = sorted(folders | set(session.scalars(select(HandoverPackage.agency).distinct())))
    else:
        principal.require(Permission.CASES_READ_ASSIGNED)
        agencies = [principal.agency_code] if principal.agency_code else []
    kept = {
        (agency, path.name): path
        for agency in agencies
        for path in (root / agency).glob("handover-*.zip")
    }
    recorded = {
        (p.agency, p.name): p
        for p in session.scalars(
            select(HandoverPackage).where(HandoverPackage.agency.in_(agencies))
        )
    }
    # A purged package has a record and no file: it is listed all the same, as purged.
    named = set(kept) | {key for key, p in recorded.items() if p.purged_at is not None}
    in_order = sorted(sorted(named, key=lambda key: key[1], reverse=True), key=lambda k: k[0])
    # Which cases each listed agency holds now, read once for every package listed (by
    # agency: naming every listed package's cases would bind thousands of parameters).
    now_with = session.execute(
        select(Case.id, Agency.code)
        .join(Case.agency)
        .where(Agency.code.in_({agency for agency, _ in named}))
    )
    held_by = dict(now_with.all())
    listed = []
    for agency, name in in_order:
        path = kept.get((agency, name))
        held = recorded.get((agency, name))
        if held is None and path is not None:
            held = read_kept(settings, path)
        # (a package that cannot be read or opened is listed with no cases, so that one
        # damaged file does not hide the others)
        cases = list(held.cases) if held else []
        made = (
            held.created_at
            if held
            else datetime.fromtimestamp(path.stat().st_mtime if path else 0, UTC)
        )
        purged_at = held.purged_at if held else None
        listed.append(
            {
                "agency": agency,
                "name": name,
                "bytes": held.size if held else 0,
                "made": made.isoformat(timespec="seconds"),
                "cases": cases,
                "withdrawn": bool(cases) and all(held_by.get(i) != agency for i in cases),
                "purged_at": purged_at.isoformat(timespec="seconds") if purged_at else None,
            }
        )
    return listed


def read_kept(settings: Settings, path: Path) -> HandoverPackage | None:
    """What the package kept at ``path`` holds, read from the package itself (decrypted),
    as its record would keep it; nothing when it cannot be read or opened."""
    try:
        archive = kept_archive(settings, path)
        manifest = _manifest_of(archive)
        cases = [int(i) for i in manifest.get("cases") or []]
        made = manifest.get("created_at")
        created_at = (
            datetime.fromisoformat(made).astimezone(UTC)
            if made
            else datetime.fromtimestamp(path.stat().st_mtime, UTC)
        )
    except (
        OSError,
        ConfigurationError,
        AttributeError,
        KeyError,
        TypeError,
        ValueError,
        zipfile.BadZipFile,
    ):
        return None
    return HandoverPackage(
        agency=path.parent.name,
        name=path.name,
        cases=cases,
        created_at=created_at,
        created_by=str(manifest.get("created_by", ""))[:100],
        clear_values=bool(manifest.get("clear_values")),
        size=len(archive),
    )


def signed_facts(archive: bytes) -> tuple[str, str]:
    """The SHA-256 of a package's ``manifest.json`` and its ``manifest.sig`` (unchecked):
    what its record keeps to recognise a copy once the package itself is purged."""
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        manifest = package.read("manifest.json")
        signature = package.read("manifest.sig").decode("ascii").strip()
    return hashlib.sha256(manifest).hexdigest(), signature[:64]


#: What fetching a purged package answers (410), and what checking a copy of one adds.
PURGED = N_(
    "hand-over package {name} was removed on {date} (UTC) under the retention policy for "
    "hand-over packages; its record, its cases and the audit log are unchanged"
)
COPY_OF_PURGED = N_(
    "the installation's own copy of this package was removed on {date} (UTC) under the "
    "retention policy; the copy checked here is intact and its signature still holds"
)


def purged_at_of(session: Session, archive: bytes) -> datetime | None:
    """When the installation's copy of the package ``archive`` is a copy of was purged
    (none: it is kept, or the package is not known here)."""
    try:
        digest, _ = signed_facts(archive)
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None
    found = session.scalars(
        select(HandoverPackage.purged_at).where(
            HandoverPackage.manifest_sha256 == digest, HandoverPackage.purged_at.is_not(None)
        )
    )
    return found.first()


def _manifest_of(archive: bytes) -> dict[str, Any]:
    """The manifest a package's bytes hold (unchecked: see :func:`verify_archive`)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as package:
        manifest: dict[str, Any] = json.loads(package.read("manifest.json"))
    return manifest


#: A package with clear numbers fetched, under the four-eyes rule, by someone of the
#: administration other than its maker.
PACKAGE_FOR_ITS_MAKER = N_(
    "hand-over package {name} holds clear numbers approved for {maker}: under the four-eyes "
    "rule only its maker and the agency may fetch it"
)


def package_for(
    session: Session, settings: Settings, *, principal: Principal, agency: str, name: str
) -> bytes:
    """A package, as the agency receives it, if the principal may fetch it (another
    agency's does not exist).

    Both a fetch and a refused one are audited (the package may hold clear numbers); a
    refusal's entry is kept though its error rolls the request back
    (:func:`audit.record_refusal`).
    """
    shown = f"handover:{agency[:40]}/{name[:120]}"
    try:
        path = package_path(settings, agency, name)
        allowed = principal.can(Permission.CASES_MANAGE) or (
            principal.can(Permission.CASES_READ_ASSIGNED) and principal.agency_code == agency
        )
        if not allowed:
            raise NotFoundError(N_("no hand-over package {name}").format(name=name[:120]))
        record = session.scalar(
            select(HandoverPackage).where(
                HandoverPackage.agency == agency, HandoverPackage.name == name
            )
        )
        if record is not None and record.purged_at is not None:
            raise GoneError(PURGED.format(name=name, date=f"{record.purged_at:%Y-%m-%d}"))
        if not path.exists():
            raise NotFoundError(N_("no hand-over package {name}").format(name=name[:120]))
    except TeleregError as err:
        audit.record_refusal(
            session,
            actor=principal.name,
            action="fraud.handover.refused",
            objects=[shown],
            detail={"purged": True} if isinstance(err, GoneError) else None,
        )
        raise
    archive = kept_archive(settings, path)
    manifest = _manifest_of(archive)
    held = [int(i) for i in manifest.get("cases") or []]
    named = [shown, *(f"case:{i}" for i in held)]
    theirs = principal.agency_code == agency
    maker = str(manifest.get("created_by") or "")
    if (
        settings.reidentify_needs_approval
        and manifest.get("clear_values")
        and not theirs
        and principal.name != maker
    ):
        # Under the four-eyes rule the clear numbers it holds were approved for its maker:
        # another user of the administration would read them with no approval of their own.
        audit.record_refusal(
            session, actor=principal.name, action="fraud.handover.refused", objects=named
        )
        raise ApprovalRequiredError(PACKAGE_FOR_ITS_MAKER.format(name=name[:120], maker=maker))
    if not principal.can(Permission.CASES_MANAGE) and not _still_the_agencys(session, held, agency):
        # Every case of it was withdrawn: what it holds is no longer the agency's to act on.
        audit.record_refusal(
            session, actor=principal.name, action="fraud.handover.refused", objects=named
        )
        raise NotFoundError(
            N_("hand-over package {name} was withdrawn: none of its cases is your agency's").format(
                name=name[:120]
            )
        )
    # Its cases are named, so that each case's record (``audit list --object case:N``) shows
    # who fetched the package that holds it, clear numbers or not.
    audit.record(
        session,
        actor=principal.name,
        action="fraud.handover.fetched",
        objects=named,
        detail={"clear_values": bool(manifest.get("clear_values"))},
    )
    return archive


def _still_the_agencys(session: Session, case_ids: list[int], agency: str) -> bool:
    """Whether any of the cases is still handed to ``agency`` (not withdrawn from it)."""
    if not case_ids:
        return True
    query = select(Case.id).join(Case.agency).where(Case.id.in_(case_ids), Agency.code == agency)
    return session.scalars(query.limit(1)).first() is not None


def _safe(value: Any) -> Any:
    """Cells that a spreadsheet would run as formulas are prefixed with a quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _xlsx(rows: list[dict[str, Any]]) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    workbook.properties.created = workbook.properties.modified = datetime(2000, 1, 1)  # noqa: DTZ001
    sheet = workbook.create_sheet("cases")
    sheet.append([f"{COLUMN_TITLES[c]} ({c})" for c in COLUMNS])
    for row in rows:
        sheet.append([_safe(row[c]) for c in COLUMNS])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
