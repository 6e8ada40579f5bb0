"""Datasets the anti-fraud domain consumes."""

from __future__ import annotations

from telereg.core.privacy import IdentifierKind
from telereg.ingest.contracts import (
    CITY_CODE,
    IMEI,
    LATITUDE,
    LONGITUDE,
    Column,
    ColumnType,
    Contract,
    Reference,
)

CELLS = Contract(
    name="cells",
    domain="fraud",
    title="Cells",
    title_zh="小区工参",
    description="One row per radio cell: where it is and which site it belongs to.",
    columns=(
        Column(
            "cell_id",
            ColumnType.STRING,
            "Operator's cell identifier (ECGI/NCGI or local id).",
            "小区标识",
            pattern=r"[0-9A-Za-z_-]{4,32}",
            aliases=("小区标识", "cgi"),
        ),
        Column(
            "site_id",
            ColumnType.STRING,
            "Site (base station) the cell belongs to.",
            "站址编号",
            pattern=r"[0-9A-Za-z_-]{2,32}",
            aliases=("站址编号",),
        ),
        LONGITUDE,
        LATITUDE,
        CITY_CODE,
        Column(
            "technology",
            ColumnType.STRING,
            "Radio technology.",
            "制式",
            enum=("2G", "4G", "5G"),
            aliases=("制式",),
        ),
    ),
    unique=(("cell_id",),),
    coordinates=("longitude", "latitude"),
)

VOICE_CDR = Contract(
    name="voice_cdr",
    domain="fraud",
    title="Voice call detail records",
    title_zh="语音话单",
    description="One row per call leg seen by the operator's network in the period.",
    columns=(
        Column(
            "caller",
            ColumnType.STRING,
            "Calling number.",
            "主叫号码",
            pattern=r"\+?[0-9]{5,20}",
            max_length=24,
            identifier=IdentifierKind.PHONE,
            aliases=("主叫号码", "calling_number"),
        ),
        Column(
            "callee",
            ColumnType.STRING,
            "Called number.",
            "被叫号码",
            pattern=r"\+?[0-9]{3,20}",
            max_length=24,
            identifier=IdentifierKind.PHONE,
            aliases=("被叫号码", "called_number"),
        ),
        Column(
            "start_time",
            ColumnType.TIMESTAMP,
            "Call start, local time (Asia/Shanghai).",
            "开始时间",
            aliases=("开始时间", "start"),
        ),
        Column(
            "duration_s",
            ColumnType.INTEGER,
            "Call duration in seconds.",
            "通话时长（秒）",
            minimum=0,
            maximum=86400,
            aliases=("通话时长", "duration"),
        ),
        Column(
            "direction",
            ColumnType.STRING,
            "MO (originated) or MT (terminated).",
            "呼叫方向",
            enum=("MO", "MT"),
            aliases=("呼叫方向",),
        ),
        Column(
            "cell_id",
            ColumnType.STRING,
            "Serving cell at call start.",
            "小区标识",
            references=Reference("cells", "cell_id"),
            aliases=("小区标识",),
        ),
        Column(
            "imei",
            ColumnType.STRING,
            "Handset IMEI.",
            "IMEI",
            required=False,
            pattern=IMEI,
            identifier=IdentifierKind.IMEI,
        ),
    ),
    period_column="start_time",
)

CONTRACTS = (CELLS, VOICE_CDR)
