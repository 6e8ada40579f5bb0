"""Reference datasets users may ingest to replace or extend the shipped ones."""

from __future__ import annotations

from telereg.ingest.contracts import Column, ColumnType, Contract, FileFormat

CORRIDORS = Contract(
    administration_only=True,
    name="corridors",
    domain="geography",
    title="Corridors (railways, expressways)",
    title_zh="交通干线",
    description="Lines along which coverage is measured; a corridor_id equal to a shipped one "
    "replaces it.",
    columns=(
        Column(
            "corridor_id",
            ColumnType.STRING,
            "Stable identifier, e.g. G5 or HSR-DX.",
            "干线编号",
            pattern=r"[0-9A-Za-z_-]{1,32}",
        ),
        Column("name", ColumnType.STRING, "Name.", "名称"),
        Column("name_en", ColumnType.STRING, "English name.", "英文名称", required=False),
        Column(
            "kind",
            ColumnType.STRING,
            "Kind of corridor.",
            "类型",
            enum=("hsr", "railway", "expressway", "national_road", "tourist_road"),
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
    name="key_places",
    domain="geography",
    title="Key places",
    title_zh="重点场所",
    description="Places whose coverage is tracked; a place_id equal to a shipped one replaces it.",
    columns=(
        Column(
            "place_id",
            ColumnType.STRING,
            "Stable identifier.",
            "场所编号",
            pattern=r"[0-9A-Za-z_-]{1,32}",
        ),
        Column("name", ColumnType.STRING, "Name.", "名称"),
        Column("name_en", ColumnType.STRING, "English name.", "英文名称", required=False),
        Column(
            "category",
            ColumnType.STRING,
            "Category.",
            "类别",
            enum=("hospital", "university", "scenic", "transport", "government", "other"),
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

CONTRACTS = (CORRIDORS, KEY_PLACES)
