"""AI unit economics: cost per training run, per 1k inferences and per 1M tokens served, with the numerator,
the denominator and the cost that could not be attributed stated beside every figure.

Why: "what does one unit of our AI cost" is the FinOps-for-AI question, and a unit cost is only as honest as its
numerator. Each figure here says which cost rows it divides (the numerator), by what (the denominator) and how much
cost in the same days it could not attach to a unit, so a falling unit cost cannot hide a growing unattributed pile.

**Training runs** (:func:`training_runs`) are identified, in this order (a row belongs to one run at most):

1. a run tag: the first of ``unit_economics.run_tags`` in finops.yaml a row carries (default ``training-run`` and
   GCP's ``vertex-ai-pipelines-run-billing-id`` label, which Vertex AI propagates to a pipeline run's resources);
2. a resource id pattern: the first capture group of ``unit_economics.run_resource_patterns`` (default SageMaker
   training job ARNs ``training-job/<job name>``);
3. a runs file (CSV: ``run_id,start,end,resource_ids``; ids separated by ``;`` or spaces; times ISO 8601, UTC
   unless they carry an offset): the listed resources' rows between start and end. A charge period the run covers
   in part (a daily row of a run that started at 14:00) counts in proportion to the time covered (exact money:
   truncated to MONEY's 12 decimals). A resource listed twice in one run is one resource; one listed in two runs
   whose times overlap is refused (one line naming the file, both runs and the resource), not split by a guess.

A run's cost is every row so identified: GPU instances, and its storage and data transfer where the bill lets
them be attributed (tagged volumes and buckets, listed resources), split by the kit's one storage and transfer
classification (``data/storage_classes.csv``, ``data/transfer_types.csv``). GPU-hours are accelerator-hours from
:mod:`finops_kit.units`; spot share = spot GPU-hours / GPU-hours that could run on spot
(:func:`finops_kit.units.spot_share_sql`); cost per GPU-hour = run cost / GPU-hours.

**Not attributed to any run** is a part of one stated total, the accelerated compute in scope (the headline of that
label, :func:`finops_kit.units.accelerated_usage_sql`): attributed = the runs' shares of those very rows (a
runs-file resource only inside its run's window, row by row: no resource-level NOT IN), unattributed = the rest, so
attributed + unattributed = the total exactly. A run's cost outside that total -- its storage and data transfer,
and runs on rows the kit's AI classification does not call accelerated compute (a SageMaker job on a CPU instance
is ``x_AiWorkload`` 'ML platform') -- is its ``cost`` minus its ``accelerated_cost``, listed by reason in
``Runs.outside``.

**Inference unit costs** (:func:`inference_unit_costs`) join the bill to a business-metrics file (CSV or parquet:
``date,application,requests,tokens[,revenue]``) by UTC day and application. The application of a cost row is the
value of the tag policy key ``unit_economics.application_key`` (default ``project``, whose aliases include ``app``
and ``application``) under :mod:`finops_kit.attribution`. Numerator: EffectiveCost of the rows of that application
that day (every service: endpoints, tokens, egress). Unattributed: the same days' cost with no valid application
value, the cost of applications the metrics file does not list, and the cost of a listed application on a day
the file has no row for -- each with its reason; attributed + unattributed = the bill of those days, checked. Cost
per 1M tokens of an application divides only the cost of its days with a token count (the rest is its
``cost_without_tokens``).

**Elasticity**: per application, the slope b of ln(cost per 1k requests) against ln(requests) over its days
(least squares). b = 0: unit cost does not move with volume (all cost variable, e.g. per-token billing); b = -1:
cost does not move with volume at all (fixed capacity: every extra request is free until the capacity runs out,
and a quiet day is expensive per request); in between: economies of scale.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from . import units
from .egress import transfer_rules
from .errors import ConfigError, InputError
from .gpu import unit_section
from .schema import MONEY
from .sources.base import sql_str
from .storage import rule_case, storage_rules

DEFAULT_RUN_TAGS = ("training-run", "vertex-ai-pipelines-run-billing-id")
DEFAULT_RUN_PATTERNS = (r"training-job/([^/]+)$",)
DEFAULT_APPLICATION_KEY = "project"


# ------------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class RunRules:
    """How training runs are found in the bill (``unit_economics`` section of finops.yaml)."""

    tags: tuple[str, ...] = DEFAULT_RUN_TAGS
    resource_patterns: tuple[str, ...] = DEFAULT_RUN_PATTERNS


def load_run_rules(config: Any = None) -> RunRules:
    """``run_tags`` (tag keys) and ``run_resource_patterns`` (regular expressions with one capture group)."""
    sec = unit_section(config)
    tags = sec.get("run_tags", list(DEFAULT_RUN_TAGS))
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
        raise ConfigError(f"unit_economics.run_tags: {tags!r}; expected a list of tag keys such as [training-run]")
    pats = sec.get("run_resource_patterns", list(DEFAULT_RUN_PATTERNS))
    if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise ConfigError(f"unit_economics.run_resource_patterns: {pats!r}; expected a list of regular expressions")
    for p in pats:
        try:
            groups = re.compile(p).groups
        except re.error as exc:
            raise ConfigError(f"unit_economics.run_resource_patterns: {p!r} is not a regular expression "
                              f"({exc})") from None
        if groups != 1:
            raise ConfigError(f"unit_economics.run_resource_patterns: {p!r} has {groups} capture groups; expected "
                              "exactly one, the run id (e.g. training-job/([^/]+)$)")
    return RunRules(tuple(t.strip() for t in tags), tuple(pats))


def application_key(config: Any = None) -> str:
    """The tag policy key that names an application (``unit_economics.application_key``, default project)."""
    key = unit_section(config).get("application_key", DEFAULT_APPLICATION_KEY)
    if not isinstance(key, str) or not key:
        raise ConfigError(f"unit_economics.application_key: {key!r}; expected a tag_policy key such as project")
    return key


# ------------------------------------------------------------------------------------------------ input files
def _rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(str(path), f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text (byte {exc.start})") from None
    return [r for r in csv.reader(io.StringIO(text), skipinitialspace=True)]


def _instant(value: str, file: str, row: int, column: str) -> dt.datetime:
    v = value.strip()
    try:
        t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(file, f"{value!r} is not a time; expected ISO 8601 such as 2026-10-14T08:00:00Z",
                         row=row, column=column) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).replace(tzinfo=None)


def read_runs_file(path: str | Path) -> pd.DataFrame:
    """The runs file: one row per (run_id, start, end, resource_id), times in UTC; validated.

    A resource listed twice in one run (ids compare case-insensitively, as they are matched to the bill) is one
    resource of it. A resource listed in two runs whose times overlap is refused, one line naming the file, both
    runs and the resource: either run could own the shared hours, and any split (half each? by GPUs used?) would
    be a guess the file does not state. Runs that only touch (one ends when the other starts) are fine."""
    p = Path(path)
    f = str(p)
    rows = _rows(p)
    if not rows:
        raise InputError(f, "empty runs file; expected a header run_id,start,end,resource_ids")
    header = [h.strip().lower() for h in rows[0]]
    for need in ("run_id", "start", "end", "resource_ids"):
        if need not in header:
            raise InputError(f, f"missing column; expected a header run_id,start,end,resource_ids, saw "
                                f"{','.join(rows[0])}", column=need)
    ix = {c: header.index(c) for c in ("run_id", "start", "end", "resource_ids")}
    out, seen = [], set()
    claims: dict[str, list[tuple[str, dt.datetime, dt.datetime, int]]] = {}  # resource (lower case) -> its runs
    for n, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        if len(r) < len(header):
            raise InputError(f, f"{len(r)} fields; expected {len(header)}", row=n)
        run = r[ix["run_id"]].strip()
        if not run:
            raise InputError(f, "empty run id", row=n, column="run_id")
        if run in seen:
            raise InputError(f, f"run {run!r} listed twice; expected one row per run", row=n, column="run_id")
        seen.add(run)
        t0 = _instant(r[ix["start"]], f, n, "start")
        t1 = _instant(r[ix["end"]], f, n, "end")
        if t1 <= t0:
            raise InputError(f, f"end {r[ix['end']].strip()} is not after start {r[ix['start']].strip()}", row=n,
                             column="end")
        ids = [x for x in re.split(r"[;\s]+", r[ix["resource_ids"]].strip()) if x]
        if not ids:
            raise InputError(f, "no resource ids; expected ids separated by ';'", row=n, column="resource_ids")
        ids = list({i.lower(): i for i in reversed(ids)}.values())[::-1]  # listed twice: once (first spelling)
        for rid in ids:
            for other, o0, o1, orow in claims.get(rid.lower(), ()):
                if t0 < o1 and o0 < t1:  # the same resource in two runs at once: its hours would count twice
                    raise InputError(f, f"runs {other!r} (row {orow}) and {run!r} both list resource {rid!r} "
                                        f"from {max(t0, o0):%Y-%m-%d %H:%M} to {min(t1, o1):%Y-%m-%d %H:%M} UTC; "
                                        "expected a resource in one run at a time (list it in one of them, or "
                                        "end one run where the other starts)", row=n, column="resource_ids")
            claims.setdefault(rid.lower(), []).append((run, t0, t1, n))
        out += [(run, t0, t1, rid) for rid in ids]
    return pd.DataFrame(out, columns=["run_id", "start", "end", "resource_id"])


def read_business_metrics(path: str | Path) -> pd.DataFrame:
    """The business-metrics file (CSV or parquet): date, application, requests, tokens, optional revenue; one row
    per day and application. Validated: a missing column, a date, a negative or non-numeric count, a repeated
    (date, application) is one line naming the file and row."""
    p = Path(path)
    f = str(p)
    if p.name.lower().endswith(".parquet"):
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InputError(f, f"not a readable parquet file ({str(exc).splitlines()[0][:120]})") from None
        df.columns = [str(c).strip().lower() for c in df.columns]
        raw = [list(df.columns)] + df.astype(object).where(df.notna(), "").astype(str).values.tolist()
    else:
        raw = _rows(p)
    if not raw:
        raise InputError(f, "empty business-metrics file; expected a header date,application,requests,tokens"
                            "[,revenue]")
    header = [h.strip().lower() for h in raw[0]]
    for need in ("date", "application", "requests", "tokens"):
        if need not in header:
            raise InputError(f, f"missing column; expected date,application,requests,tokens[,revenue], saw "
                                f"{','.join(raw[0])[:120]}", column=need)
    ix = {c: header.index(c) for c in ("date", "application", "requests", "tokens", "revenue") if c in header}
    out, seen = [], set()
    for n, r in enumerate(raw[1:], start=2):
        if not any(str(c).strip() for c in r):
            continue
        if len(r) < len(header):
            raise InputError(f, f"{len(r)} fields; expected {len(header)}", row=n)
        try:
            day = dt.date.fromisoformat(str(r[ix["date"]]).strip()[:10])
        except ValueError:
            raise InputError(f, f"{r[ix['date']]!r} is not a date; expected YYYY-MM-DD", row=n,
                             column="date") from None
        app = str(r[ix["application"]]).strip()
        if not app:
            raise InputError(f, "empty application", row=n, column="application")
        if (day, app) in seen:
            raise InputError(f, f"{day} {app} listed twice; expected one row per day and application", row=n)
        seen.add((day, app))
        vals: dict[str, float | None] = {}
        for c in ("requests", "tokens", "revenue"):
            if c not in ix:
                vals[c] = None
                continue
            s = str(r[ix[c]]).strip().replace(",", "") if c != "revenue" else str(r[ix[c]]).strip()
            if s == "" and c in ("tokens", "revenue"):
                vals[c] = None
                continue
            try:
                x = float(s)
            except ValueError:
                raise InputError(f, f"{r[ix[c]]!r} is not a number", row=n, column=c) from None
            if not math.isfinite(x) or (x < 0 and c != "revenue"):
                raise InputError(f, f"{s} is not a count; expected a number >= 0", row=n, column=c)
            vals[c] = x
        out.append((day, app, vals["requests"], vals["tokens"], vals["revenue"]))
    if not out:
        raise InputError(f, "no rows; expected one row per day and application")
    return pd.DataFrame(out, columns=["date", "application", "requests", "tokens", "revenue"])


# ------------------------------------------------------------------------------------------------ runs
@dataclass
class Runs:
    """Training runs of a scope: the table, how the figures are defined, and the GPU cost no run claims.

    ``gpu_cost`` is the accelerated compute in scope, the headline figure of that label
    (:func:`finops_kit.units.accelerated_usage_sql`); ``attributed_gpu_cost`` is the part of it in runs (the sum
    of the table's ``accelerated_cost``) and ``unattributed_gpu_cost`` the rest: attributed + unattributed =
    gpu_cost exactly (DECIMAL). A run's cost outside that total (its storage and transfer, a SageMaker job on a CPU
    instance -- ML platform, not accelerated compute in the kit's AI classification) is in ``outside``, by reason."""

    table: pd.DataFrame
    numerator: str
    denominator: str
    unattributed_gpu_cost: Decimal
    gpu_cost: Decimal
    attributed_gpu_cost: Decimal = Decimal(0)
    outside: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["run_id", "why", "cost"]))
    #: the rules the runs were found by, and the runs file's name (None: no runs file was given)
    rules: RunRules = field(default_factory=lambda: RunRules())
    runs_file: str | None = None

    def run(self, run_id: str) -> pd.Series:
        return self.table.set_index("run_id").loc[run_id]

    @property
    def sources(self) -> str:
        """Where the runs come from, in words, and whether a runs file was given (without one, a run listed only
        in a runs file is not found and its GPU cost counts as in no run): one sentence, no final stop."""
        rr, found = self.rules, []
        if rr.tags:
            found.append(("the tag " if len(rr.tags) == 1 else "the tags ") + " and ".join(rr.tags))
        for p in rr.resource_patterns:
            found.append(f"resource ids matching {p}" + (" (SageMaker training job names)"
                                                           if p in DEFAULT_RUN_PATTERNS else ""))
        if self.runs_file:
            found.append(f"the runs file {self.runs_file}")
        head = ("Training runs come from " + "; then ".join(found) if found else
                "No run tag or resource id pattern is configured (unit_economics.run_tags, run_resource_patterns)")
        return head + ("" if self.runs_file else
                       "; no runs file was given, so a run listed only in one is not found here and its GPU cost "
                       "counts as in no run")

    def gpu_note(self, span: str, money: Callable[[Any], str]) -> str:
        """The sentence on the accelerated compute in scope: how much of it is in runs and how much in none
        (Markdown; ``span`` already Markdown text, ``money`` the report's formatter); true without a runs file."""
        if not self.gpu_cost:
            return f"No accelerated compute in scope ({span}): no GPU cost for a run to take."
        share = self.unattributed_gpu_cost / self.gpu_cost
        tag = f"`{self.rules.tags[0]}`" if self.rules.tags else "a run tag (unit_economics.run_tags)"
        window = ("; a resource of the runs file counts only between its run's start and end" if self.runs_file else
                  "; no runs file was given")
        return (f"Accelerated compute in scope: **{money(self.gpu_cost)}**, of which {money(self.attributed_gpu_cost)} "
                f"is in runs and **{money(self.unattributed_gpu_cost)}** ({share:.0%}) in no run: inference fleets, "
                f"notebooks and training that no run source identifies{window}. Tag training jobs with {tag} to "
                "bring them into this table.")


