"""The anti-fraud part of the demo: cells, lines, calls, messages, data use, and planted fraud.

Ordinary subscribers call, message and browse. Planted among them, with the
truth kept apart:

* SIM boxes (GOIP gateways): a gateway of 8–32 ports cycles a bank of SIM
  cards; its lines call many strangers in other provinces, mostly briefly,
  never message or browse, and switch on and off together. Some gateways
  move (in a vehicle), some are throttled to look like people, and some are
  of models missing from the gateway list.
* Card-breaking rings: cards bought in bulk at a few outlets in the month,
  several to one ID number, used from day one far from where they were
  registered, on a few shared handsets, in bursts of short calls to strangers.
* Borrowed identities (实名不实): new cards registered on an ID number from one
  city and used, like any phone, by someone living in another, from their
  first day. They call normally, so only the identity signals can find them.
* Handsets a family shares: two ordinary cards of different ID numbers in one
  phone. Harmless, but they show the shared-handset signal too (the review
  list's expected false positives).
* ID numbers holding more cards at one operator than the rules allow.
* Lookalike domains among the domains seen by resolvers.

Police feedback confirms part of the first month's fraud, which is the
labelled history the learned scorer trains on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from telereg.domains.fraud.cardbreak import CARDS_PER_OPERATOR
from telereg.reference.lists import gateway_tacs
from telereg.scenario.files import OperatorFile, nullable, with_bad_rows, write_csv
from telereg.scenario.model import OPERATOR_SHARES, PERIODS, Province

#: Mobile number prefixes by operator (the first three digits).
PREFIXES = {
    "CMCC": (134, 135, 136, 137, 138, 139, 150, 151, 152, 157, 158, 159, 182, 187, 188),
    "CUCC": (130, 131, 132, 155, 156, 185, 186),
    "CTCC": (133, 153, 180, 181, 189, 199),
    "CBN": (192,),
}
#: Subscribers generated per operator at full (province) scale; scaled down with the demo.
SUBSCRIBERS_AT_FULL_SCALE = 150_000
CALLS_PER_SUBSCRIBER_MONTH = 12
#: Share of ordinary lines that call a lot (sales staff, small businesses): the hard negatives.
BUSY_SHARE = 0.03
#: Provinces other than the region, for counterpart numbers.
OTHER_PROVINCES = ("110000", "310000", "440000", "350000", "450000", "510000", "530000", "460000")
#: Gateway models not on the list (so TAC alone cannot find them).
UNLISTED_TACS = ("86950312", "86104417")
PROFILE_COLUMNS = ("phone", "imsi", "id_number", "outlet_id", "channel", "activated_at")


@dataclass
class Lines:
    """One operator's mobile lines and what the scenario made of them."""

    phone: np.ndarray
    imsi: np.ndarray
    id_number: np.ndarray
    outlet: np.ndarray
    channel: np.ndarray
    activated: np.ndarray  # datetime64[s]
    card_type: np.ndarray
    home_city: np.ndarray
    imei: np.ndarray
    home_cell: np.ndarray
    role: np.ndarray  # normal, busy, simbox, ring, hoarder, borrowed

    def __len__(self) -> int:
        return len(self.phone)

    def take(self, index: np.ndarray) -> Lines:
        return Lines(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list[Lines]) -> Lines:
        fields = Lines.__dataclass_fields__
        return Lines(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def cells_of(province: Province, operator: str) -> pa.Table:
    """Three cells per site, each a little off the mast towards its sector."""
    sites = province.sites
    rng = province.rng(f"fraud.cells.{operator}")
    mine = np.flatnonzero(sites.operator == operator)
    repeat = np.repeat(mine, 3)
    sector = np.tile([1, 2, 3], len(mine))
    return pa.table(
        {
            "cell_id": [f"{sites.site_id[i]}-{s}" for i, s in zip(repeat, sector, strict=True)],
            "site_id": sites.site_id[repeat],
            "longitude": np.round(sites.lon[repeat] + rng.normal(0, 0.001, len(repeat)), 6),
            "latitude": np.round(sites.lat[repeat] + rng.normal(0, 0.001, len(repeat)), 6),
            "city_code": sites.city_code[repeat],
            "technology": sites.technology[repeat],
        }
    )


def numbers(rng: np.random.Generator, operator: str, n: int) -> np.ndarray:
    """``n`` distinct mobile numbers of ``operator``."""
    prefix = rng.choice(PREFIXES[operator], n)
    rest = rng.choice(10**8, n, replace=False)
    return np.char.add(prefix.astype(str), np.char.zfill(rest.astype(str), 8))


def _digits(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    return np.char.zfill(rng.integers(0, 10**width, n).astype(str), width)


def _id_numbers(rng: np.random.Generator, n: int, city_codes: np.ndarray) -> np.ndarray:
    """Resident ID numbers: area code, birth date, sequence and a check character."""
    birth = np.datetime64("1960-01-01") + rng.integers(0, 45 * 365, n).astype("timedelta64[D]")
    body = np.char.add(
        np.char.add(city_codes.astype(str), np.char.replace(birth.astype(str), "-", "")),
        _digits(rng, n, 3),
    )
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    codes = np.frombuffer("".join(body.tolist()).encode(), dtype=np.uint8).reshape(n, 17) - 48
    check = np.array(list("10X98765432"))[(codes * weights).sum(axis=1) % 11]
    return np.char.add(body, check)


def _imeis(rng: np.random.Generator, n: int, tac: str | None = None) -> np.ndarray:
    tacs = np.full(n, tac) if tac else np.char.add("86", _digits(rng, n, 6))
    return np.char.add(tacs, _digits(rng, n, 7))


def _timestamps(period: str, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    start = np.datetime64(f"{period}-01T00:00:00")
    stamp = start + (day.astype(np.int64) * 86400 + seconds.astype(np.int64)).astype(
        "timedelta64[s]"
    )
    return stamp.astype(str).astype(object)


def _days(period: str) -> int:
    year, month = map(int, period.split("-"))
    following = np.datetime64(f"{year + month // 12:04d}-{month % 12 + 1:02d}-01")
    return int((following - np.datetime64(f"{period}-01")).astype(int))


def _ordinary(province: Province, operator: str, cells: pa.Table) -> Lines:
    rng = province.rng(f"fraud.lines.{operator}")
    n = max(300, round(SUBSCRIBERS_AT_FULL_SCALE * OPERATOR_SHARES[operator] * province.factor))
    cities = np.asarray(cells.column("city_code").to_pylist())
    home_cell = rng.integers(0, len(cities), n)
    persons = max(1, round(n / 1.3))
    owner = rng.integers(0, persons, n)
    ids = _id_numbers(rng, persons, cities[rng.integers(0, len(cities), persons)])
    outlets = np.char.add(
        f"{operator}-O", np.char.zfill(np.arange(max(5, n // 150)).astype(str), 4)
    )
    role = np.where(rng.random(n) < BUSY_SHARE, "busy", "normal")
    return Lines(
        phone=numbers(rng, operator, n),
        imsi=np.char.add("460", _digits(rng, n, 12)),
        id_number=ids[owner],
        outlet=outlets[rng.integers(0, len(outlets), n)],
        channel=rng.choice(
            ["own_store", "agent", "online", "enterprise"], n, p=[0.5, 0.3, 0.15, 0.05]
        ),
        activated=np.datetime64("2012-01-01T00:00:00")
        + rng.integers(0, 9 * 365 * 86400, n).astype("timedelta64[s]"),
        card_type=np.where(role == "busy", "enterprise", "personal"),
        home_city=cities[home_cell],
        imei=_imeis(rng, n),
        home_cell=home_cell,
        role=role.astype(object),
    )


@dataclass(frozen=True)
class Gateway:
    name: str
    tac: str
    ports: int
    mode: str  # static, moving, throttled
    cell: int
    first_period: int
    lines: np.ndarray  # indices into the operator's lines
    port_imeis: np.ndarray


def _planted_lines(
    province: Province, operator: str, cells: pa.Table, lines: Lines
) -> tuple[Lines, list[Gateway], list[dict[str, object]]]:
    """SIM-box lines, card-breaking rings, card hoarders and borrowed identities, appended to
    ``lines``."""
    rng = province.rng(f"fraud.plant.{operator}")
    cities = np.asarray(cells.column("city_code").to_pylist())
    outlets = np.unique(lines.outlet)
    scale = math.sqrt(province.factor)
    tacs = [t.tac for t in gateway_tacs()]
    parts = [lines]
    offset = len(lines)
    gateways: list[Gateway] = []
    for g in range(max(1, round(24 * OPERATOR_SHARES[operator] * scale))):
        ports = int(rng.choice([8, 16, 32], p=[0.45, 0.45, 0.1]))
        bank = ports * int(rng.integers(1, 3))  # the SIM bank holds up to twice the ports
        mode = str(rng.choice(["static", "moving", "throttled"], p=[0.55, 0.2, 0.25]))
        tac = str(rng.choice(UNLISTED_TACS)) if rng.random() < 0.3 else str(rng.choice(tacs))
        cell = int(rng.integers(0, len(cities)))
        part = _bought_cards(rng, operator, bank, cities[cell], outlets, role="simbox")
        gateway = Gateway(
            name=f"{operator}-GW{g + 1:02d}",
            tac=tac,
            ports=ports,
            mode=mode,
            cell=cell,
            first_period=0 if rng.random() < 0.7 else len(PERIODS) - 1,
            lines=np.arange(offset, offset + bank),
            port_imeis=_imeis(rng, ports, tac),
        )
        if gateway.first_period > 0:
            # A gateway that goes live in a later month runs on cards bought for it then, in
            # bulk at one outlet, in the hours before it first switches on (a new card for
            # the outlet ranking). The purchase times keep their order; no draw is added.
            bought = part.activated - np.datetime64(_OLD_CARDS_FROM)
            part.activated = np.datetime64(f"{PERIODS[gateway.first_period]}-01T00:00:00") + (
                bought * 8 // (120 * 24)
            )
        gateways.append(gateway)
        parts.append(part)
        offset += bank
    rings: list[dict[str, object]] = []
    for r in range(max(2, round(10 * OPERATOR_SHARES[operator] * scale))):
        size = int(rng.integers(8, 21))
        registered = cities[rng.integers(0, len(cities))]
        elsewhere = np.flatnonzero(cities != registered)
        used = int(rng.choice(elsewhere)) if len(elsewhere) else 0
        part = _bought_cards(rng, operator, size, registered, outlets, role="ring", ring=True)
        part.home_cell = np.full(size, used)
        handsets = _imeis(rng, max(3, size // 4))
        part.imei = handsets[rng.integers(0, len(handsets), size)]
        rings.append(
            {
                "name": f"{operator}-R{r + 1:02d}",
                "lines": np.arange(offset, offset + size),
                "outlets": sorted(set(part.outlet.tolist())),
                "registered_city": str(registered),
            }
        )
        parts.append(part)
        offset += size
    # Hoarders: one ID number behind 6 to 9 ordinary-looking cards of this operator.
    for _ in range(max(2, round(8 * OPERATOR_SHARES[operator] * scale))):
        source = rng.integers(0, len(lines))
        count = int(rng.integers(6, 10))
        part = lines.take(np.full(count, source))
        part.phone = numbers(rng, operator, count)
        part.imsi = np.char.add("460", _digits(rng, count, 12))
        part.imei = _imeis(rng, count)
        part.role = np.full(count, "hoarder", dtype=object)
        parts.append(part)
        offset += count
    parts.append(_borrowed(rng, operator, cities, outlets, scale))
    merged = Lines.concat(parts)
    # Numbers drawn in separate batches could collide; keep the first of each.
    _, first = np.unique(merged.phone, return_index=True)
    keep = np.zeros(len(merged), dtype=bool)
    keep[first] = True
    if not keep.all():
        raise RuntimeError("generated numbers collided; change the seed")
    return merged, gateways, rings


#: Cards bought in bulk for gateways already running are from the 120 days after this.
_OLD_CARDS_FROM = "2021-06-01"


def _bought_cards(
    rng: np.random.Generator,
    operator: str,
    n: int,
    city: str,
    outlets: np.ndarray,
    *,
    role: str,
    ring: bool = False,
) -> Lines:
    """Cards bought in bulk: recent, from one or two outlets, on a few ID numbers."""
    chosen = rng.choice(outlets, 2 if ring else 1, replace=False)
    count = max(1, n // 7 if ring else n // 2)
    holders = _id_numbers(rng, count, np.full(count, city))
    base = np.datetime64(f"{PERIODS[-1]}-01T09:00:00") if ring else np.datetime64(_OLD_CARDS_FROM)
    spread = 4 * 86400 if ring else 120 * 86400
    return Lines(
        phone=numbers(rng, operator, n),
        imsi=np.char.add("460", _digits(rng, n, 12)),
        id_number=holders[rng.integers(0, len(holders), n)],
        outlet=chosen[rng.integers(0, len(chosen), n)],
        channel=np.full(n, "agent"),
        activated=base + rng.integers(0, spread, n).astype("timedelta64[s]"),
        card_type=np.full(n, "personal"),
        home_city=np.full(n, city),
        imei=_imeis(rng, n),
        home_cell=np.zeros(n, dtype=np.int64),
        role=np.full(n, role, dtype=object),
    )


def _borrowed(
    rng: np.random.Generator, operator: str, cities: np.ndarray, outlets: np.ndarray, scale: float
) -> Lines:
    """New cards on ID numbers of one city, each used by someone living in another."""
    n = max(3, round(30 * OPERATOR_SHARES[operator] * scale))
    registered = cities[rng.integers(0, len(cities), n)]
    used = np.array([rng.choice(np.flatnonzero(cities != city)) for city in registered])
    return Lines(
        phone=numbers(rng, operator, n),
        imsi=np.char.add("460", _digits(rng, n, 12)),
        id_number=_id_numbers(rng, n, registered),
        outlet=outlets[rng.integers(0, len(outlets), n)],
        channel=rng.choice(["own_store", "agent"], n),
        activated=np.datetime64(f"{PERIODS[-1]}-01T08:00:00")
        + rng.integers(0, 20 * 86400, n).astype("timedelta64[s]"),
        card_type=np.full(n, "personal"),
        home_city=registered,
        imei=_imeis(rng, n),
        home_cell=used.astype(np.int64),
        role=np.full(n, "borrowed", dtype=object),
    )


def _shared_handsets(province: Province, operator: str, lines: Lines) -> np.ndarray:
    """Pairs of ordinary cards of different ID numbers put in one handset (a family's):
    the second card of each pair takes the first's IMEI. Returns the pairs' indices."""
    rng = province.rng(f"fraud.family.{operator}")
    normal = np.flatnonzero(lines.role == "normal")
    n = max(2, round(6 * OPERATOR_SHARES[operator] * math.sqrt(province.factor)))
    chosen = rng.choice(normal, 2 * n, replace=False).reshape(n, 2)
    pairs: np.ndarray = chosen[lines.id_number[chosen[:, 0]] != lines.id_number[chosen[:, 1]]]
    lines.imei[pairs[:, 1]] = lines.imei[pairs[:, 0]]
    return pairs


def _borrowed_calls(
    province: Province,
    operator: str,
    period: str,
    lines: Lines,
    cities: np.ndarray,
    peers: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Borrowed cards: ordinary calls from the day they are bought, in the user's city."""
    rng = province.rng(f"fraud.borrowed-calls.{operator}.{period}")
    users = np.flatnonzero(lines.role == "borrowed")
    start = np.datetime64(f"{period}-01")
    first_day = ((lines.activated[users] - start).astype("timedelta64[D]")).astype(int)
    days = _days(period)
    live = (first_day >= 0) & (first_day < days)
    users, first_day = users[live], first_day[live]
    # A call on the day the card is bought, then about one every other day.
    extra = rng.poisson(0.5 * (days - first_day))
    later = np.repeat(first_day, extra)
    who = np.concatenate([users, np.repeat(users, extra)])
    day = np.concatenate([first_day, later + (rng.random(len(later)) * (days - later)).astype(int)])
    n = len(who)
    home = lines.home_cell[who]
    nearby = _cells_in_city_of(rng, cities, home)
    pool = peers[operator]
    seconds = rng.choice(24, n, p=_diurnal()) * 3600 + rng.integers(0, 3600, n)
    # The first call comes within two hours of the purchase.
    bought_at = (lines.activated[users] - lines.activated[users].astype("datetime64[D]")).astype(
        int
    )
    seconds[: len(users)] = np.minimum(bought_at + rng.integers(600, 7200, len(users)), 86_399)
    return {
        "caller": lines.phone[who],
        "callee": pool[rng.integers(0, len(pool), n)],
        "start_time": _timestamps(period, day, seconds),
        "duration_s": np.minimum(rng.lognormal(4.0, 1.0, n).astype(int), 7200),
        "cell": np.where(rng.random(n) < 0.8, home, nearby),
        "imei": lines.imei[who],
        "peer_operator": np.full(n, operator, dtype=object),
        "peer_province": np.full(n, province.regions.province.code, dtype=object),
    }


def _cells_in_city_of(
    rng: np.random.Generator, cities: np.ndarray, cells: np.ndarray
) -> np.ndarray:
    """For each of ``cells``, a random cell of the same city (``cities``: each cell's city)."""
    order = np.argsort(cities, kind="stable")
    ranked = cities[order]
    wanted = cities[cells]
    first = np.searchsorted(ranked, wanted, side="left")
    count = np.searchsorted(ranked, wanted, side="right") - first
    picked: np.ndarray = order[first + (rng.random(len(cells)) * count).astype(np.int64)]
    return picked


def _strangers(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random numbers anywhere in the country: number, operator, province."""
    operators = rng.choice(list(PREFIXES), n, p=[0.55, 0.2, 0.22, 0.03])
    prefix = np.array([PREFIXES[o][0] for o in operators])
    number = np.char.add(prefix.astype(str), _digits(rng, n, 8))
    return number, operators, rng.choice(OTHER_PROVINCES, n)


def _ordinary_calls(
    province: Province,
    operator: str,
    period: str,
    lines: Lines,
    cell_ids: np.ndarray,
    peers: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    rng = province.rng(f"fraud.calls.{operator}.{period}")
    people = np.flatnonzero(np.isin(lines.role, ["normal", "busy", "hoarder"]))
    rate = np.where(lines.role[people] == "busy", 150, CALLS_PER_SUBSCRIBER_MONTH)
    who = np.repeat(people, rng.poisson(rate))
    n = len(who)
    days = _days(period)
    hour = rng.choice(24, n, p=_diurnal())
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    moving = rng.random(n) < 0.25
    cell = np.where(moving, rng.integers(0, len(cell_ids), n), lines.home_cell[who])
    # Most calls go to people in the province, a few elsewhere.
    peer_op = rng.choice(list(peers), n, p=_peer_shares(operator, list(peers)))
    callee = np.empty(n, dtype=object)
    for op, pool in peers.items():
        mine = peer_op == op
        callee[mine] = pool[rng.integers(0, len(pool), int(mine.sum()))]
    away = rng.random(n) < 0.06
    stranger, stranger_op, stranger_prov = _strangers(rng, int(away.sum()))
    callee[away] = stranger
    peer_op = peer_op.astype(object)
    peer_op[away] = stranger_op
    province_code = np.full(n, province.regions.province.code, dtype=object)
    province_code[away] = stranger_prov
    return {
        "caller": lines.phone[who],
        "callee": callee,
        "start_time": _timestamps(period, rng.integers(0, days, n), seconds),
        "duration_s": np.minimum(rng.lognormal(4.0, 1.0, n).astype(int), 7200),
        "cell": cell,
        "imei": lines.imei[who],
        "peer_operator": peer_op,
        "peer_province": province_code,
    }


def _peer_shares(operator: str, operators: list[str]) -> list[float]:
    weights = np.array([3.0 if op == operator else OPERATOR_SHARES[op] for op in operators])
    return list(weights / weights.sum())


def _gateway_calls(  # noqa: PLR0915 - one day of one gateway, step by step
    province: Province,
    operator: str,
    period: str,
    gateways: list[Gateway],
    lines: Lines,
    cell_ids: np.ndarray,
    peers: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each active gateway, each day: ports busy from a shared on time to a shared off time."""
    rng = province.rng(f"fraud.gateway-calls.{operator}.{period}")
    index = PERIODS.index(period)
    days = _days(period)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in _CALL_KEYS}
    for gw in gateways:
        if index < gw.first_period:
            continue
        cell = gw.cell
        for day in range(days):
            if rng.random() < 0.15:  # some days the gateway stays off
                continue
            on = int(rng.integers(8 * 3600, 10 * 3600))
            off = int(rng.integers(18 * 3600, 21 * 3600))
            if gw.mode == "moving":
                cell = int((cell + rng.integers(1, 40)) % len(cell_ids))
            # The bank swaps which cards sit in the ports from day to day.
            active = rng.choice(gw.lines, gw.ports, replace=False)
            throttled = gw.mode == "throttled"
            per_line = rng.poisson(9 if throttled else 45, gw.ports)
            who = np.repeat(active, per_line)
            port = np.repeat(np.arange(gw.ports), per_line)
            n = len(who)
            if n == 0:
                continue
            seconds = np.sort(rng.integers(on, off, n))
            # Each port's first and last call mark the shared switch-on and switch-off.
            firsts = np.r_[0, np.cumsum(per_line)[:-1]][per_line > 0]
            lasts = (np.cumsum(per_line) - 1)[per_line > 0]
            seconds[firsts] = on + rng.integers(0, 60, len(firsts))
            seconds[lasts] = off - rng.integers(0, 60, len(lasts))
            number, operators, provinces = _strangers(rng, n)
            local = rng.random(n) < (0.5 if throttled else 0.25)
            peer_op = operators.astype(object)
            local_ops = rng.choice(list(peers), int(local.sum()))
            peer_op[local] = local_ops
            number = number.astype(object)
            number[local] = [peers[o][rng.integers(0, len(peers[o]))] for o in local_ops]
            prov = provinces.astype(object)
            prov[local] = province.regions.province.code
            short = rng.random(n) < (0.35 if throttled else 0.6)
            duration = np.where(
                short,
                rng.integers(3, 25, n),
                np.minimum(rng.lognormal(4.3 if throttled else 4.6, 0.7, n).astype(int), 1800),
            )
            columns["caller"].append(lines.phone[who])
            columns["callee"].append(number)
            columns["start_time"].append(_timestamps(period, np.full(n, day), seconds))
            columns["duration_s"].append(duration)
            columns["cell"].append(np.full(n, cell))
            columns["imei"].append(gw.port_imeis[port])
            columns["peer_operator"].append(peer_op)
            columns["peer_province"].append(prov)
            if throttled:  # a few calls back, as people would get
                back = rng.choice(active, max(1, n // 6))
                columns["caller"].append(
                    peers[operator][rng.integers(0, len(peers[operator]), len(back))]
                )
                columns["callee"].append(lines.phone[back])
                columns["start_time"].append(
                    _timestamps(period, np.full(len(back), day), rng.integers(on, off, len(back)))
                )
                columns["duration_s"].append(rng.integers(20, 200, len(back)))
                columns["cell"].append(rng.integers(0, len(cell_ids), len(back)))
                columns["imei"].append(np.full(len(back), None, dtype=object))
                columns["peer_operator"].append(np.full(len(back), operator, dtype=object))
                columns["peer_province"].append(
                    np.full(len(back), province.regions.province.code, dtype=object)
                )
    return {k: np.concatenate(v) if v else np.array([], dtype=object) for k, v in columns.items()}


_CALL_KEYS = (
    "caller",
    "callee",
    "start_time",
    "duration_s",
    "cell",
    "imei",
    "peer_operator",
    "peer_province",
)


def _ring_calls(
    province: Province,
    operator: str,
    period: str,
    rings: list[dict[str, object]],
    lines: Lines,
    cell_ids: np.ndarray,
) -> dict[str, np.ndarray]:
    """Ring cards: a few days of bursts of short calls to strangers, from where they are used."""
    rng = province.rng(f"fraud.ring-calls.{operator}.{period}")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in _CALL_KEYS}
    if period != PERIODS[-1]:
        return {k: np.array([], dtype=object) for k in _CALL_KEYS}
    for ring in rings:
        members = np.asarray(ring["lines"])
        for member in members:
            first_day = int(
                (lines.activated[member] - np.datetime64(f"{period}-01"))
                .astype("timedelta64[D]")
                .astype(int)
            )
            active_days = rng.choice(
                np.arange(first_day, min(_days(period), first_day + 12)),
                int(rng.integers(3, 8)),
                replace=False,
            )
            for day in active_days:
                n = int(rng.integers(15, 45))
                number, operators, provinces = _strangers(rng, n)
                columns["caller"].append(np.full(n, lines.phone[member]))
                columns["callee"].append(number)
                burst = int(rng.integers(9 * 3600, 19 * 3600))
                columns["start_time"].append(
                    _timestamps(period, np.full(n, day), burst + np.sort(rng.integers(0, 5400, n)))
                )
                columns["duration_s"].append(
                    np.where(rng.random(n) < 0.6, rng.integers(2, 20, n), rng.integers(20, 400, n))
                )
                columns["cell"].append(lines.home_cell[member] + rng.integers(0, 3, n))
                columns["imei"].append(np.full(n, lines.imei[member]))
                columns["peer_operator"].append(operators.astype(object))
                columns["peer_province"].append(provinces.astype(object))
    out = {k: np.concatenate(v) if v else np.array([], dtype=object) for k, v in columns.items()}
    if len(out["cell"]):
        out["cell"] = np.minimum(out["cell"].astype(np.int64), len(cell_ids) - 1)
    return out


def _calls_table(
    parts: list[dict[str, np.ndarray]], cell_ids: np.ndarray, rng: np.random.Generator
) -> pa.Table:
    merged = {k: np.concatenate([p[k] for p in parts if len(p["caller"])]) for k in _CALL_KEYS}
    n = len(merged["caller"])
    order = rng.permutation(n)
    imei = merged["imei"][order]
    return pa.table(
        {
            "caller": merged["caller"][order].astype(str),
            "callee": merged["callee"][order].astype(str),
            "start_time": merged["start_time"][order].astype(str),
            "duration_s": merged["duration_s"][order].astype(np.int64),
            "direction": np.full(n, "MO"),
            "cell_id": cell_ids[merged["cell"][order].astype(np.int64)],
            "imei": nullable(
                np.where(_is_none(imei), "", imei).astype(str),
                ~_is_none(imei) & (rng.random(n) < 0.95),
            ),
            "peer_operator": merged["peer_operator"][order].astype(str),
            "peer_province": merged["peer_province"][order].astype(str),
        }
    )


def _is_none(values: np.ndarray) -> np.ndarray:
    """Where an object array holds None."""
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _sms(province: Province, operator: str, period: str, lines: Lines) -> pa.Table:
    rng = province.rng(f"fraud.sms.{operator}.{period}")
    people = np.flatnonzero(lines.role != "simbox")
    who = np.repeat(people, rng.poisson(np.where(lines.role[people] == "ring", 1, 8)))
    n = len(who)
    other = lines.phone[people[rng.integers(0, len(people), n)]]
    sent = rng.random(n) < 0.5
    return pa.table(
        {
            "sender": np.where(sent, lines.phone[who], other),
            "receiver": np.where(sent, other, lines.phone[who]),
            "sent_at": _timestamps(
                period, rng.integers(0, _days(period), n), rng.integers(0, 86400, n)
            ),
            "direction": np.where(sent, "MO", "MT"),
        }
    )


def _data(province: Province, operator: str, period: str, lines: Lines) -> pa.Table:
    rng = province.rng(f"fraud.data.{operator}.{period}")
    people = np.flatnonzero(~np.isin(lines.role, ["simbox"]))
    days = _days(period)
    per_line = rng.binomial(days, np.where(lines.role[people] == "ring", 0.05, 0.3))
    who = np.repeat(people, per_line)
    n = len(who)
    day = np.datetime64(f"{period}-01") + rng.integers(0, days, n).astype("timedelta64[D]")
    return pa.table(
        {
            "phone": lines.phone[who],
            "day": day.astype(str),
            "bytes": rng.lognormal(19, 1.5, n).astype(np.int64),
            "app_category": rng.choice(["video", "chat", "web", "payment", "game"], n),
        }
    )


def _over_limit(subscribed: dict[tuple[str, str], pa.Table]) -> list[dict[str, object]]:
    """ID numbers with more than 5 active cards at an operator, with the months they had them.

    Counted from the subscriptions as sent: a hoarder one of whose cards the operator
    suspended that month holds no more than the rules allow.
    """
    months: dict[tuple[str, str], list[str]] = {}
    for (op, period), table in subscribed.items():
        status = np.asarray(table.column("status").to_pylist())
        ids = np.asarray(table.column("id_number").to_pylist())
        held, counts = np.unique(ids[status == "active"], return_counts=True)
        for id_number in held[counts > CARDS_PER_OPERATOR]:
            months.setdefault((op, str(id_number)), []).append(period)
    return [
        {"operator": op, "id_number": id_number, "periods": sorted(periods)}
        for (op, id_number), periods in sorted(months.items())
    ]


def _subscriptions(lines: Lines, period: str, rng: np.random.Generator) -> pa.Table:
    end = np.datetime64(f"{period}-01T00:00:00") + np.timedelta64(_days(period), "D")
    live = np.flatnonzero(lines.activated < end)
    status = np.where(rng.random(len(live)) < 0.02, "suspended", "active")
    return pa.table(
        {
            "phone": lines.phone[live],
            "imsi": lines.imsi[live],
            "id_number": lines.id_number[live],
            "outlet_id": lines.outlet[live],
            "channel": lines.channel[live],
            "activated_at": lines.activated[live].astype(str),
            "card_type": lines.card_type[live],
            "home_city": lines.home_city[live],
            "status": status,
        }
    )


def _diurnal() -> np.ndarray:
    weights = np.array(
        [1, 0.5, 0.3, 0.3, 0.4, 1, 3, 6, 9, 10, 10, 10, 9, 9, 10, 10, 10, 10, 9, 9, 8, 6, 4, 2],
        dtype=float,
    )
    normalised: np.ndarray = weights / weights.sum()
    return normalised


def synthesize(province: Province, out: Path) -> list[OperatorFile]:
    """Cells, lines, calls, messages and data use per operator, police feedback and domains."""
    files: list[OperatorFile] = []
    bad_rows: list[dict[str, object]] = []
    operators = list(OPERATOR_SHARES)
    cells = {op: cells_of(province, op) for op in operators}
    lines: dict[str, Lines] = {}
    gateways: dict[str, list[Gateway]] = {}
    rings: dict[str, list[dict[str, object]]] = {}
    families: dict[str, np.ndarray] = {}
    for op in operators:
        ordinary = _ordinary(province, op, cells[op])
        lines[op], gateways[op], rings[op] = _planted_lines(province, op, cells[op], ordinary)
        families[op] = _shared_handsets(province, op, lines[op])
    peers = {op: lines[op].phone[np.isin(lines[op].role, ["normal", "busy"])] for op in operators}
    subscribed: dict[tuple[str, str], pa.Table] = {}
    for op in operators:
        cell_ids = np.asarray(cells[op].column("cell_id").to_pylist())
        cell_cities = np.asarray(cells[op].column("city_code").to_pylist())
        files.append(
            OperatorFile(
                "cells", op, PERIODS[-1], write_csv(cells[op], out / op / PERIODS[-1] / "cells.csv")
            )
        )
        for period in PERIODS:
            rng = province.rng(f"fraud.files.{op}.{period}")
            subscribed[op, period] = _subscriptions(lines[op], period, rng)
            files.append(
                OperatorFile(
                    "subscriptions",
                    op,
                    period,
                    write_csv(subscribed[op, period], out / op / period / "subscriptions.csv"),
                )
            )
            table = _calls_table(
                [
                    _ordinary_calls(province, op, period, lines[op], cell_ids, peers),
                    _gateway_calls(province, op, period, gateways[op], lines[op], cell_ids, peers),
                    _ring_calls(province, op, period, rings[op], lines[op], cell_ids),
                    _borrowed_calls(province, op, period, lines[op], cell_cities, peers),
                ],
                cell_ids,
                rng,
            )
            relative = f"{op}/{period}/voice_cdr.csv"
            if op == "CUCC" and period == PERIODS[-1] and table.num_rows > 10:
                bad: dict[int, dict[str, object]] = {
                    2: {"cell_id": "NO-SUCH-CELL"},
                    5: {"duration_s": -12},
                    8: {"start_time": "2021-12-01 00:00:05"},
                }
                table = with_bad_rows(table, bad)
                bad_rows += [
                    {"file": relative, "row": i + 2, "column": c}
                    for i, values in bad.items()
                    for c in values
                ]
            files.append(OperatorFile("voice_cdr", op, period, write_csv(table, out / relative)))
            files.append(
                OperatorFile(
                    "sms",
                    op,
                    period,
                    write_csv(_sms(province, op, period, lines[op]), out / op / period / "sms.csv"),
                )
            )
            files.append(
                OperatorFile(
                    "data_sessions",
                    op,
                    period,
                    write_csv(
                        _data(province, op, period, lines[op]),
                        out / op / period / "data_sessions.csv",
                    ),
                )
            )
    files += _administration_files(province, out, lines, gateways)
    _plant_truth(province, lines, gateways, rings)
    _plant_identity_truth(province, lines, families, cells)
    province.plant("fraud", "over_limit_ids", _over_limit(subscribed))
    province.plant("fraud", "bad_rows", bad_rows)
    return files


def _administration_files(
    province: Province, out: Path, lines: dict[str, Lines], gateways: dict[str, list[Gateway]]
) -> list[OperatorFile]:
    """Police feedback on the first month, and the domains resolvers saw, as the CA sends them."""
    rng = province.rng("fraud.feedback")
    first = PERIODS[0]
    phones: list[str] = []
    imeis: list[str] = []
    for op, gws in gateways.items():
        for gw in gws:
            if gw.first_period > 0:
                continue
            confirmed = gw.lines[rng.random(len(gw.lines)) < 0.6]
            phones += lines[op].phone[confirmed].tolist()
            if rng.random() < 0.5:
                imeis += gw.port_imeis[:2].tolist()
    domains, lookalikes = observed_domains(province)
    province.plant("fraud", "lookalike_domains", lookalikes)
    confirmed_domains = [d for d in lookalikes if rng.random() < 0.4]
    n_phone, n_imei, n_dom = len(phones), len(imeis), len(confirmed_domains)
    total = n_phone + n_imei + n_dom
    confirmed_on = (
        np.datetime64(f"{PERIODS[-1]}-01") + rng.integers(0, 10, total).astype("timedelta64[D]")
    ).astype(str)
    feedback = pa.table(
        {
            "phone": pa.array(phones + [None] * (n_imei + n_dom), pa.string()),
            "imei": pa.array([None] * n_phone + imeis + [None] * n_dom, pa.string()),
            "domain": pa.array([None] * (n_phone + n_imei) + confirmed_domains, pa.string()),
            "case_reference": [f"JQ{first.replace('-', '')}{i:05d}" for i in range(total)],
            "confirmed_on": confirmed_on,
            "fraud_type": rng.choice(["impersonation", "investment", "loan", "shopping"], total),
        }
    )
    return [
        OperatorFile(
            "police_feedback",
            "CA",
            first,
            write_csv(feedback, out / "CA" / first / "police_feedback.csv"),
        ),
        *(
            OperatorFile(
                "observed_domains",
                "CA",
                period,
                write_csv(domains[period], out / "CA" / period / "observed_domains.csv"),
            )
            for period in PERIODS
        ),
    ]


def _plant_truth(
    province: Province,
    lines: dict[str, Lines],
    gateways: dict[str, list[Gateway]],
    rings: dict[str, list[dict[str, object]]],
) -> None:
    sim_boxes = [
        {
            "operator": op,
            "gateway": gw.name,
            "tac": gw.tac,
            "ports": gw.ports,
            "mode": gw.mode,
            "periods": list(PERIODS[gw.first_period :]),
            "lines": lines[op].phone[gw.lines].tolist(),
            "outlets": sorted(set(lines[op].outlet[gw.lines].tolist())),
            "cards_bought_in": str(lines[op].activated[gw.lines].min())[:7],
            "imeis": gw.port_imeis.tolist(),
        }
        for op, gws in gateways.items()
        for gw in gws
    ]
    province.plant("fraud", "sim_boxes", sim_boxes)
    province.plant(
        "fraud",
        "rings",
        [
            {
                "operator": op,
                "ring": ring["name"],
                # A ring's cards are bought and used in the last month only.
                "periods": [PERIODS[-1]],
                "lines": lines[op].phone[np.asarray(ring["lines"])].tolist(),
                "outlets": ring["outlets"],
                "registered_city": ring["registered_city"],
            }
            for op, rs in rings.items()
            for ring in rs
        ],
    )


def _plant_identity_truth(
    province: Province,
    lines: dict[str, Lines],
    families: dict[str, np.ndarray],
    cells: dict[str, pa.Table],
) -> None:
    borrowed = [
        {
            "operator": op,
            "periods": [PERIODS[-1]],
            "line": str(lines[op].phone[i]),
            "registered_city": str(lines[op].home_city[i]),
            "used_city": str(cells[op].column("city_code")[int(lines[op].home_cell[i])]),
        }
        for op in lines
        for i in np.flatnonzero(lines[op].role == "borrowed")
    ]
    province.plant("fraud", "borrowed_identities", borrowed)
    province.plant(
        "fraud",
        "family_handsets",
        [
            {"operator": op, "lines": lines[op].phone[pair].tolist()}
            for op, pairs in families.items()
            for pair in pairs
        ],
    )


#: Names of the sort resolvers see every day (none of them imitates anyone).
_BENIGN_WORDS = (
    "taiyuan",
    "jinzhong",
    "datong",
    "pingyao",
    "fenjiu",
    "huanghe",
    "meishi",
    "lvyou",
    "jiaoyu",
    "xinwen",
    "tianqi",
    "yiyuan",
    "keji",
    "nongye",
    "wuliu",
    "jiaju",
    "qiche",
    "shuma",
    "yinyue",
    "tiyu",
    "shenghuo",
    "fangchan",
    "zhaopin",
    "wenhua",
    "jiankang",
)
_BENIGN_TLDS = ("com", "cn", "com.cn", "net", "org.cn", "gov.cn")
#: Lookalikes as fraudsters make them: brand plus a service word, typos, digit swaps, risky TLDs.
_LOOKALIKES = (
    "icbc-kefu.top",
    "icbc-verify.vip",
    "ccb-jiedong.xyz",
    "abchina-online.cc",
    "boc-tuikuan.icu",
    "alipey.com",
    "a1ipay.com",
    "zhifubao-kefu.shop",
    "unionpay-refund.top",
    "yinlian-tk.cc",
    "wechat-pay-verify.xyz",
    "12306-tuipiao.vip",
    "chinatax-fapiao.top",
    "gongan-fanzha.cc",
    "shebao-butie.xyz",
    "yibao-chaxun.icu",
    "10086-jifen.top",
    "chinamobile-jifen.cc",
    "jd-kefu-tuikuan.xyz",
    "taobao-tuikuan.shop",
    "cmbchina-dk.top",
    "pingan-daikuan.vip",
    "xn--lipay-3ve.com",
    "gov-cn-butie.top",
)


def observed_domains(province: Province) -> tuple[dict[str, pa.Table], list[str]]:
    """Per month, the domains the administration's resolvers saw; and the planted lookalikes."""
    rng = province.rng("fraud.domains")
    count = max(150, round(4000 * province.factor))
    words = np.asarray(_BENIGN_WORDS)
    names = np.char.add(
        np.char.add(
            words[rng.integers(0, len(words), count)], words[rng.integers(0, len(words), count)]
        ),
        np.char.zfill(rng.integers(0, 100, count).astype(str), 2),
    )
    benign = np.unique(np.char.add(np.char.add(names, "."), rng.choice(_BENIGN_TLDS, count)))
    lookalikes = list(_LOOKALIKES)
    tables = {}
    for index, period in enumerate(PERIODS):
        planted = lookalikes[index::2] if len(PERIODS) == 2 else lookalikes
        days = _days(period)
        start = np.datetime64(f"{period}-01")
        seen = start - rng.integers(30, 2000, len(benign)).astype("timedelta64[D]")
        new = start + rng.integers(0, days, len(planted)).astype("timedelta64[D]")
        tables[period] = pa.table(
            {
                "domain": np.concatenate([benign, np.asarray(planted)]),
                "first_seen": np.concatenate([seen, new]).astype(str),
                "query_count": np.concatenate(
                    [rng.lognormal(7, 1.5, len(benign)), rng.lognormal(5, 1.0, len(planted))]
                ).astype(np.int64),
                "source": np.concatenate(
                    [
                        np.full(len(benign), "resolver"),
                        rng.choice(["resolver", "user_report"], len(planted)),
                    ]
                ),
            }
        )
    return tables, lookalikes
