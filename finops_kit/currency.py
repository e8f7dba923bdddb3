"""Optional reporting-currency conversion, with an explicit rate table the user provides. Never silent.

Every FOCUS row keeps its ``BillingCurrency`` and reconciliation stays per currency. Only when a report asks for a
single reporting currency are amounts converted, with rates from a CSV the user supplies (``currency.rates_file``
in ``finops.yaml``), and :func:`conversion_note` says so in the report. A (currency, month) without a rate is a
one-line error naming it, never a guess.

Rate file (CSV, ``#`` comment lines allowed)::

    month,from_currency,to_currency,rate
    2026-01,EUR,USD,1.0841
    *,CAD,USD,0.7312          # '*' = any month without a more specific rate

``amount_in_to = amount_in_from * rate``. Rates are DECIMAL, so a conversion is exact for the rate given.

``finops.yaml`` section (read by this module and, for ``assume_source_currency``, by the Azure source)::

    currency:
      reporting_currency: USD          # null = no conversion (default)
      rates_file: data/fx_rates.csv
      assume_source_currency: null     # currency of exports without any currency column (else they are rejected)
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

import duckdb

from .errors import ConfigError
from .schema import MONEY

_CODE = re.compile(r"^[A-Z]{3}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def format_money(value: Any, currency: str | None, places: int = 2, *, signed: bool = False) -> str:
    """The one way the kit writes an amount for people: ``$1,234.50`` in USD, ``1,234.50 EUR`` in any other
    currency, plain ``1,234.50`` when the currency is unknown; ``-$3.00`` for negatives, ``+$3`` when ``signed``.

    Why one function: reports, alerts and anomaly narratives printed ``$`` whatever the scope's currency, so a EUR
    bill read as dollars in one sentence and as euros in the table beside it. Rounds half up, as money does.
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    r = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{abs(r):,.{places}f}"
    sign = "-" if r < 0 else ("+" if signed and r > 0 else "")
    if currency in (None, ""):
        return sign + text
    if currency == "USD":
        return f"{sign}${text}"
    return f"{sign}{text} {currency}"


def d3_locale(currency: str | None) -> dict[str, Any]:
    """The Vega/d3 number locale whose ``$`` format directive writes ``currency`` as :func:`format_money` does.

    The charts' money formats (``$,.2f``) mean "the locale's currency", so passing this locale to vega-embed makes
    a EUR report's axes and tooltips read ``1.2k EUR`` instead of ``$1.2k``.
    """
    affix = ["$", ""] if currency in (None, "", "USD") else ["", f" {currency}"]
    return {"decimal": ".", "thousands": ",", "grouping": [3], "currency": affix}


@dataclass(frozen=True)
class Rates:
    path: str
    sha256: str
    rows: tuple[tuple[str, str, str, str], ...]  # (month or '*', from, to, rate text)


