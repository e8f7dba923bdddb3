"""EC2 spot price history: fetched with boto3, cached as parquet, turned into hourly series and statistics.

``DescribeSpotPriceHistory`` returns price-*change events* (not hourly samples), ``SpotPrice`` as a string, at
most 90 days back, paginated by ``NextToken``, and the price in effect at ``StartTime`` as its first event. So:

* :func:`fetch_history` asks only for what the parquet cache does not already cover (per region, instance type
  and product description); a monthly report re-uses the cache and extends it by the new month, and a second run
  over the same window makes no API call at all. Throttling (``RequestLimitExceeded``) is retried with
  exponential backoff and jitter; missing credentials give one clear line. ``offline=True`` never calls AWS.
* :func:`hourly_series` turns events into an hourly step series (the price in effect at each hour) with an
  ASOF join in DuckDB; :func:`price_stats` gives per type, AZ and OS the median and percentile prices, the discount
  vs the on-demand price of the same OS, and volatility (coefficient of variation, changes per day).

Cache layout (``cache_dir``): ``events.parquet`` (region, availability_zone, instance_type, product_description,
timestamp UTC, spot_price DECIMAL(18,6), source) and ``coverage.parquet`` (region, instance_type,
product_description, start, end, fetched_at, source): the time ranges already asked for.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .datafiles import data_rows
from .errors import ConfigError, FinopsError
from .spot import UNKNOWN_OS, ondemand_prices

MAX_LOOKBACK_DAYS = 90
DEFAULT_CACHE_DIR = "data/cache/spot_prices"
SAMPLE_CACHE_DIR = "data/spot/sample_cache"
THROTTLE_CODES = {"RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
                  "ServiceUnavailable", "Unavailable", "InternalError"}
PRICE = pa.decimal128(18, 6)
EVENT_SCHEMA = pa.schema([("region", pa.string()), ("availability_zone", pa.string()),
                          ("instance_type", pa.string()), ("product_description", pa.string()),
                          ("timestamp", pa.timestamp("us", tz="UTC")), ("spot_price", PRICE),
                          ("source", pa.string())])
COVERAGE_SCHEMA = pa.schema([("region", pa.string()), ("instance_type", pa.string()),
                             ("product_description", pa.string()), ("start", pa.timestamp("us", tz="UTC")),
                             ("end", pa.timestamp("us", tz="UTC")), ("fetched_at", pa.timestamp("us", tz="UTC")),
                             ("source", pa.string())])


@dataclass
class FetchReport:
    """What a fetch did: API calls (pages), retries after throttling, events added, ranges asked for."""

    api_calls: int = 0
    throttled_retries: int = 0
    new_events: int = 0
    fetched_ranges: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.fetched_ranges and not self.api_calls:
            return "spot prices: all requested ranges served from the cache (0 API calls)"
        return (f"spot prices: {self.api_calls} API call(s) for {len(self.fetched_ranges)} missing range(s), "
                f"{self.new_events} new price events, {self.throttled_retries} throttling retr(y/ies)")


@dataclass
class PriceHistory:
    """Price-change events for a window [start, end) plus how they were obtained."""

    events: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    report: FetchReport
    cache_dir: str


# ------------------------------------------------------------------------------------------------ helpers
def _utc(ts) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _window(lookback_days: float, end, now) -> tuple[pd.Timestamp, pd.Timestamp, list[str]]:
    notes = []
    now = _utc(now or datetime.now(UTC))
    end = min(_utc(end), now) if end is not None else now
    if lookback_days > MAX_LOOKBACK_DAYS:
        notes.append(f"lookback of {lookback_days:g} days clamped to the API's {MAX_LOOKBACK_DAYS}-day limit")
        lookback_days = MAX_LOOKBACK_DAYS
    if lookback_days <= 0:
        raise ConfigError(f"lookback_days must be > 0, got {lookback_days!r}")
    start = end - pd.Timedelta(days=lookback_days)
    return start, end, notes


def _read(path: Path, schema: pa.Schema) -> pd.DataFrame:
    if path.exists():
        return pq.read_table(path).to_pandas()
    return schema.empty_table().to_pandas()


def _write(df: pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    """Atomic replace, so an interrupted run never leaves a half-written cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False), tmp)
    os.replace(tmp, path)


