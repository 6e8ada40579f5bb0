"""Reference datasets users may ingest to replace or extend the shipped ones."""

from __future__ import annotations

from telereg.core.i18n import N_
from telereg.ingest.contracts import (
    ADMIN_CODE,
    Column,
    ColumnType,
    Contract,
    FileFormat,
    Reference,
    code_form,
)

#: The kinds of corridor, and the words shown for them (translated where shown).
CORRIDOR_KINDS = {
    "hsr": N_("High-speed railway"),
    "railway": N_("Railway"),
    "expressway": N_("Expressway"),
    "national_road": N_("National road"),
    "tourist_road": N_("Tourist road"),
}

CORRIDORS = Contract(
    administration_only=True,
    standing=True,
    name="corridors",
    domain="geography",
    title="Corridors (railways, expressways)",
    title_zh="交通干线",
    description="Lines along which coverage is measured; a corridor_id equal to a shipped one "
    "replaces it.",
    description_zh="计算覆盖率所沿的线路；与内置线路 corridor_id 相同的将替换它。",
    columns=(
        Column(
            "corridor_id",
            ColumnType.STRING,
            "Stable identifier, e.g. G5 or HSR-DX.",
            "干线编号",
            pattern=code_form(1, 32, example="HSR-DX"),
        ),
        Column("name", ColumnType.STRING, "Name.", "名称"),
        Column("name_en", ColumnType.STRING, "English name.", "英文名称", required=False),
        Column(
            "kind",
            ColumnType.STRING,
            "Kind of corridor.",
            "类型",
            enum=tuple(CORRIDOR_KINDS),
            labels=(
                ("高铁", "hsr"),
                ("高速铁路", "hsr"),
                ("铁路", "railway"),
                ("普铁", "railway"),
                ("高速公路", "expressway"),
                ("高速", "expressway"),
                ("国道", "national_road"),
                ("旅游公路", "tourist_road"),
            ),
        ),
        Column(
            "geometry",
            ColumnType.GEOMETRY,
            "The line.",
            "几何",
            max_length=5_000_000,
            geometry_types=("LineString", "MultiLineString"),
        ),
    ),
    unique=(("corridor_id",),),
    formats=(FileFormat.GEOJSON,),
    geometry_column="geometry",
)

KEY_PLACES = Contract(
    administration_only=True,
    standing=True,
    name="key_places",
    domain="geography",
    title="Key places",
    title_zh="重点场所",
    description="Places whose coverage is tracked; a place_id equal to a shipped one replaces it.",
    description_zh="跟踪覆盖情况的场所；与内置场所 place_id 相同的将替换它。",
    columns=(
        Column(
            "place_id",
            ColumnType.STRING,
            "Stable identifier.",
            "场所编号",
            pattern=code_form(1, 32, example="KP-001"),
        ),
        Column("name", ColumnType.STRING, "Name.", "名称"),
        Column("name_en", ColumnType.STRING, "English name.", "英文名称", required=False),
        Column(
            "category",
            ColumnType.STRING,
            "Category.",
            "类别",
            enum=("hospital", "university", "scenic", "transport", "government", "other"),
            labels=(
                ("医院", "hospital"),
                ("高校", "university"),
                ("大学", "university"),
                ("景区", "scenic"),
                ("交通枢纽", "transport"),
                ("政府机关", "government"),
                ("其他", "other"),
            ),
        ),
        Column(
            "geometry",
            ColumnType.GEOMETRY,
            "Point or area.",
            "几何",
            max_length=1_000_000,
            geometry_types=("Point", "Polygon", "MultiPolygon"),
        ),
    ),
    unique=(("place_id",),),
    formats=(FileFormat.GEOJSON,),
    geometry_column="geometry",
)

POPULATION = Contract(
    administration_only=True,
    standing=True,
    name="population",
    domain="geography",
    title="Resident population (cities, counties)",
    title_zh="常住人口",
    description="Census or statistics-bureau figures for cities and counties. A figure "
    "replaces the shipped one, or for a county without one, the estimate telereg makes by "
    "sharing what its city's total leaves by land area. The latest submission wins for each "
    "code.",
    description_zh="地市和区县的人口普查或统计部门数据。报送数据替换内置值；对没有内置值的区县，替换按土地面积分摊地市剩余人口所得的估算值。同一代码以最新报送为准。",
    columns=(
        Column(
            "region_code",
            ColumnType.STRING,
            "City or county code of the configured region.",
            "行政区划代码",
            pattern=ADMIN_CODE,
            references=Reference("region:city+county", "code"),
            aliases=("行政区划代码", "区划代码", "code"),
        ),
        Column(
            "name",
            ColumnType.STRING,
            "Name as the source gives it (for the reader; the code decides).",
            "名称",
            required=False,
            aliases=("名称", "地区"),
        ),
        Column(
            "population",
            ColumnType.INTEGER,
            "Resident population (people).",
            "常住人口",
            minimum=0,
            maximum=200_000_000,
            aliases=("常住人口", "人口"),
        ),
        Column(
            "year",
            ColumnType.INTEGER,
            "Year the figure refers to (2020 for the 7th census).",
            "年份",
            minimum=1953,
            maximum=2100,
            aliases=("年份",),
        ),
        Column(
            "source",
            ColumnType.STRING,
            "Where the figure comes from, e.g. the census bulletin.",
            "数据来源",
            aliases=("数据来源", "来源"),
        ),
    ),
    unique=(("region_code",),),
)

CONTRACTS = (CORRIDORS, KEY_PLACES, POPULATION)