def load_rates(path: str | Path) -> Rates:
    """Read and validate a rate CSV; one-line :class:`ConfigError` naming the line and column that is wrong."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: currency rate file not found (currency.rates_file)")
    data = p.read_bytes()
    lines = [ln for ln in data.decode("utf-8-sig").splitlines()]
    body = [(i + 1, ln.split("#", 1)[0].strip()) for i, ln in enumerate(lines)]
    body = [(n, ln) for n, ln in body if ln]
    if not body:
        raise ConfigError(f"{p}: empty rate file; expected month,from_currency,to_currency,rate")
    header = [h.strip() for h in next(csv.reader([body[0][1]]))]
    need = ["month", "from_currency", "to_currency", "rate"]
    if [h.lower() for h in header] != need:
        raise ConfigError(f"{p}: line {body[0][0]}: header {header}; expected {need}")
    rows, seen = [], set()
    for n, ln in body[1:]:
        cells = [c.strip() for c in next(csv.reader([ln]))]
        if len(cells) != 4:
            raise ConfigError(f"{p}: line {n}: expected 4 values (month,from_currency,to_currency,rate), got {len(cells)}")
        month, frm, to, rate = cells[0], cells[1].upper(), cells[2].upper(), cells[3]
        if month != "*" and not _MONTH.match(month):
            raise ConfigError(f"{p}: line {n}, column 'month': {month!r}; expected YYYY-MM or *")
        for col, code in (("from_currency", frm), ("to_currency", to)):
            if not _CODE.match(code):
                raise ConfigError(f"{p}: line {n}, column {col!r}: {code!r}; expected an ISO 4217 code such as USD")
        if not _rate_ok(rate):
            raise ConfigError(f"{p}: line {n}, column 'rate': {rate!r}; expected a positive number from "
                              "0.000000000001 to 10^25 (rates are kept to 12 decimals)")
        if (month, frm, to) in seen:
            raise ConfigError(f"{p}: line {n}: duplicate rate for {month} {frm}->{to}")
        seen.add((month, frm, to))
        rows.append((month, frm, to, rate))
    return Rates(str(p), hashlib.sha256(data).hexdigest(), tuple(rows))


def _rate_ok(text: str) -> bool:
    """A rate DECIMAL(38,12) holds as given and that does not round to 0 there: a plain or exponent decimal
    (``1.0841``, ``+0.9``, ``3.93e-05`` as scripts write small rates). Not 'nan'/'inf' or ``1_000`` (Python's float()
    read them; every command then crashed, or the rate was 1000), nor a rate below 1e-12, which made every
    converted amount 0."""
    if "_" in text:
        return False
    try:
        d = Decimal(text)
    except ArithmeticError:
        return False
    ctx = Context(prec=80)
    return d.is_finite() and d < Decimal("1e25") and ctx.quantize(d, Decimal("1e-12")) > 0


def settings(config: dict[str, Any]) -> dict[str, Any]:
    """The validated ``currency`` section: reporting_currency, rates_file, assume_source_currency."""
    from .config import section

    sec = section(config, "currency", {}) or {}
    if not isinstance(sec, dict):
        raise ConfigError("currency: expected a mapping (reporting_currency, rates_file, assume_source_currency)")
    unknown = set(sec) - {"reporting_currency", "rates_file", "assume_source_currency"}
    if unknown:
        raise ConfigError(f"currency.{sorted(unknown)[0]}: unknown key; expected reporting_currency, rates_file, "
                          "assume_source_currency")
    out = {"reporting_currency": sec.get("reporting_currency"), "rates_file": sec.get("rates_file"),
           "assume_source_currency": sec.get("assume_source_currency")}
    for key in ("reporting_currency", "assume_source_currency"):
        if out[key] is not None and not _CODE.match(str(out[key]).upper()):
            raise ConfigError(f"currency.{key}: {out[key]!r}; expected an ISO 4217 code such as USD")
    if out["reporting_currency"] and not out["rates_file"]:
        raise ConfigError("currency.rates_file: required when currency.reporting_currency is set (no silent rates)")
    return out


def converted(con: duckdb.DuckDBPyConnection, to_currency: str, rates: Rates,
              relation: str = "focus") -> duckdb.DuckDBPyRelation:
    """``relation`` with ReportingCurrency, BilledCostReporting, EffectiveCostReporting, ListCostReporting and
    FxRate columns. Rows already in ``to_currency`` use rate 1; a month-specific rate wins over '*'.

    Raises a one-line :class:`ConfigError` naming every (currency, month) that has no rate.
    """
    to = to_currency.upper()
    values = ", ".join(f"('{m}', '{f}', '{t}', CAST('{r}' AS {MONEY}))" for m, f, t, r in rates.rows
                       if t == to) or f"(NULL, NULL, NULL, CAST(NULL AS {MONEY}))"
    joined = f"""
        WITH rates(month, frm, rate_to, rate) AS (VALUES {values}),
        src AS (SELECT *, strftime(BillingPeriodStart, '%Y-%m') AS _month FROM {relation})
        SELECT src.* EXCLUDE (_month),
               '{to}' AS ReportingCurrency,
               CASE WHEN src.BillingCurrency = '{to}' THEN CAST(1 AS {MONEY})
                    ELSE coalesce(m.rate, a.rate) END AS FxRate,
               src._month AS _month
        FROM src
        LEFT JOIN rates m ON m.frm = src.BillingCurrency AND m.month = src._month
        LEFT JOIN rates a ON a.frm = src.BillingCurrency AND a.month = '*'
    """
    missing = con.execute(
        f"SELECT DISTINCT BillingCurrency, _month FROM ({joined}) WHERE FxRate IS NULL ORDER BY 1, 2 LIMIT 20"
    ).fetchall()
    if missing:
        shown = ", ".join(f"{c} {m}" for c, m in missing)
        raise ConfigError(f"{rates.path}: no rate to {to} for {shown}; add month,from_currency,to_currency,rate "
                          "lines (or a '*' month) — amounts are never converted with a guessed rate")
    return con.sql(
        f"SELECT * EXCLUDE (_month), CAST(BilledCost * FxRate AS {MONEY}) AS BilledCostReporting, "
        f"CAST(EffectiveCost * FxRate AS {MONEY}) AS EffectiveCostReporting, "
        f"CAST(ListCost * FxRate AS {MONEY}) AS ListCostReporting FROM ({joined})"
    )


def conversion_note(con: duckdb.DuckDBPyConnection, to_currency: str | None, rates: Rates | None,
                    relation: str = "focus") -> str:
    """One sentence for a report header: what currencies the data holds and whether/how they were converted."""
    currencies = [r[0] for r in con.execute(
        f"SELECT DISTINCT BillingCurrency FROM {relation} WHERE BillingCurrency IS NOT NULL ORDER BY 1").fetchall()]
    if not to_currency or rates is None:
        if len(currencies) > 1:
            return (f"Amounts are in their billing currencies ({', '.join(currencies)}), shown per currency and never "
                    "added across currencies; set currency.reporting_currency and rates_file to convert.")
        return f"Amounts are in {currencies[0] if currencies else 'the billing currency'}; no conversion."
    others = [c for c in currencies if c != to_currency.upper()]
    if not others:
        return f"Amounts are in {to_currency.upper()}; no conversion was needed."
    return (f"Amounts in {', '.join(others)} were converted to {to_currency.upper()} with the user-supplied rates in "
            f"{rates.path} (sha256 {rates.sha256[:12]}); billing-currency amounts and reconciliation are unchanged.")


__all__ = ["Rates", "load_rates", "settings", "converted", "conversion_note"]