def _json_key(key: str) -> str:
    return sql_str('$."' + key.replace('"', '\\"') + '"')


def _share_sql(cost: str, part: str, whole: str) -> str:
    """SQL: ``cost`` x ``part`` / ``whole`` (integers: microseconds) as exact money: the whole cost when the part
    is the whole, else truncated to the 12 decimals of MONEY in integer arithmetic (DuckDB divides decimals in
    DOUBLE)."""
    return (f"CASE WHEN {part} = {whole} THEN CAST({cost} AS {MONEY}) ELSE CAST(CAST(CAST(CAST({cost} AS {MONEY}) "
            f"* 1000000000000 AS HUGEINT) * {part} // nullif({whole}, 0) AS DECIMAL(38,0)) "
            f"* CAST(0.000000000001 AS DECIMAL(13,12)) AS {MONEY}) END")


def training_runs(con: duckdb.DuckDBPyConnection, sc: Any, runs_file: str | Path | None = None, *,
                  rules: RunRules | None = None, config: Any = None) -> Runs:
    """Cost, GPU-hours, cost per GPU-hour and spot share per training run (see the module doc).

    Every figure is made of the same row claims: a row (of a runs-file run: the part of its charge period inside
    the run) belongs to one run at most, so the runs never claim more than the bill; the accelerated compute not
    claimed by any run is ``unattributed_gpu_cost``, row by row (a resource in the runs file is the run's only
    between its start and end)."""
    rr = rules or load_run_rules(config if config is not None else getattr(sc, "config", None))
    tag_case = " ".join(f"WHEN json_exists(Tags, {_json_key(k)}) AND trim(json_extract_string(Tags, "
                        f"{_json_key(k)})) <> '' THEN {sql_str('tag ' + k)} || '|' || "
                        f"trim(json_extract_string(Tags, {_json_key(k)}))" for k in rr.tags)
    pat_case = " ".join(f"WHEN regexp_matches(coalesce(ResourceId, ''), {sql_str(p)}) THEN 'resource id' || '|' "
                        f"|| regexp_extract(ResourceId, {sql_str(p)}, 1)" for p in rr.resource_patterns)
    claim = f"CASE {tag_case} {pat_case} END" if (tag_case or pat_case) else "CAST(NULL AS VARCHAR)"
    srules, trules = storage_rules(), transfer_rules()
    attr = sc.attribution
    runs_df = read_runs_file(runs_file) if runs_file else pd.DataFrame(
        columns=["run_id", "start", "end", "resource_id"])
    view = f"_fk_runs_{id(runs_df)}"
    con.register(view, con.from_df(runs_df.astype({"run_id": str, "resource_id": str}))
                 if len(runs_df) else con.sql("SELECT NULL::VARCHAR AS run_id, NULL::TIMESTAMP AS start, "
                                              "NULL::TIMESTAMP AS \"end\", NULL::VARCHAR AS resource_id WHERE FALSE"))
    covered = "date_diff('microsecond', greatest(r.ChargePeriodStart, f.start), least(r.ChargePeriodEnd, f.\"end\"))"
    period = "date_diff('microsecond', r.ChargePeriodStart, r.ChargePeriodEnd)"
    why = ("CASE WHEN _storage THEN 'storage' WHEN _transfer THEN 'data transfer' "
           "WHEN ChargeCategory NOT IN ('Usage', 'Credit') THEN 'charge category ' || coalesce(ChargeCategory, '') "
           "ELSE 'x_AiWorkload ' || coalesce('''' || x_AiWorkload || '''', 'empty') || ', not accelerated compute' "
           "END")
    try:
        # the accelerated compute in scope, read once: its total is the headline, its rows the runs' base
        # with its instance's accelerator_hours_unknown: the one "GPU-hours unknown" of every report (only
        # accelerated instances have one; a run's m5.xlarge head node was "unknown accelerator cost" by row_sql's
        # catalog test alone, 4.1431 per GPU-hour instead of 4.1671)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {view}_base AS
                        SELECT _rowid, EffectiveCost, accelerator_hours_unknown
                        FROM ({units.accelerated_usage_sql(source=sc.rows_sql(rowid=True))})""")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {view}_x AS
            WITH r AS NOT MATERIALIZED (  -- read by tagged and listed: materialized, it held every column of every
              SELECT *, {claim} AS _claim   -- row in scope (6.1 GB at 2.6M rows) to keep a few hundred
              -- only the rows a run can claim (a claim, or a resource of the runs file) get their measures
              -- (row_sql is row by row: the same values): the claim of every row in scope was evaluated twice,
              -- once per reader, and the measures of 67k rows derived for a few hundred
              FROM ({units.row_sql(f"({claim}) IS NOT NULL OR lower(ResourceId) IN (SELECT lower(resource_id) "
                                   f"FROM {view})", source=sc.rows_sql(rowid=True))})),
            tagged AS (
              SELECT split_part(_claim, '|', 1) AS identified_by, substr(_claim, strpos(_claim, '|') + 1) AS run_id,
                     r.*, 1.0::DOUBLE AS w, CAST(EffectiveCost AS {MONEY}) AS _cost FROM r WHERE _claim IS NOT NULL),
            listed AS (
              SELECT 'runs file' AS identified_by, f.run_id, r.*,
                     (epoch(least(r.ChargePeriodEnd, f."end")) - epoch(greatest(r.ChargePeriodStart, f.start)))
                       / nullif(epoch(r.ChargePeriodEnd) - epoch(r.ChargePeriodStart), 0) AS w,
                     {_share_sql("r.EffectiveCost", covered, period)} AS _cost
              FROM r JOIN {view} f ON lower(r.ResourceId) = lower(f.resource_id)
                     AND r.ChargePeriodStart < f."end" AND r.ChargePeriodEnd > f.start
              WHERE r._claim IS NULL),
            base AS (SELECT _rowid, bool_or(accelerator_hours_unknown) AS _ah_unknown FROM {view}_base
                     GROUP BY _rowid),
            x AS (SELECT * FROM tagged UNION ALL BY NAME SELECT * FROM listed)
            -- storage/transfer class and team only for the rows a run claims (a few hundred of the scope's 67k
            -- on the sample): evaluated over every row in scope they were 40% of this function's time
            SELECT x.* REPLACE (coalesce(b._ah_unknown, FALSE) AS accelerator_hours_unknown),
                   {rule_case(srules)} IS NOT NULL AS _storage, {rule_case(trules)} IS NOT NULL AS _transfer,
                   {attr.owner_sql()} AS _team, b._rowid IS NOT NULL AS _in_base
            FROM x LEFT JOIN base b ON b._rowid = x._rowid""")
        df = con.execute(f"""
            SELECT run_id, min(identified_by) AS identified_by,
                   arg_max(_team, (EffectiveCost, _team)) AS team, BillingCurrency AS currency,
                   min(ChargePeriodStart)::DATE AS first_day, (max(ChargePeriodEnd) - INTERVAL 1 SECOND)::DATE
                     AS last_day,
                   count(DISTINCT ResourceId) AS resources,
                   -- NULL (unknown), not 0, for a run whose every instance has unknown GPU-hours
                   {units.known_total("accelerator_hours", weight="w")} AS accelerator_hours,
                   {units.known_total("accelerator_hours", "_row_pricing = 'Spot'", weight="w")}
                     AS spot_accelerator_hours,
                   {units.spot_share_sql("accelerator_hours * w", "_row_pricing")} AS spot_share,
                   CAST(sum(_cost) AS DOUBLE) AS cost,
                   CAST(coalesce(sum(_cost) FILTER (WHERE _storage), 0) AS DOUBLE) AS storage_cost,
                   CAST(coalesce(sum(_cost) FILTER (WHERE _transfer AND NOT _storage), 0) AS DOUBLE) AS transfer_cost,
                   CAST(coalesce(sum(_cost) FILTER (WHERE NOT _storage AND NOT _transfer AND (accelerator_hours
                     IS NOT NULL OR instance_hours IS NOT NULL)), 0) AS DOUBLE) AS compute_cost,
                   CAST(coalesce(sum(_cost) FILTER (WHERE _in_base), 0) AS DOUBLE) AS accelerated_cost,
                   CAST(coalesce(sum(_cost) FILTER (WHERE accelerator_hours_unknown), 0) AS DOUBLE)
                     AS unknown_accelerator_cost
            FROM {view}_x GROUP BY run_id, BillingCurrency ORDER BY cost DESC, run_id""").df()
        outside = con.execute(f"""
            SELECT run_id, {why} AS why, CAST(sum(_cost) AS DOUBLE) AS cost FROM {view}_x WHERE NOT _in_base
            GROUP BY ALL HAVING sum(_cost) <> 0 ORDER BY run_id, cost DESC, why""").df()
        gpu, attributed = con.execute(f"""
            SELECT (SELECT coalesce(sum(EffectiveCost), 0)::{MONEY} FROM {view}_base),
                   (SELECT coalesce(sum(_cost), 0)::{MONEY} FROM {view}_x WHERE _in_base)""").fetchall()[0]
    finally:
        con.unregister(view)
        con.execute(f"DROP TABLE IF EXISTS {view}_x")
        con.execute(f"DROP TABLE IF EXISTS {view}_base")
    gpu, attributed = Decimal(gpu), Decimal(attributed)
    for c in ("cost", "storage_cost", "transfer_cost", "compute_cost", "accelerated_cost", "unknown_accelerator_cost"):
        df[c] = df[c].astype(float).round(6)
    df["other_cost"] = (df["cost"] - df["storage_cost"] - df["transfer_cost"] - df["compute_cost"]).round(6)
    outside["cost"] = outside["cost"].astype(float).round(6)
    hours = df["accelerator_hours"].where(df["accelerator_hours"] > 0)
    # the cost of rows whose GPU-hours are unknown (a type not in the catalog, finops_kit.units) never divides by
    # the other rows' hours: a run of a p4d and a g6f the catalog did not know cost 4.30 per p4d GPU-hour, not 4.14
    df["cost_per_gpu_hour"] = (df["cost"] - df["unknown_accelerator_cost"]) / hours
    df["spot_share"] = df.pop("spot_share")  # after the cost per GPU-hour, where the table has always had it
    how = [f"tags {', '.join(rr.tags)}" if rr.tags else None,
           f"resource ids matching {', '.join(rr.resource_patterns)}" if rr.resource_patterns else None,
           f"the runs file {Path(runs_file).name}" if runs_file else None]
    num = ("EffectiveCost of every row identified as the run's (" + ("; then ".join(h for h in how if h) or "none")
           + "): GPU instances, storage and data transfer where tagged" + (
               " or listed; rows partly inside a runs-file run count in proportion to the time covered" if runs_file
               else "") + "; accelerated_cost is the part of it in the accelerated compute total (the rest, e.g. "
           "storage, transfer or a SageMaker job, is listed by reason)")
    den = ("accelerator-hours of the run's rows (finops_kit.units; the cost of rows whose accelerator-hours are "
           "unknown, unknown_accelerator_cost, is left out of cost per GPU-hour); spot share = spot GPU-hours / "
           "GPU-hours that could run on spot")
    return Runs(df, num, den, gpu - attributed, gpu, attributed, outside, rr,
                Path(runs_file).name if runs_file else None)


