"""Datasets the anti-fraud domain consumes."""

from __future__ import annotations

from dataclasses import replace

from telereg.core.i18n import N_
from telereg.core.privacy import IdentifierKind
from telereg.ingest.contracts import (
    ADMIN_CODE,
    CITY_ADMIN_CODE,
    CITY_CODE,
    ID_NUMBER,
    IMEI,
    IMSI,
    LATITUDE,
    LONGITUDE,
    MOBILE_NUMBER,
    Column,
    ColumnType,
    Contract,
    Form,
    Reference,
    code_form,
    number_form,
)

#: Operators a counterpart number can belong to (OTHER: abroad, virtual operators, fixed).
PEER_OPERATORS = ("CMCC", "CUCC", "CTCC", "CBN", "OTHER")
#: The operators as CDR exports name them.
OPERATOR_NAMES = (
    ("中国移动", "CMCC"),
    ("移动", "CMCC"),
    ("中国联通", "CUCC"),
    ("联通", "CUCC"),
    ("中国电信", "CTCC"),
    ("电信", "CTCC"),
    ("中国广电", "CBN"),
    ("广电", "CBN"),
    ("其他", "OTHER"),
)
#: A host name: labels of letters, digits, hyphens or CJK characters (RE2 and Python syntax).
_DOMAIN_NAME = Form(
    r"([a-z0-9一-鿿]([a-z0-9一-鿿-]{0,61}[a-z0-9一-鿿])?\.)+[a-z一-鿿][a-z0-9一-鿿-]{1,62}",
    N_("a domain name in lower case"),
    "example.com",
)

#: A police case reference: a code, never a person's number (it goes into packages and
#: case titles as written).
_CASE_REFERENCE = Form(
    r"[0-9A-Za-z_/-]{1,40}",
    N_("a case reference of 1 to 40 letters, digits, -, _ or /"),
    "JQ2021110500001",
    refuses_personal_numbers=True,
)


def _phone(name: str, description: str, zh: str, *aliases: str, required: bool = True) -> Column:
    return Column(
        name,
        ColumnType.STRING,
        description,
        zh,
        required=required,
        pattern=MOBILE_NUMBER,
        max_length=24,
        identifier=IdentifierKind.PHONE,
        aliases=(zh, *aliases),
    )


