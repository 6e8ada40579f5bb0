"""Lookalike fraud domains: hand-worked scores against the shipped protected names."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from telereg.core.errors import InputError
from telereg.domains.fraud.lookalike import (
    KINDS,
    MAX_SCORE,
    PROTECTED_NAMES_FILE,
    SCORE_FIELDS,
    DomainScore,
    Protected,
    load_protected,
    score_domain,
    score_domains,
    skeletons,
)

AS_OF = date(2025, 6, 30)
OLD = date(2023, 1, 1)
NEW = AS_OF - timedelta(days=5)
CYRILLIC_ALIPAY = "\N{CYRILLIC SMALL LETTER A}lipay"


@pytest.fixture(scope="module")
def protected() -> tuple[Protected, ...]:
    return load_protected()


def score(
    domain: str, protected: tuple[Protected, ...], first_seen: date | None = OLD
) -> DomainScore:
    return score_domain(domain, first_seen=first_seen, as_of=AS_OF, protected=protected)


def codes(result: DomainScore) -> list[str]:
    return [reason.code for reason in result.reasons]


@pytest.mark.parametrize("domain", ["baidu.com", "sina.com.cn", "icbc.com.cn", "www.icbc.com.cn"])
def test_well_known_and_official_domains_are_low(domain, protected):
    result = score(domain, protected, first_seen=NEW)
    assert result.level == "low"
    assert result.brand is None


@pytest.mark.parametrize(
    ("domain", "brand", "official"),
    [
        ("icbc.com.cn", "icbc", "icbc.com.cn"),
        ("WWW.ICBC.COM.CN.", "icbc", "icbc.com.cn"),
        ("pbservice.alipay.com", "alipay", "alipay.com"),
        ("www.shanxi.gov.cn", "gov", "gov.cn"),
    ],
)
def test_official_domains_and_their_subdomains_score_zero(domain, brand, official, protected):
    result = score(domain, protected, first_seen=NEW)
    assert result.score == 0.0
    assert [(r.code, r.detail) for r in result.reasons] == [("official", f"{brand}: {official}")]


def test_every_official_domain_is_recognised(protected):
    for row in protected:
        for domain in row.official_domains:
            assert codes(score(f"www.{domain}", protected)) == ["official"], domain


def test_registrable_part_knows_chinese_second_levels(protected):
    assert score("a.b.sina.com.cn", protected).registrable == "sina.com.cn"
    assert score("login.example.org.cn", protected).registrable == "example.org.cn"
    assert score("m.example.com", protected).registrable == "example.com"
    # gov.cn is itself a public suffix: each government site is its own registrable name.
    assert score("www.taiyuan.gov.cn", protected).registrable == "taiyuan.gov.cn"


def test_impersonation_on_a_risky_tld_is_high(protected):
    result = score("icbc-kefu.top", protected)
    # 45 (impersonation) + 15 (.top) = 60: high even before it is new.
    assert result.brand == "icbc"
    assert codes(result) == ["impersonation", "risky_tld"]
    assert result.score == 60.0
    assert result.level == "high"
    assert result.reasons[0].detail == "icbc: 'icbc' in 'icbc-kefu'"
    assert result.reasons[1].detail == ".top"
    assert score("icbc-kefu.top", protected, first_seen=NEW).score == 75.0


@pytest.mark.parametrize(
    ("domain", "brand"),
    [
        ("zhifubao-kefu.com", "alipay"),
        ("gongan-fanzha.cc", "gongan"),
        ("icbc-verify.top", "icbc"),
        ("icbc95588.top", "icbc"),
        ("myicbc.top", "icbc"),
        ("cmbchina-dk.top", "cmb"),  # the longer keyword wins over Minsheng's cmbc
        ("12306-tuipiao.vip", "12306"),
        ("www.alipay.com.verify-login.top", "alipay"),
        ("支付宝客服.com", "alipay"),
        # the short names and initials people use
        ("建设银行.com", "ccb"),
        ("建行-客服.cn", "ccb"),
        ("农业银行-退款.top", "abc"),
        ("反诈中心-app.top", "fanzha"),
        ("zfb-kefu.com", "alipay"),
    ],
)
def test_impersonation_names_the_brand(domain, brand, protected):
    result = score(domain, protected)
    assert result.brand == brand
    assert "impersonation" in codes(result)


@pytest.mark.parametrize(
    "domain",
    ["infrastructure.com", "bocai.com", "mygovernment.com", "施工行业.com", "人行道.com"],
)
def test_short_keywords_do_not_match_inside_words(domain, protected):
    assert score(domain, protected).brand is None


def test_every_keyword_leads_to_its_own_brand(protected):
    for row in protected:
        for keyword in row.keywords:
            assert score(f"{keyword}-kefu.top", protected).brand == row.name, keyword


def test_typosquat_one_edit_from_an_official_name(protected):
    result = score("alipey.com", protected)
    assert result.brand == "alipay"
    assert codes(result) == ["typosquat"]
    assert result.reasons[0].detail == "alipay: 'alipey' is 1 edit(s) from alipay.com"
    assert result.score == 45.0
    assert result.level == "medium"


def test_typosquat_two_edits_and_doubled_letters(protected):
    two = score("alpiey.com", protected)  # transposed "ip" (1) and a→e (1)
    assert (two.brand, codes(two), two.score) == ("alipay", ["typosquat"], 30.0)
    doubled = score("icbcc.com.cn", protected)
    assert doubled.brand == "icbc"
    assert codes(doubled) == ["typosquat"]


def test_typosquat_needs_long_enough_names(protected):
    # mit is one edit from miit, but three letters have too many innocent neighbours.
    assert score("mit.edu", protected).brand is None
    # Numbers next to a service number are other service numbers.
    assert score("12307.cn", protected).brand is None


def test_homoglyph_cyrillic_a_in_punycode(protected):
    assert CYRILLIC_ALIPAY.encode("punycode") == b"lipay-3ve"
    result = score("xn--lipay-3ve.com", protected)
    assert result.brand == "alipay"
    assert codes(result) == ["homoglyph"]
    assert result.reasons[0].detail == f"alipay: '{CYRILLIC_ALIPAY}' reads as 'alipay'"
    assert result.score == 60.0
    assert result.level == "high"
    assert result.registrable == "xn--lipay-3ve.com"


def test_unicode_and_punycode_forms_score_alike(protected):
    unicode_form = score(f"{CYRILLIC_ALIPAY}.com", protected)
    punycode_form = score("xn--lipay-3ve.com", protected)
    assert unicode_form.registrable == punycode_form.registrable
    assert unicode_form.reasons == punycode_form.reasons


def test_xn_labels_are_decoded_anywhere(protected):
    # xn--fiqs8s is 中国; the brand sits in an ascii label beside it.
    result = score("icbc-kefu.xn--fiqs8s", protected)
    assert result.brand == "icbc"
    assert result.registrable == "icbc-kefu.xn--fiqs8s"


@pytest.mark.parametrize(
    ("domain", "brand"),
    [
        ("a1ipay.com", "alipay"),  # digit one for l
        ("1cbc-kefu.top", "icbc"),  # digit one for i
        ("rneituan.com", "meituan"),  # rn for m
        ("t\N{CYRILLIC SMALL LETTER A}\N{GREEK SMALL LETTER OMICRON}bao-kefu.shop", "taobao"),
        ("\N{LATIN SMALL LETTER A WITH GRAVE}lipay.com", "alipay"),
    ],
)
def test_homoglyph_variants(domain, brand, protected):
    result = score(domain, protected)
    assert result.brand == brand
    assert codes(result)[0] == "homoglyph"


def test_skeletons_read_lookalikes():
    assert skeletons("a1ipay") == ("alipay", "aiipay")
    assert skeletons(CYRILLIC_ALIPAY) == ("alipay",)
    assert skeletons("rnvv0") == ("mwo",)


def test_random_name_on_risky_tld(protected):
    result = score("k3j9qz7x2vwp.xyz", protected)
    assert result.brand is None
    assert codes(result) == ["entropy", "digits", "risky_tld"]
    # Twelve distinct characters: log2(12) = 3.58 bits each.
    assert result.reasons[0].detail == "'k3j9qz7x2vwp': 3.58 bits per character"
    assert result.reasons[1].detail == "4 digits in 'k3j9qz7x2vwp'"
    assert result.score == 30.0
    assert result.level == "low"


def test_pronounceable_names_are_not_random(protected):
    assert "entropy" not in codes(score("stackoverflow.com", protected))
    assert "entropy" not in codes(score("gongshangxinwen.com", protected))


def test_hyphens_and_deep_subdomains(protected):
    assert codes(score("pay-now-fast.com", protected)) == ["hyphens"]
    assert codes(score("a.b.c.example.com", protected)) == ["deep_subdomain"]
    assert codes(score("a.b.example.com.cn", protected)) == ["deep_subdomain"]
    assert codes(score("www.example.com.cn", protected)) == []  # com.cn counts as one label


def test_new_within_thirty_days(protected):
    assert codes(score("taiyuanmeishi.com", protected, first_seen=AS_OF)) == ["new"]
    day_30 = score("taiyuanmeishi.com", protected, first_seen=AS_OF - timedelta(days=30))
    assert day_30.reasons[0].detail == "first seen 2025-05-31, 30 days before 2025-06-30"
    assert codes(score("taiyuanmeishi.com", protected, AS_OF - timedelta(days=31))) == []
    assert codes(score("taiyuanmeishi.com", protected, AS_OF + timedelta(days=1))) == []
    assert codes(score("taiyuanmeishi.com", protected, first_seen=None)) == []


def test_ordinary_new_names_stay_below_high(protected):
    assert score("taiyuanmeishi.com", protected, first_seen=NEW).level == "low"
    worst = score("q7x9k2z8w3vb.b-c-d.e.f.com", protected, first_seen=NEW)
    assert worst.brand is None
    assert worst.level in {"low", "medium"}


def test_brand_on_risky_tld_that_is_new_is_high_and_capped(protected):
    result = score("1cbc-95588-kefu.a.b.top", protected, first_seen=NEW)
    # 60 homoglyph + 5 digits + 5 hyphens + 5 deep + 15 .top + 15 new = 105, capped.
    assert result.score == 100.0
    assert result.level == "high"
    assert result.registrable == "b.top"


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "   ",
        "localhost",
        "http://icbc.com.cn/login",
        "1.2.3.4",
        "a..com",
        "-bad.com",
        "bad-.com",
        "bad_label.com",
        "空 格.com",
        "xn--zzzz.com",
        "xn--.com",
        "x" * 64 + ".com",
        ".".join(["abcdefghi"] * 30) + ".com",
    ],
)
def test_invalid_names_are_low_and_do_not_raise(domain, protected):
    result = score(domain, protected, first_seen=NEW)
    assert (result.score, result.level, result.brand, result.registrable) == (0.0, "low", None, "")
    assert codes(result) == ["invalid"]


def _observed(rows: list[tuple[str | None, date | None, int]]) -> pa.Table:
    return pa.table(
        {
            "domain": pa.array([r[0] for r in rows], pa.string()),
            "first_seen": pa.array([r[1] for r in rows], pa.date32()),
            "query_count": pa.array([r[2] for r in rows], pa.int64()),
            "source": pa.array(["resolver"] * len(rows), pa.string()),
            "note": pa.array([f"row {i}" for i in range(len(rows))], pa.string()),
        }
    )


def test_score_domains_adds_columns_and_sorts(protected):
    table = _observed(
        [
            ("baidu.com", OLD, 90_000),
            ("icbc-kefu.top", NEW, 10),
            ("not a domain", None, 5),
            ("alipey.com", OLD, 300),
            ("zhifubao-kefu.com", OLD, 200),
            (None, None, 1),
        ]
    )
    result = score_domains(table, as_of=AS_OF, protected=protected)
    assert result.schema.names == [*table.schema.names, *(f.name for f in SCORE_FIELDS)]
    for field in SCORE_FIELDS:
        assert result.schema.field(field.name).type == field.type
    rows = result.to_pylist()
    # alipey (typosquat) and zhifubao-kefu (impersonation) tie at 45: more queries first.
    assert [r["domain"] for r in rows[:4]] == [
        "icbc-kefu.top",
        "alipey.com",
        "zhifubao-kefu.com",
        "baidu.com",
    ]
    assert [r["note"] for r in rows[:2]] == ["row 1", "row 3"]
    top = rows[0]
    assert (top["registrable"], top["score"], top["level"], top["brand"]) == (
        "icbc-kefu.top",
        75.0,
        "high",
        "icbc",
    )
    assert top["reasons"][0] == {
        "code": "impersonation",
        "detail": "icbc: 'icbc' in 'icbc-kefu'",
        "points": 45.0,
    }
    assert [r["code"] for r in top["reasons"]] == ["impersonation", "risky_tld", "new"]
    assert rows[3]["brand"] is None
    invalid = [r for r in rows if r["reasons"] and r["reasons"][0]["code"] == "invalid"]
    assert len(invalid) == 2
    assert all(r["score"] == 0.0 and r["level"] == "low" for r in invalid)


def test_score_domains_defaults_and_edge_cases():
    empty = score_domains(_observed([]), as_of=AS_OF)
    assert empty.num_rows == 0
    assert empty.schema.names[-len(SCORE_FIELDS) :] == [f.name for f in SCORE_FIELDS]
    stamped = pa.table(
        {
            "domain": ["icbc-kefu.top"],
            "first_seen": pa.array([datetime(2025, 6, 29, 8, 0, tzinfo=UTC)], pa.timestamp("s")),
        }
    )
    assert score_domains(stamped, as_of=AS_OF).column("score").to_pylist() == [75.0]
    with pytest.raises(InputError, match="domain"):
        score_domains(pa.table({"name": ["icbc-kefu.top"]}), as_of=AS_OF)
    with pytest.raises(InputError, match="first_seen"):
        score_domains(
            pa.table({"domain": ["icbc-kefu.top"], "first_seen": ["2025-06-29"]}), as_of=AS_OF
        )


def test_shipped_protected_names(protected):
    assert PROTECTED_NAMES_FILE.read_text(encoding="utf-8").startswith("# ")
    assert 35 <= len(protected) <= 60
    names = [row.name for row in protected]
    assert len(set(names)) == len(names)
    keywords = [k for row in protected for k in row.keywords]
    assert len(set(keywords)) == len(keywords)
    for row in protected:
        assert row.official_domains, row.name
        assert row.keywords, row.name
        assert row.kind in KINDS
        assert row.name_zh
        assert row.name_en, "English pages name the brand"
    assert {"icbc", "alipay", "wechatpay", "unionpay", "gov", "fanzha", "chinamobile"} <= set(names)
    assert load_protected() is load_protected()


def test_load_protected_from_a_file(tmp_path: Path):
    good = tmp_path / "names.csv"
    good.write_text(
        "# test list\nname,name_zh,kind,official_domains,keywords\n"
        "demo,演示银行,bank,demo-bank.com.cn,demobank yanshi\n",
        encoding="utf-8",
    )
    (row,) = load_protected(good)
    assert row == Protected(
        "demo", "演示银行", "bank", ("demo-bank.com.cn",), ("demobank", "yanshi"), "demo"
    ), "a list without English names names them by their keys"
    assert score_domain(
        "demobank-kefu.top", first_seen=None, as_of=AS_OF, protected=[row]
    ).brand == ("demo")
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "name,name_zh,kind,official_domains,keywords\ndemo,演示,shop,demo.com,demo\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="kind"):
        load_protected(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text(
        "name,name_zh,kind,official_domains,keywords\ndemo,演示,bank,,demo\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match="official domains"):
        load_protected(empty)


def test_a_domain_the_police_confirmed_is_high_risk_whatever_its_name() -> None:
    table = pa.table(
        {
            "domain": ["plain-shop.com", "Plain-Shop.com ", "other.com"],
            "first_seen": pa.array([date(2020, 1, 1)] * 3, pa.date32()),
        }
    )
    scored = score_domains(
        table, as_of=date(2021, 11, 30), confirmed={"plain-shop.com": "AF-2021-17, 2021-10-12"}
    ).to_pylist()
    by_name = {row["domain"]: row for row in scored}
    for name in ("plain-shop.com", "Plain-Shop.com "):
        assert by_name[name]["level"] == "high"
        assert by_name[name]["reasons"][0] == {
            "code": "confirmed",
            "detail": "AF-2021-17, 2021-10-12",
            "points": MAX_SCORE,
        }
    assert by_name["other.com"]["level"] == "low"