# ------------------------------------------------------------------------------------------------ inference
@dataclass
class UnitCosts:
    """Cost per 1k requests / per 1M tokens per application and day, the elasticity per application, and the
    cost of the same days that is in no unit cost, with the reason (``unattributed``).

    ``total_cost`` is the bill of the metrics' days in scope; ``attributed_cost`` the part in ``daily`` (the
    application-days the metrics file lists): attributed + unattributed = total, checked exactly (DECIMAL)."""

    daily: pd.DataFrame
    by_application: pd.DataFrame
    unattributed: pd.DataFrame
    key: str
    numerator: str
    denominator: str
    total_cost: Decimal = Decimal(0)
    attributed_cost: Decimal = Decimal(0)
    #: first and last day of the business-metrics file (whatever the scope), None for an empty file
    metrics_days: tuple[Any, Any] = (None, None)
    #: the file's days that hold a charge in scope: 0 when the file and the bill in scope do not overlap
    days_in_scope: int = 0

    def unattributed_cost(self) -> float:
        return float(self.unattributed["cost"].sum()) if len(self.unattributed) else 0.0


def elasticity(volume: pd.Series, unit_cost: pd.Series) -> tuple[float | None, float | None]:
    """(slope, r²) of ln(unit cost) on ln(volume) by least squares; None with fewer than 3 usable days or no
    spread in volume."""
    ok = (volume > 0) & (unit_cost > 0)
    x, y = np.log(volume[ok].astype(float)), np.log(unit_cost[ok].astype(float))
    if len(x) < 3 or float(np.ptp(x)) == 0.0:
        return None, None
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    ss = float(((y - y.mean()) ** 2).sum())
    return float(b), (1 - float((resid ** 2).sum()) / ss) if ss > 0 else None