CELLS = Contract(
    name="cells",
    domain="fraud",
    title="Cells",
    title_zh="小区工参",
    description="One row per radio cell: where it is and which site it belongs to.",
    description_zh="每行一个小区：位置及所属站址。",
    columns=(
        Column(
            "cell_id",
            ColumnType.STRING,
            "Operator's cell identifier (ECGI/NCGI or local id).",
            "小区标识",
            # (a 5G cell's NCI written in decimal has up to 11 digits, and may begin 13 to 19
            # as a mobile number does: a cell's own id is not taken for one)
            pattern=code_form(4, 32, example="CM5000123-1", personal_numbers_refused=False),
            aliases=("小区标识", "小区ID", "cgi"),
        ),
        Column(
            "site_id",
            ColumnType.STRING,
            "Site (base station) the cell belongs to.",
            "站址编号",
            pattern=code_form(2, 32, example="CM5000123"),
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
    description_zh="每行一条本网在该期间记录的通话话单（一个呼叫方向）。",
    columns=(
        Column(
            "caller",
            ColumnType.STRING,
            "Calling number.",
            "主叫号码",
            pattern=number_form(5, 20, example="03512345678"),
            max_length=24,
            identifier=IdentifierKind.PHONE,
            aliases=("主叫号码", "calling_number"),
        ),
        Column(
            "callee",
            ColumnType.STRING,
            "Called number.",
            "被叫号码",
            pattern=number_form(3, 20, example="10086"),
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
            aliases=("通话时长", "时长（秒）", "duration"),
        ),
        Column(
            "direction",
            ColumnType.STRING,
            "MO (originated) or MT (terminated).",
            "呼叫方向",
            enum=("MO", "MT"),
            labels=(("主叫", "MO"), ("呼出", "MO"), ("被叫", "MT"), ("呼入", "MT")),
            aliases=("呼叫方向",),
        ),
        Column(
            "cell_id",
            ColumnType.STRING,
            "Serving cell at call start.",
            "小区标识",
            references=Reference("cells", "cell_id"),
            aliases=("小区标识", "小区ID"),
        ),
        Column(
            "imei",
            ColumnType.STRING,
            "Handset IMEI.",
            "IMEI",
            required=False,
            pattern=IMEI,
            identifier=IdentifierKind.IMEI,
            kept_prefix=("imei_tac", 8),
        ),
        Column(
            "peer_operator",
            ColumnType.STRING,
            "Operator of the other party's number.",
            "对端运营商",
            required=False,
            enum=PEER_OPERATORS,
            labels=OPERATOR_NAMES,
            aliases=("对端运营商",),
        ),
        Column(
            "peer_province",
            ColumnType.STRING,
            "Province code (e.g. 140000) of the other party's number.",
            "对端归属省",
            required=False,
            pattern=replace(ADMIN_CODE, example="140000"),
            aliases=("对端归属省", "peer_home"),
        ),
    ),
    period_column="start_time",
)

SUBSCRIPTIONS = Contract(
    name="subscriptions",
    domain="fraud",
    title="Subscriptions",
    title_zh="用户入网信息",
    description="One row per mobile line: who registered it, where and how, and its state "
    "at the end of the period.",
    description_zh="每行一个手机号码：登记人、入网地点和方式，及期末状态。",
    columns=(
        _phone("phone", "The line's number.", "手机号码", "msisdn"),
        Column(
            "imsi",
            ColumnType.STRING,
            "SIM card identity.",
            "IMSI",
            pattern=IMSI,
            identifier=IdentifierKind.IMSI,
        ),
        Column(
            "id_number",
            ColumnType.STRING,
            "Resident ID number the line is registered to (real-name registration).",
            "证件号码",
            pattern=ID_NUMBER,
            identifier=IdentifierKind.ID_NUMBER,
            aliases=("证件号码", "身份证号"),
        ),
        Column(
            "outlet_id",
            ColumnType.STRING,
            "Sales outlet (business hall, agent) that sold the card.",
            "营业网点",
            pattern=code_form(2, 32, example="TY-YYT-0012"),
            aliases=("营业网点", "网点编码"),
        ),
        Column(
            "channel",
            ColumnType.STRING,
            "Sales channel.",
            "渠道类型",
            enum=("own_store", "agent", "online", "enterprise"),
            labels=(
                ("自有营业厅", "own_store"),
                ("自营厅", "own_store"),
                ("代理商", "agent"),
                ("代理", "agent"),
                ("线上", "online"),
                ("网上营业厅", "online"),
                ("政企", "enterprise"),
            ),
            aliases=("渠道类型",),
        ),
        Column(
            "activated_at",
            ColumnType.TIMESTAMP,
            "Activation time, local time.",
            "入网时间",
            aliases=("入网时间",),
        ),
        Column(
            "card_type",
            ColumnType.STRING,
            "Personal, enterprise or IoT card.",
            "卡类型",
            enum=("personal", "enterprise", "iot"),
            labels=(
                ("个人", "personal"),
                ("企业", "enterprise"),
                ("政企", "enterprise"),
                ("物联网", "iot"),
            ),
            aliases=("卡类型",),
        ),
        Column(
            "home_city",
            ColumnType.STRING,
            "City where the card was registered.",
            "归属地市",
            pattern=CITY_ADMIN_CODE,
            references=Reference("region:city", "code"),
            aliases=("归属地市",),
        ),
        Column(
            "status",
            ColumnType.STRING,
            "State at the end of the period.",
            "状态",
            enum=("active", "suspended", "cancelled"),
            labels=(
                ("正常", "active"),
                ("在网", "active"),
                ("停机", "suspended"),
                ("销户", "cancelled"),
                ("已销户", "cancelled"),
                ("拆机", "cancelled"),
            ),
            aliases=("状态",),
        ),
    ),
    unique=(("phone",),),
)

SMS = Contract(
    name="sms",
    domain="fraud",
    title="SMS records",
    title_zh="短信话单",
    description="One row per short message sent or received by the operator's subscribers.",
    description_zh="每行一条本网用户收发的短信。",
    columns=(
        _phone("sender", "Sending number.", "发送号码"),
        Column(
            "receiver",
            ColumnType.STRING,
            "Receiving number (service numbers may be short).",
            "接收号码",
            pattern=number_form(3, 20, example="10086"),
            max_length=24,
            identifier=IdentifierKind.PHONE,
            aliases=("接收号码",),
        ),
        Column(
            "sent_at",
            ColumnType.TIMESTAMP,
            "Time sent, local time.",
            "发送时间",
            aliases=("发送时间",),
        ),
        Column(
            "direction",
            ColumnType.STRING,
            "MO (sent) or MT (received).",
            "方向",
            enum=("MO", "MT"),
            labels=(("发送", "MO"), ("上行", "MO"), ("接收", "MT"), ("下行", "MT")),
            aliases=("方向",),
        ),
    ),
    period_column="sent_at",
)

DATA_SESSIONS = Contract(
    name="data_sessions",
    domain="fraud",
    title="Data usage per line and day",
    title_zh="上网流量日汇总",
    description="Mobile data volume per line, day and application category (optional data).",
    description_zh="每个号码每天每类应用的移动数据流量（可选数据）。",
    columns=(
        _phone("phone", "The line's number.", "手机号码"),
        Column("day", ColumnType.DATE, "Day of use.", "日期", aliases=("日期",)),
        Column(
            "bytes",
            ColumnType.INTEGER,
            "Bytes up and down.",
            "流量（字节）",
            minimum=0,
            aliases=("流量",),
        ),
        Column(
            "app_category",
            ColumnType.STRING,
            "Application category (video, chat, payment, …).",
            "应用类别",
            required=False,
            aliases=("应用类别",),
        ),
    ),
    period_column="day",
)

POLICE_FEEDBACK = Contract(
    name="police_feedback",
    administration_only=True,
    domain="fraud",
    title="Police feedback",
    title_zh="公安反馈",
    description="Numbers, handsets and domains the police confirmed as used for fraud. "
    "Each row gives at least one of phone, imei or domain.",
    description_zh="公安确认涉诈的号码、终端和域名。每行至少给出号码、IMEI 或域名之一。",
    columns=(
        _phone("phone", "Confirmed fraud number.", "涉案号码", required=False),
        Column(
            "imei",
            ColumnType.STRING,
            "Confirmed fraud handset or gateway.",
            "涉案IMEI",
            required=False,
            pattern=IMEI,
            identifier=IdentifierKind.IMEI,
            aliases=("涉案imei",),
        ),
        Column(
            "domain",
            ColumnType.STRING,
            "Confirmed fraud domain.",
            "涉案域名",
            required=False,
            pattern=_DOMAIN_NAME,
            aliases=("涉案域名",),
        ),
        Column(
            "case_reference",
            ColumnType.STRING,
            "The police case reference.",
            "案件编号",
            pattern=_CASE_REFERENCE,
            max_length=40,
            aliases=("案件编号",),
        ),
        Column(
            "confirmed_on", ColumnType.DATE, "Date confirmed.", "确认日期", aliases=("确认日期",)
        ),
        Column(
            "fraud_type",
            ColumnType.STRING,
            "Kind of fraud (e.g. impersonating police, investment, loans).",
            "诈骗类型",
            required=False,
            aliases=("诈骗类型",),
        ),
    ),
)

OBSERVED_DOMAINS = Contract(
    name="observed_domains",
    domain="fraud",
    title="Observed domains",
    title_zh="监测域名",
    description="Domains seen in resolver logs or reported by users in the period.",
    description_zh="该期间解析日志中出现或用户举报的域名。",
    columns=(
        Column(
            "domain",
            ColumnType.STRING,
            "The domain name, lower case (IDN in Unicode or xn-- form).",
            "域名",
            pattern=_DOMAIN_NAME,
            aliases=("域名",),
        ),
        Column("first_seen", ColumnType.DATE, "First seen.", "首次发现", aliases=("首次发现",)),
        Column(
            "query_count",
            ColumnType.INTEGER,
            "Resolver queries in the period.",
            "解析次数",
            minimum=0,
            aliases=("解析次数",),
        ),
        Column(
            "source",
            ColumnType.STRING,
            "Where it was seen.",
            "来源",
            enum=("resolver", "user_report", "operator_report"),
            labels=(
                ("解析日志", "resolver"),
                ("用户举报", "user_report"),
                ("运营商报送", "operator_report"),
            ),
            aliases=("来源",),
        ),
    ),
    unique=(("domain",),),
)

CONTRACTS = (CELLS, VOICE_CDR, SUBSCRIPTIONS, SMS, DATA_SESSIONS, POLICE_FEEDBACK, OBSERVED_DOMAINS)