def read_cache(cache_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, coverage) frames of a cache directory (empty frames when it does not exist yet)."""
    d = Path(cache_dir)
    return _read(d / "events.parquet", EVENT_SCHEMA), _read(d / "coverage.parquet", COVERAGE_SCHEMA)


def _missing(coverage: pd.DataFrame, key: tuple[str, str, str], start: pd.Timestamp, end: pd.Timestamp,
             tolerance: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Parts of [start, end) not covered by earlier fetches of this key (gaps shorter than ``tolerance`` skipped)."""
    c = coverage[(coverage.region == key[0]) & (coverage.instance_type == key[1])
                 & (coverage.product_description == key[2])].sort_values("start")
    gaps, cursor = [], start
    for s, e in zip(c.start, c.end, strict=True):
        s, e = _utc(s), _utc(e)
        if e <= cursor:
            continue
        if s > cursor:
            gaps.append((cursor, min(s, end)))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if b - a > tolerance]


def ec2_client(region: str, *, endpoint_url: str | None = None, session=None):
    """A boto3 EC2 client with botocore's own retries off: throttling is retried (and counted) here."""
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=30,
                 user_agent_extra="finops-kit")
    sess = session or boto3.session.Session()
    return sess.client("ec2", region_name=region, endpoint_url=endpoint_url, config=cfg)


def _call(client, kwargs: dict, report: FetchReport, max_attempts: int, base: float, region: str) -> dict:
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    for attempt in range(1, max_attempts + 1):
        try:
            report.api_calls += 1
            return client.describe_spot_price_history(**kwargs)
        except (NoCredentialsError, PartialCredentialsError):
            raise FinopsError(
                "no AWS credentials found for ec2:DescribeSpotPriceHistory: set AWS_PROFILE (or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or run offline from the cache (offline=True)") from None
        except EndpointConnectionError as exc:
            raise FinopsError(f"cannot reach the EC2 endpoint for {region} ({exc.kwargs.get('endpoint_url')}); "
                              "check the network or run offline from the cache (offline=True)") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            msg = exc.response.get("Error", {}).get("Message", "")
            if code in THROTTLE_CODES and attempt < max_attempts:
                report.throttled_retries += 1
                time.sleep(base * (2 ** (attempt - 1)) * (0.5 + random.random()))  # backoff with jitter
                continue
            if code in THROTTLE_CODES:
                raise FinopsError(f"EC2 {region}: DescribeSpotPriceHistory still throttled ({code}) after "
                                  f"{max_attempts} attempts; retry later or ask for fewer instance types/regions"
                                  ) from None
            raise FinopsError(f"EC2 {region}: DescribeSpotPriceHistory failed: {code}: {msg}") from None
    raise AssertionError("unreachable")


def _fetch_range(client, region: str, types: list[str], product: str, start: pd.Timestamp, end: pd.Timestamp,
                 report: FetchReport, page_size: int, max_attempts: int, base: float) -> list[dict]:
    """All pages of one request (NextToken; AWS ends with an empty token)."""
    kwargs = {"InstanceTypes": types, "ProductDescriptions": [product], "StartTime": start.to_pydatetime(),
              "EndTime": end.to_pydatetime(), "MaxResults": page_size}
    rows, token = [], None
    while True:
        resp = _call(client, kwargs | ({"NextToken": token} if token else {}), report, max_attempts, base, region)
        for r in resp.get("SpotPriceHistory", []):
            rows.append({"region": region, "availability_zone": r["AvailabilityZone"],
                         "instance_type": r["InstanceType"], "product_description": r["ProductDescription"],
                         "timestamp": _utc(r["Timestamp"]), "spot_price": Decimal(r["SpotPrice"]),
                         "source": "api"})
        token = resp.get("NextToken")
        if not token:
            return rows