def inference_unit_costs(con: duckdb.DuckDBPyConnection, sc: Any, metrics_file: str | Path, *,
                         key: str | None = None, config: Any = None) -> UnitCosts:
    """Cost per 1k requests and per 1M tokens per application and day (see the module doc).

    Every cost of the metrics' days is either in an application-day of ``daily`` or in ``unattributed`` with its
    reason: no application tag, an application the metrics file does not list, or a listed application on a day
    the file has no row for. Cost per 1M tokens divides only the cost of days with a token count; the cost of the
    application's other days is ``cost_without_tokens``."""
    cfg = config if config is not None else getattr(sc, "config", None)
    key = key or application_key(cfg)
    attr = sc.attribution
    if key not in attr.policy.keys:
        raise ConfigError(f"unit_economics.application_key: {key!r} is not a tag_policy key "
                          f"({', '.join(attr.policy.keys)})")
    bm = read_business_metrics(metrics_file)
    view = f"_fk_bm_{id(bm)}"
    con.register(view, con.from_df(bm))
    no_tag, not_listed, no_row = f"no {key} tag", "application not in the metrics file", \
        "no row in the metrics file that day"
    try:
        days = f"(SELECT DISTINCT CAST(date AS DATE) FROM {view})"
        rows = con.execute(f"""
            WITH c AS (
              SELECT ChargePeriodStart::DATE AS date, {attr.value_sql(key)} AS application, BillingCurrency AS currency,
                     sum(EffectiveCost)::{MONEY} AS cost
              FROM {sc.rows_sql()} WHERE ChargePeriodStart::DATE IN {days} GROUP BY ALL),
            m AS (SELECT DISTINCT CAST(date AS DATE) AS date, application FROM {view})
            SELECT c.date, c.application, c.currency, c.cost,
                   CASE WHEN c.application IS NULL THEN {sql_str(no_tag)}
                        WHEN m.application IS NOT NULL THEN NULL
                        WHEN c.application IN (SELECT application FROM {view}) THEN {sql_str(no_row)}
                        ELSE {sql_str(not_listed)} END AS reason
            FROM c LEFT JOIN m ON m.date = c.date AND m.application = c.application
            ORDER BY c.date, c.application NULLS FIRST, c.currency""").fetchall()
        bill = con.execute(f"SELECT coalesce(sum(EffectiveCost), 0)::{MONEY} FROM {sc.rows_sql()} "
                           f"WHERE ChargePeriodStart::DATE IN {days}").fetchall()[0][0]
    finally:
        con.unregister(view)
    total = Decimal(bill)
    attributed = sum((Decimal(r[3]) for r in rows if r[4] is None and r[3] is not None), Decimal(0))
    unattributed = sum((Decimal(r[3]) for r in rows if r[4] is not None and r[3] is not None), Decimal(0))
    if attributed + unattributed != total:  # every cost row of the days is in exactly one of the two parts
        raise RuntimeError(f"inference unit costs: attributed {attributed} + unattributed {unattributed} <> the "
                           f"bill of the metrics' days {total}")
    cost = pd.DataFrame(rows, columns=["date", "application", "currency", "cost", "reason"])
    cost["cost"] = cost["cost"].astype(float)
    bm["date"] = pd.to_datetime(bm["date"])
    cost["date"] = pd.to_datetime(cost["date"])
    mine = cost[cost["reason"].isna()].drop(columns="reason")
    daily = bm.merge(mine, on=["date", "application"], how="left")
    daily["cost"] = daily["cost"].fillna(0.0)
    daily["cost_per_1k_requests"] = daily["cost"] * 1000 / daily["requests"].where(daily["requests"] > 0)
    daily["cost_per_1m_tokens"] = daily["cost"] * 1e6 / daily["tokens"].where(daily["tokens"] > 0)
    daily["margin"] = daily["revenue"] - daily["cost"]
    daily = daily.sort_values(["application", "date"]).reset_index(drop=True)
    # only days of the scope count (the metrics file may cover more than the scope)
    in_scope = set(cost["date"])
    daily = daily[daily["date"].isin(in_scope)].reset_index(drop=True)
    apps = []
    for app, g in daily.groupby("application", sort=True):
        b, r2 = elasticity(g["requests"], g["cost_per_1k_requests"])
        counted = g["tokens"].notna()
        req, tok = g["requests"].sum(), g["tokens"].sum(min_count=1)
        tok_cost = float(g.loc[counted, "cost"].sum())
        apps.append({"application": app, "days": len(g), "cost": round(float(g["cost"].sum()), 6),
                     "requests": req, "tokens": tok,
                     "revenue": g["revenue"].sum(min_count=1),
                     "cost_per_1k_requests": g["cost"].sum() * 1000 / req if req else None,
                     "cost_per_1m_tokens": tok_cost * 1e6 / tok if tok and tok > 0 else None,
                     "token_days": int(counted.sum()),
                     "cost_without_tokens": round(float(g.loc[~counted, "cost"].sum()), 6),
                     "elasticity": b, "elasticity_r2": r2})
    by_app = pd.DataFrame(apps)
    other = cost[cost["reason"].notna()].copy()
    other["application"] = other["application"].fillna(f"({no_tag})")
    unatt = (other.groupby(["application", "reason", "currency"], as_index=False)["cost"].sum()
             .sort_values("cost", ascending=False).reset_index(drop=True))
    unatt["cost"] = unatt["cost"].round(6)
    num = (f"EffectiveCost of the rows whose {key} tag (tag_policy, with its aliases) is the application, that UTC "
           "day, every service and provider, on the days the business-metrics file lists the application")
    den = ("requests (per 1k) and tokens (per 1M) of the business-metrics file for that day and application; per "
           "application, cost per 1M tokens divides only the cost of its days with a token count (the cost of days "
           "without a token count is cost_without_tokens)")
    span = ((bm["date"].min().date(), bm["date"].max().date()) if len(bm) else (None, None))
    return UnitCosts(daily, by_app, unatt, key, num, den, total, attributed, span, len(in_scope))


__all__ = ["RunRules", "Runs", "UnitCosts", "application_key", "elasticity", "inference_unit_costs",
           "load_run_rules", "read_business_metrics", "read_runs_file", "training_runs"]