def fetch_history(instance_types: Sequence[str], regions: Sequence[str],
                  product_descriptions: Sequence[str] = ("Linux/UNIX",), *, lookback_days: float = 90,
                  end=None, now=None, cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR, offline: bool = False,
                  endpoint_url: str | None = None, session=None, page_size: int = 1000, max_attempts: int = 6,
                  retry_base_seconds: float = 0.5, refresh_tolerance_hours: float = 1.0) -> PriceHistory:
    """Spot price events for the window [end - lookback_days, end), from the cache and (unless offline) EC2.

    Only the ranges the cache does not cover are requested; the cache is extended with what comes back.
    In offline mode the cache is the only input; a range it lacks is named in ``report.notes``.
    """
    if not instance_types or not regions or not product_descriptions:
        raise ConfigError("spot prices: give at least one instance type, region and product description")
    start, end, notes = _window(lookback_days, end, now)
    report = FetchReport(notes=notes)
    d = Path(cache_dir)
    events, coverage = read_cache(d)
    tol = pd.Timedelta(hours=refresh_tolerance_hours)
    todo: dict[tuple[str, str, pd.Timestamp, pd.Timestamp], list[str]] = {}
    for region in regions:
        for product in product_descriptions:
            for itype in instance_types:
                for a, b in _missing(coverage, (region, itype, product), start, end, tol):
                    todo.setdefault((region, product, a, b), []).append(itype)
    if todo and offline:
        for (region, product, a, b), types in sorted(todo.items()):
            report.notes.append(f"offline: cache {d} lacks {region} {product} {', '.join(types)} "
                                f"{a:%Y-%m-%d %H:%M}..{b:%Y-%m-%d %H:%M}")
        todo = {}
    if todo:
        fetched_at = _utc(datetime.now(UTC))
        new_rows, new_cov = [], []
        clients: dict[str, object] = {}
        for (region, product, a, b), types in sorted(todo.items()):
            client = clients.get(region) or clients.setdefault(
                region, ec2_client(region, endpoint_url=endpoint_url, session=session))
            new_rows += _fetch_range(client, region, sorted(types), product, a, b, report, page_size,
                                     max_attempts, retry_base_seconds)
            new_cov += [{"region": region, "instance_type": t, "product_description": product, "start": a,
                         "end": b, "fetched_at": fetched_at, "source": "api"} for t in types]
            report.fetched_ranges.append((region, product, ",".join(sorted(types)), str(a), str(b)))
        before = len(events)
        if new_rows:
            events = pd.concat([events, pd.DataFrame(new_rows)], ignore_index=True)
            events = events.drop_duplicates(["region", "availability_zone", "instance_type",
                                             "product_description", "timestamp"], keep="last")
        report.new_events = len(events) - before
        coverage = pd.concat([coverage, pd.DataFrame(new_cov)], ignore_index=True)
        _write(events.sort_values(["region", "instance_type", "availability_zone", "timestamp"]),
               d / "events.parquet", EVENT_SCHEMA)
        _write(coverage, d / "coverage.parquet", COVERAGE_SCHEMA)
    sel = events[events.region.isin(regions) & events.instance_type.isin(instance_types)
                 & events.product_description.str.startswith(tuple(product_descriptions))
                 & (pd.to_datetime(events.timestamp, utc=True) < end)]
    return PriceHistory(sel.reset_index(drop=True), start, end, report, str(d))


# ----------------------------------------------------------------------------------- series and statistics
def _con(history: PriceHistory) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ev = history.events
    con.register("events", pa.Table.from_pandas(ev[EVENT_SCHEMA.names], schema=EVENT_SCHEMA, preserve_index=False))
    return con


def hourly_series(history: PriceHistory) -> pd.DataFrame:
    """The price in effect at each hour of [start, end) per region/AZ/type/product (step function of events).

    Hours before a series' first known event are left out rather than guessed.
    """
    con = _con(history)
    try:
        return con.execute(f"{_HOURLY_SQL} ORDER BY ALL",
                           [history.start.to_pydatetime(), history.end.to_pydatetime()]).df()
    finally:
        con.close()


#: The hourly step series of :func:`hourly_series` over the ``events`` of :func:`_con`, hours from $1 to $2.
_HOURLY_SQL = """
          WITH keys AS (SELECT DISTINCT region, availability_zone, instance_type, product_description FROM events),
          grid AS (
            SELECT k.*, g.hour FROM keys k,
              (SELECT unnest(range(date_trunc('hour', $1::TIMESTAMPTZ), $2::TIMESTAMPTZ, INTERVAL 1 HOUR)) AS hour) g)
          SELECT g.region, g.availability_zone, g.instance_type, g.product_description, g.hour, e.spot_price
          FROM grid g ASOF JOIN events e
            ON g.region = e.region AND g.availability_zone = e.availability_zone
           AND g.instance_type = e.instance_type AND g.product_description = e.product_description
           AND g.hour >= e.timestamp"""


def product_operating_systems(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """ProductDescription -> operating system of the on-demand price table (``data/ec2_product_descriptions.csv``)."""
    return pd.DataFrame(data_rows("ec2_product_descriptions.csv", path),
                        columns=["product_description", "operating_system"])


#: The ``kind`` values of ``data/vm_operating_systems.csv`` (see its header).
VM_OS_KINDS = ("meter", "base", "licence", "software", "any")


def vm_os_rules() -> list[dict[str, str]]:
    """The rows of ``data/vm_operating_systems.csv``, their ``kind`` checked (a one-line ConfigError otherwise)."""
    rules = data_rows("vm_operating_systems.csv")
    for r in rules:
        if r.get("kind") not in VM_OS_KINDS:
            raise ConfigError(f"data/vm_operating_systems.csv: kind {r.get('kind')!r} of rule {r['pattern']!r}; "
                              f"expected one of {', '.join(VM_OS_KINDS)}")
    return rules


def _vm_case(provider: str, then: str) -> str:
    """SQL: ``then`` (formatted with a rule's columns) of the first ``vm_operating_systems.csv`` rule a row
    matches, NULL when none does."""
    from .sources.base import sql_str

    whens = [f"WHEN regexp_matches(coalesce({provider}, ''), {sql_str(r['provider_pattern'])}) "
             f"AND regexp_matches(coalesce(CAST({r['column']} AS VARCHAR), ''), {sql_str(r['pattern'])}) "
             f"THEN {then.format(**{k: sql_str(v) for k, v in r.items()})}" for r in vm_os_rules()]
    return f"CASE {' '.join(whens)} END" if whens else "CAST(NULL AS VARCHAR)"


def vm_os_kind_sql(provider: str = "ProviderName") -> str:
    """SQL: the ``kind`` of the ``data/vm_operating_systems.csv`` rule a row matches (meter, base, licence,
    software, any; NULL for an AWS row or a row no rule names)."""
    return _vm_case(provider, "{kind}")


def operating_system_sql(operation: str = "x_Operation", provider: str = "ProviderName") -> str:
    """SQL: the operating system of a billed row, read from the row alone: an EC2 row's (Linux, Windows, RHEL, SUSE;
    NULL for operations ``data/ec2_usage_operations.csv`` does not list), read from its usage operation
    (``RunInstances:0002`` = Windows) through the same ProductDescription -> OS table the spot price statistics use
    (:func:`product_operating_systems`), so the bill, the price history and the Advisor speak of one OS; an Azure
    or Google Cloud VM row's from ``data/vm_operating_systems.csv`` (an Azure Windows meter says Windows, its base
    meter the Linux price, its licence meter the OS it licenses; a Compute Engine compute row's rate is the same
    for every OS); NULL for anything else. A VM's OS, which a licence row of the same instance can name for its
    base-meter rows, is :func:`operating_system_rows_sql`'s.

    Why: :func:`finops_kit.spot.spot_what_if` re-priced Windows on-demand hours with Linux spot figures (Advisor
    s = 59% instead of 76% for g5.xlarge, or the bill's Linux spot rate).
    """
    from .sources.base import sql_str

    os_of = dict(product_operating_systems().itertuples(index=False, name=None))
    whens = []
    for r in data_rows("ec2_usage_operations.csv"):
        if r["product_description"] not in os_of:
            raise ConfigError(f"data/ec2_usage_operations.csv: product description {r['product_description']!r} "
                              "is not in data/ec2_product_descriptions.csv")
        whens.append(f"WHEN regexp_matches(coalesce(trim({operation}), ''), {sql_str(r['pattern'])}) "
                     f"THEN {sql_str(os_of[r['product_description']])}")
    return (f"CASE WHEN regexp_matches(coalesce({provider}, ''), '(?i)aws|amazon') THEN CASE {' '.join(whens)} END "
            f"ELSE {_vm_case(provider, '{operating_system}')} END")


def operating_system_label_sql(operation: str = "x_Operation", provider: str = "ProviderName") -> str:
    """SQL: the operating system a report shows for a billed row read alone, never NULL: the OS of
    :func:`operating_system_sql` where the bill gives it; for an AWS usage operation
    ``data/ec2_usage_operations.csv`` does not list, ``unknown (<operation>)`` without the spot request suffix
    (``RunInstances:0006:SV001`` and ``RunInstances:0006`` are both ``unknown (RunInstances:0006)``: the same
    platform, whatever it is); else ``unknown`` (a row no rule names). Reports read it per instance, through
    :func:`operating_system_rows_sql`.

    Why: two rows may share a spot rate only when their platforms are the same; an unknown OS is not an OS, so
    two 'unknown' rows are not known to match. The spot what-if gave a Windows + SQL Server on-demand hour the
    spot rate of an Ubuntu Pro instance (both NULL: $1.67/h -> $0.42/h, saving $125.00 instead of $91.85), and
    an Azure Windows VM the rate of a Linux spot VM ($4.856/h -> $0.64/h, saving $421.60 instead of $267.08).
    The label keeps the operation code, so a reader sees which code to add to the table.
    """
    from .sources.base import sql_str

    code = f"regexp_replace(trim({operation}), ':SV[0-9]+$', '')"
    return (f"coalesce({operating_system_sql(operation, provider)}, "
            f"CASE WHEN regexp_matches(coalesce({provider}, ''), '(?i)aws|amazon') AND trim({operation}) <> '' "
            f"THEN {sql_str(UNKNOWN_OS + ' (')} || {code} || ')' END, {sql_str(UNKNOWN_OS)})")


def licence_apart_providers() -> tuple[str, ...]:
    """The provider patterns of ``data/vm_operating_systems.csv`` that have ``licence`` rules: providers whose VM
    bills its OS licence on a row of its own once the compute is reserved (Azure), so a commitment of theirs
    discounts the compute of any OS and never the licence (:func:`finops_kit.commitments.compute_options`)."""
    return tuple(dict.fromkeys(r["provider_pattern"] for r in vm_os_rules() if r["kind"] == "licence"))


def operating_system_rows_sql(source: str, licences: str, *, operation: str = "x_Operation",
                              provider: str = "ProviderName") -> str:
    """A FROM item: the rows of ``source`` plus ``operating_system``, the OS of the row's instance as every report
    shows it (the one answer of spot coverage, rates, the what-if and commitments), ``licence_os`` (the OS a licence
    row names, NULL on other rows) and ``os_kind`` (the row's ``data/vm_operating_systems.csv`` kind).

    ``operating_system`` is :func:`operating_system_label_sql` of the row, except that a ``base``, ``licence`` or
    ``software`` row takes the OS that a ``licence`` row of the same instance (:data:`finops_kit.units.INSTANCE_KEY`:
    ProviderName, ResourceId, ChargePeriodStart) names, and a ``software`` row (a licence of other software, which
    names no OS) without one the OS a ``meter`` row of the instance names. ``licences``: a FROM item holding those
    licence and meter rows (the scope's rows): only they are read, once, into a small table joined on the instance
    key.

    Why: a reserved (or spot) Azure Windows VM bills its compute on the base meter, whose price is Linux's, and
    its Windows licence on a licence meter; read row by row the spot report showed a Linux fleet of 744 h and
    $1,639.63 that does not exist and a Windows group of $821.38 with no hours (review csg, finding 3). A
    pay-as-you-go Windows VM's SQL Server licence fell to the base rule and read Linux: a 'Linux' line of 576.00
    with no hours beside the VM's Windows line of 1,146.48, where one Windows VM costs 1,722.48 (review s17,
    finding 3)."""
    from .sources.base import sql_str

    key = ("ProviderName", "ResourceId", "ChargePeriodStart")
    label = operating_system_label_sql(operation, provider)
    kind = vm_os_kind_sql(provider)
    named = [r for r in vm_os_rules() if r["kind"] in ("licence", "meter")]
    if named:  # only rows a licence or meter rule matches are read (then checked to be their first match)
        pre = " OR ".join(f"(regexp_matches(coalesce({provider}, ''), {sql_str(r['provider_pattern'])}) AND "
                          f"regexp_matches(coalesce(CAST({r['column']} AS VARCHAR), ''), {sql_str(r['pattern'])}))"
                          for r in named)
        lic = (f"(SELECT {', '.join(key)}, min(_os) FILTER (WHERE _k = 'licence') AS _os, "
               f"min(_os) FILTER (WHERE _k = 'meter') AS _meter_os FROM ("
               f"SELECT {', '.join(key)}, {kind} AS _k, {operating_system_sql(operation, provider)} AS _os "
               f"FROM {licences} WHERE ResourceId IS NOT NULL AND ({pre})) "
               f"WHERE _k IN ('licence', 'meter') AND _os IS NOT NULL GROUP BY ALL)")
    else:
        lic = ("(SELECT CAST(NULL AS VARCHAR) AS ProviderName, CAST(NULL AS VARCHAR) AS ResourceId, "
               "CAST(NULL AS TIMESTAMP) AS ChargePeriodStart, CAST(NULL AS VARCHAR) AS _os, "
               "CAST(NULL AS VARCHAR) AS _meter_os WHERE FALSE)")
    same = " AND ".join(f"_l.{c} IS NOT DISTINCT FROM _o.{c}" for c in key if c != "ResourceId")
    return f"""(
      SELECT _o.* EXCLUDE (_os_row),
             CASE WHEN _o.os_kind IN ('base', 'licence', 'software') AND _l._os IS NOT NULL THEN _l._os
                  WHEN _o.os_kind = 'software' AND _l._meter_os IS NOT NULL THEN _l._meter_os
                  ELSE _o._os_row END AS operating_system,
             CASE WHEN _o.os_kind = 'licence' THEN _o._os_row END AS licence_os
      FROM (SELECT *, {kind} AS os_kind, {label} AS _os_row FROM {source}) _o
        LEFT JOIN {lic} _l ON _l.ResourceId = _o.ResourceId AND {same})"""


def operating_system_usage_from(con: Any, sc: Any) -> str:
    """A FROM item: the scope's accelerated usage (:func:`finops_kit.units.accelerated_usage_from`) with each row's
    operating system (:func:`operating_system_rows_sql` over the scope's rows), the relation the spot and
    commitment analyses read -- derived once per read-only connection (:func:`finops_kit.querycache.materialized`);
    run such a query through :mod:`finops_kit.querycache`, or call :func:`finops_kit.querycache.ensure` first."""
    from . import units
    from .querycache import materialized

    rows = operating_system_rows_sql(units.accelerated_usage_from(con, sc), sc.rows_sql())
    return materialized(con, f"SELECT * FROM {rows} _usage", "usage_os")


def price_stats(history: PriceHistory, prices: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per region, instance type, AZ and product description: hourly median/percentiles, discount, volatility.

    Statistics are over the hourly step series, i.e. time-weighted (a price that held for a week weighs a
    week). Each product description (Linux/UNIX, Windows, ...) is its own series: a Windows spot price carries the
    licence, so pooling it with Linux would double the hours and blend two price levels. ``discount_vs_od`` = 1 -
    median / on-demand price of the *same operating system* in the dated price table (NaN when the table has no
    price for the type, region and OS; ``data/ec2_product_descriptions.csv`` maps product descriptions to OSes).
    ``cv`` = standard deviation / mean of the hourly price.
    """
    od = ondemand_prices() if prices is None else prices
    # the hourly series derived on this connection (the prices as DOUBLE, as hourly_series' frame holds them):
    # not built as a pandas frame and registered back (26k rows of the demo: a fifth of the report's price cell)
    con = _con(history)
    try:
        con.execute(f"CREATE TEMP TABLE hourly AS SELECT * REPLACE (CAST(spot_price AS DOUBLE) AS spot_price) "
                    f"FROM ({_HOURLY_SQL})", [history.start.to_pydatetime(), history.end.to_pydatetime()])
        con.register("od", od[["instance_type", "region", "operating_system", "usd_per_hour", "price_date"]])
        con.register("os_map", product_operating_systems())
        con.register("ev", history.events[["region", "availability_zone", "instance_type", "product_description",
                                           "timestamp"]])
        return con.execute("""
          WITH s AS (
            SELECT region, instance_type, availability_zone, product_description, count(*) AS hours,
              CAST(median(spot_price) AS DOUBLE) AS median_price,
              quantile_cont(CAST(spot_price AS DOUBLE), 0.10) AS p10_price,
              quantile_cont(CAST(spot_price AS DOUBLE), 0.90) AS p90_price,
              CAST(min(spot_price) AS DOUBLE) AS min_price, CAST(max(spot_price) AS DOUBLE) AS max_price,
              avg(CAST(spot_price AS DOUBLE)) AS mean_price,
              stddev_pop(CAST(spot_price AS DOUBLE)) / nullif(avg(CAST(spot_price AS DOUBLE)), 0) AS cv
            FROM hourly GROUP BY ALL),
          c AS (
            SELECT region, instance_type, availability_zone, product_description, count(*) AS price_changes
            FROM ev WHERE timestamp >= $1::TIMESTAMPTZ GROUP BY ALL)
          SELECT s.*, m.operating_system, coalesce(c.price_changes, 0) AS price_changes,
                 coalesce(c.price_changes, 0) / (s.hours / 24.0) AS changes_per_day,
                 od.usd_per_hour AS od_price, od.price_date AS od_price_date,
                 1 - s.median_price / od.usd_per_hour AS discount_vs_od,
                 1 - s.p90_price / od.usd_per_hour AS discount_vs_od_p90
          FROM s LEFT JOIN c USING (region, instance_type, availability_zone, product_description)
          LEFT JOIN os_map m USING (product_description)
          LEFT JOIN od ON od.region = s.region AND od.instance_type = s.instance_type
                      AND od.operating_system = m.operating_system
          ORDER BY s.region, s.instance_type, s.availability_zone, s.product_description""",
                           [history.start.to_pydatetime()]).df()
    finally:
        con.close()


def typical_spot_price(stats: pd.DataFrame, instance_type: str, region: str, quantile: str = "median",
                       operating_system: str = "Linux") -> float | None:
    """A planning price for a type in a region and OS: the cheapest AZ's median (or p90, p10) hourly price."""
    col = {"median": "median_price", "p90": "p90_price", "p10": "p10_price"}[quantile]
    s = stats[(stats.instance_type == instance_type) & (stats.region == region)
              & (stats.operating_system == operating_system)]
    return float(s[col].min()) if len(s) else None


# ----------------------------------------------------------------------------- synthetic sample for demos
def make_sample_cache(out_dir: str | os.PathLike, instance_types: Sequence[str], regions: Sequence[str],
                      advisor, *, end="2026-11-27", days: int = 90, azs_per_region: int = 3,
                      seed: int = 2026) -> Path:
    """Write a SYNTHETIC spot price cache (same layout as a real one) for offline demos and tests.

    Each AZ's price is a random walk of price-change events around on-demand x (1 - Advisor savings s), with
    events every 4-36 h and steps of a few percent. Every event is labelled ``source='synthetic (...)'``; do not
    read anything into the numbers beyond "shaped like spot price history".
    """
    rng = np.random.default_rng(seed)
    end_ts = _utc(end)
    start_ts = end_ts - pd.Timedelta(days=days)
    od = ondemand_prices()
    label = f"synthetic (random walk around Spot Advisor savings, {Path(str(advisor.source)).name})"
    rows, cov = [], []
    for region in regions:
        for itype in instance_types:
            price = od[(od.instance_type == itype) & (od.region == region)]
            adv = advisor.get(itype, region)
            if price.empty or adv is None:
                continue
            base = float(price.usd_per_hour.iloc[0]) * (1 - adv["savings_pct"] / 100)
            for az in "abcdef"[:azs_per_region]:
                level = base * rng.uniform(0.9, 1.1)
                t = start_ts - pd.Timedelta(hours=float(rng.uniform(1, 48)))  # the price in effect at start
                while t < end_ts:
                    rows.append({"region": region, "availability_zone": f"{region}{az}", "instance_type": itype,
                                 "product_description": "Linux/UNIX", "timestamp": t.floor("s"),
                                 "spot_price": Decimal(f"{level:.6f}"), "source": label})
                    t += pd.Timedelta(hours=float(rng.uniform(4, 36)))
                    # mean-reverting step: drifts back toward the Advisor-implied level
                    level = max(base * 0.5, min(base * 1.6, level * math.exp(rng.normal(0, 0.04))
                                                + 0.15 * (base - level)))
            cov.append({"region": region, "instance_type": itype, "product_description": "Linux/UNIX",
                        "start": start_ts, "end": end_ts, "fetched_at": end_ts, "source": label})
    d = Path(out_dir)
    _write(pd.DataFrame(rows), d / "events.parquet", EVENT_SCHEMA)
    _write(pd.DataFrame(cov), d / "coverage.parquet", COVERAGE_SCHEMA)
    return d


if __name__ == "__main__":  # regenerate the demo sample: python -m finops_kit.spot_prices [out_dir]
    from .spot import load_advisor

    out = make_sample_cache(sys.argv[1] if len(sys.argv) > 1 else SAMPLE_CACHE_DIR,
                            ["p4d.24xlarge", "p5.48xlarge", "g5.xlarge", "g5.12xlarge", "g6e.xlarge",
                             "trn1.32xlarge", "p3.2xlarge"], ["us-east-1", "us-west-2"], load_advisor())
    print(f"wrote {out}")
