"""Spot price history through the real boto3 client against a local moto server (127.0.0.1, started here).

moto 5.x answers DescribeSpotPriceHistory with one constant row per AZ and type (SpotPrice '0.00001', a 2006
timestamp) and ignores StartTime, EndTime, MaxResults and NextToken (``test_what_moto_returns``). So the server's
handler is replaced, inside the moto server, by one that serves a seeded history with EC2's semantics: filter by
type/product/time, the price in effect at StartTime first, pages of MaxResults joined by NextToken, an empty
token at the end. The client side is untouched boto3/botocore over HTTP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from finops_kit import spot
from finops_kit import spot_prices as sp
from finops_kit.errors import FinopsError

from .conftest import local_moto_server

moto_server = pytest.importorskip("moto.server")
from moto.core.responses import ActionResult  # noqa: E402
from moto.ec2.exceptions import EC2ClientError  # noqa: E402
from moto.ec2.responses.spot_instances import SpotInstances  # noqa: E402

T0 = datetime(2026, 9, 1, tzinfo=UTC)
END = T0 + timedelta(days=30)


def _seed() -> list[dict]:
    """Price changes every 7 h for 2 types x 2 AZs, from 2 days before the window to its end (deterministic)."""
    rows = []
    for itype, base in (("p4d.24xlarge", 7.0), ("g5.xlarge", 0.4)):
        for k, az in enumerate(("us-east-1a", "us-east-1b")):
            t, i = T0 - timedelta(days=2), 0
            while t < END + timedelta(days=20):
                rows.append({"InstanceType": itype, "AvailabilityZone": az, "ProductDescription": "Linux/UNIX",
                             "SpotPrice": f"{base * (1 + 0.01 * ((i + k) % 5)):.6f}", "Timestamp": t})
                t += timedelta(hours=7)
                i += 1
    return rows


def _utc(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


class Server:
    """State of the seeded handler: the history, the calls it saw, and throttling to inject."""

    def __init__(self):
        self.history = _seed()
        self.calls: list[dict] = []
        self.throttle_next = 0

    def handler(self, resp: SpotInstances):
        params = {k: resp._get_param(k) for k in ("StartTime", "EndTime", "MaxResults", "NextToken")}
        types = resp._get_param("InstanceTypes", []) or []
        products = resp._get_param("ProductDescriptions", []) or []
        self.calls.append(params | {"InstanceTypes": types})
        if self.throttle_next:
            self.throttle_next -= 1
            raise EC2ClientError("RequestLimitExceeded", "Request limit exceeded.")
        start = _utc(params["StartTime"]) if params["StartTime"] else None
        end = _utc(params["EndTime"]) if params["EndTime"] else None
        hist = [h for h in self.history if (not types or h["InstanceType"] in types)
                and (not products or h["ProductDescription"] in products)]
        selected = []
        for key in {(h["InstanceType"], h["AvailabilityZone"]) for h in hist}:
            series = sorted((h for h in hist if (h["InstanceType"], h["AvailabilityZone"]) == key),
                            key=lambda h: h["Timestamp"])
            before = [h for h in series if start is not None and h["Timestamp"] <= start]
            inside = [h for h in series if (start is None or h["Timestamp"] > start)
                      and (end is None or h["Timestamp"] < end)]
            selected += before[-1:] + inside  # EC2 also returns the price in effect at StartTime
        selected.sort(key=lambda h: (h["Timestamp"], h["InstanceType"], h["AvailabilityZone"]), reverse=True)
        size = int(params["MaxResults"] or 1000)
        offset = int(params["NextToken"] or 0)
        page = selected[offset:offset + size]
        token = str(offset + size) if offset + size < len(selected) else ""
        out = [h | {"Timestamp": h["Timestamp"].strftime("%Y-%m-%dT%H:%M:%S.000Z")} for h in page]
        return ActionResult({"SpotPriceHistory": out, "NextToken": token})


@pytest.fixture(scope="module")
def endpoint():
    with local_moto_server() as url:
        yield url


@pytest.fixture()
def seeded(monkeypatch, endpoint):
    state = Server()
    monkeypatch.setattr(SpotInstances, "describe_spot_price_history", lambda self: state.handler(self))
    return state


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch, tmp_path):
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _fetch(endpoint, cache, **kw):
    args = dict(lookback_days=10, end=END, now=END + timedelta(days=1), cache_dir=cache, endpoint_url=endpoint,
                page_size=20, retry_base_seconds=0.01)
    return sp.fetch_history(["p4d.24xlarge", "g5.xlarge"], ["us-east-1"], **(args | kw))


def test_what_moto_returns(endpoint):
    client = sp.ec2_client("us-east-1", endpoint_url=endpoint)
    resp = client.describe_spot_price_history(InstanceTypes=["p4d.24xlarge"], StartTime=T0, EndTime=END)
    rows = resp["SpotPriceHistory"]
    assert rows and {r["SpotPrice"] for r in rows} == {"0.00001"}  # a constant: hence the seeded handler
    assert all(r["Timestamp"].year == 2006 for r in rows)


def test_pagination_and_events(seeded, endpoint, tmp_path):
    h = _fetch(endpoint, tmp_path / "cache")
    # 10 days every 7 h per type/AZ: events strictly inside plus the one in effect at the start
    start = END - timedelta(days=10)
    expected = sum(1 for r in seeded.history if start < r["Timestamp"] < END) + 4
    assert len(h.events) == expected
    assert len(seeded.calls) == -(-expected // 20) > 1  # pages of 20, all followed via NextToken
    assert [c["NextToken"] for c in seeded.calls][1:] == [str(20 * i) for i in range(1, len(seeded.calls))]
    assert h.report.api_calls == len(seeded.calls)
    assert str(h.events.spot_price.iloc[0]).count(".") == 1 and h.events.source.eq("api").all()
    assert h.events.groupby(["instance_type", "availability_zone"]).timestamp.min().max() <= pd.Timestamp(start)


def test_cache_reused_and_extended(seeded, endpoint, tmp_path):
    cache = tmp_path / "cache"
    first = _fetch(endpoint, cache)
    n = len(seeded.calls)
    again = _fetch(endpoint, cache)
    assert len(seeded.calls) == n and again.report.api_calls == 0  # no request at all for cached ranges
    assert len(again.events) == len(first.events)
    # next month's run: only the new days are requested, and the cache grows
    later = _fetch(endpoint, cache, end=END + timedelta(days=5), now=END + timedelta(days=6))
    new_calls = seeded.calls[n:]
    assert new_calls and all(_utc(c["StartTime"]) == pd.Timestamp(END) for c in new_calls)
    assert later.report.new_events > 0
    events, coverage = sp.read_cache(cache)
    assert len(coverage) == 4 and coverage.end.max() == pd.Timestamp(END + timedelta(days=5))
    # offline: nothing requested, and a range the cache lacks is named
    before = len(seeded.calls)
    off = _fetch(endpoint, cache, end=END + timedelta(days=9), now=END + timedelta(days=9), offline=True)
    assert len(seeded.calls) == before and any("lacks" in n for n in off.report.notes)


def test_hourly_series_and_stats(tmp_path):
    ev = pd.DataFrame({
        "region": "us-east-1", "availability_zone": "us-east-1a", "instance_type": "p4d.24xlarge",
        "product_description": "Linux/UNIX", "source": "hand",
        "timestamp": pd.to_datetime(["2026-09-30 23:00", "2026-10-01 02:00", "2026-10-01 03:30"], utc=True),
        "spot_price": [sp.Decimal("10.0"), sp.Decimal("20.0"), sp.Decimal("10.0")]})
    h = sp.PriceHistory(ev, pd.Timestamp("2026-10-01", tz="UTC"), pd.Timestamp("2026-10-01 05:00", tz="UTC"),
                        sp.FetchReport(), str(tmp_path))
    hourly = sp.hourly_series(h)
    # the price in effect at 00..04 h: 10 (from the day before), 10, 20, 20 (change at 03:30 not yet), 10
    assert [float(p) for p in hourly.spot_price] == [10, 10, 20, 20, 10]
    st = sp.price_stats(h).iloc[0]
    assert st.hours == 5 and st.median_price == 10 and st.mean_price == pytest.approx(14)
    assert st.max_price == 20 and st.price_changes == 2  # changes inside the window
    assert st.od_price == 21.96 and st.discount_vs_od == pytest.approx(1 - 10 / 21.96)


def test_throttling_is_retried(seeded, endpoint, tmp_path):
    seeded.throttle_next = 2
    h = _fetch(endpoint, tmp_path / "cache", page_size=1000)
    assert h.report.throttled_retries == 2 and len(seeded.calls) == 3 and len(h.events) > 0
    seeded.throttle_next = 99
    with pytest.raises(FinopsError) as err:
        _fetch(endpoint, tmp_path / "other", max_attempts=3)
    assert "throttled (RequestLimitExceeded) after 3 attempts" in str(err.value)
    assert "\n" not in str(err.value)


def test_no_credentials_message(endpoint, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(FinopsError) as err:
        _fetch(endpoint, tmp_path / "cache")
    msg = str(err.value)
    assert msg.startswith("no AWS credentials found") and "offline=True" in msg and "\n" not in msg
    assert not (tmp_path / "cache" / "events.parquet").exists()


def test_lookback_clamped_to_90_days(seeded, endpoint, tmp_path):
    h = _fetch(endpoint, tmp_path / "cache", lookback_days=120, page_size=1000)
    assert h.end - h.start == pd.Timedelta(days=90)
    assert any("clamped" in n for n in h.report.notes)


def test_stats_keep_operating_systems_apart(tmp_path):
    """Linux at $7 and Windows at $15 in the same AZ: two series, each against the on-demand price of its own OS.

    Pooled (the old behaviour) they gave one row with a blended median, 10 "hours" for a 5-hour window and a
    45% discount vs the Linux price instead of 68%.
    """
    window = pd.date_range("2026-10-01", periods=5, freq="h", tz="UTC")
    ev = pd.DataFrame({
        "region": "us-east-1", "availability_zone": "us-east-1a", "instance_type": "p4d.24xlarge", "source": "hand",
        "product_description": ["Linux/UNIX"] * 5 + ["Windows"] * 5,
        "timestamp": list(window) * 2,
        "spot_price": [sp.Decimal(v) for v in ("7.0", "7.0", "7.5", "7.0", "7.0")] * 1
                      + [sp.Decimal(v) for v in ("15.0", "15.0", "16.0", "15.0", "15.0")]})
    h = sp.PriceHistory(ev, window[0], window[-1] + pd.Timedelta(hours=1), sp.FetchReport(), str(tmp_path))
    st = sp.price_stats(h).set_index("product_description")
    assert list(st.index) == ["Linux/UNIX", "Windows"]
    lin, win = st.loc["Linux/UNIX"], st.loc["Windows"]
    assert lin.hours == 5 and win.hours == 5
    assert lin.median_price == 7 and win.median_price == 15
    assert lin.operating_system == "Linux" and lin.od_price == 21.96
    assert lin.discount_vs_od == pytest.approx(1 - 7 / 21.96)  # 68%
    # the bundled price table has no Windows price: no discount rather than one against the Linux price
    assert win.od_price != win.od_price and win.discount_vs_od != win.discount_vs_od
    prices = pd.concat([spot.ondemand_prices(), pd.DataFrame([{
        "instance_type": "p4d.24xlarge", "region": "us-east-1", "operating_system": "Windows",
        "usd_per_hour": 26.376, "price_date": "2026-09", "source": "test"}])], ignore_index=True)
    win = sp.price_stats(h, prices).set_index("product_description").loc["Windows"]
    assert win.discount_vs_od == pytest.approx(1 - 15 / 26.376)
    stats = sp.price_stats(h)
    assert sp.typical_spot_price(stats, "p4d.24xlarge", "us-east-1") == 7
    assert sp.typical_spot_price(stats, "p4d.24xlarge", "us-east-1", operating_system="Windows") == 15


def test_spot_operation_codes_keep_their_platform():
    """A spot instance's operation is the platform code followed by the spot request (RunInstances:0002:SV050 is
    Windows spot; AWS "AMI billing information fields"); only RunInstances:SV### alone is the default platform.
    Before, the anchored patterns left Windows/RHEL/SUSE spot rows without an OS, so the what-if ignored the bill's
    own Windows spot rate (basis advisor instead of observed)."""
    import duckdb

    from finops_kit import spot_prices as sp

    con = duckdb.connect()
    ops = ["RunInstances", "RunInstances:SV001", "RunInstances:0002", "RunInstances:0002:SV050",
           "RunInstances:0010:SV001", "RunInstances:000g:SV012", "RunInstances:0102", None]
    got = [
        con.execute(f"SELECT {sp.operating_system_sql('op', 'prov')} FROM (SELECT ? AS op, 'AWS' AS prov, "
                    "NULL AS x_UsageType, NULL AS ServiceName)",  # the FOCUS columns other providers' rules read
                    [o]).fetchone()[0] for o in ops]
    assert got[0] == got[1] == got[7]  # Linux: plain, spot request, no operation
    assert got[2] == got[3] != got[0]  # Windows on-demand and Windows spot
    assert got[4] is not None and got[4] not in (got[0], got[2])  # RHEL spot
    assert got[5] is not None and got[5] not in (got[0], got[2], got[4])  # SUSE spot
    assert got[6] is None  # Windows with SQL Server: not listed, no OS


def test_stats_read_the_prices_hourly_series_gives(tmp_path):
    """price_stats derives the hourly series in its own DuckDB connection (speed, session 19) instead of reading
    hourly_series' frame: the prices it reads are those of the frame, bit for bit, on prices a DOUBLE cannot hold
    exactly (min, max and median of one hour's price each are that price)."""
    prices = ["0.000001", "0.1", "0.3", "1.234567", "2.675", "123456789012.123456", "999999999999.999999"]
    start = pd.Timestamp("2026-10-01", tz="UTC")
    ev = pd.DataFrame({
        "region": "us-east-1", "availability_zone": [f"us-east-1{c}" for c in "abcdefg"],
        "instance_type": "p4d.24xlarge", "product_description": "Linux/UNIX", "source": "hand",
        "timestamp": [start] * len(prices), "spot_price": [sp.Decimal(p) for p in prices]})
    h = sp.PriceHistory(ev, start, start + pd.Timedelta(hours=1), sp.FetchReport(), str(tmp_path))
    hourly = sp.hourly_series(h).set_index("availability_zone").spot_price
    st = sp.price_stats(h).set_index("availability_zone")
    for col in ("min_price", "max_price", "median_price", "mean_price"):
        assert st[col].to_dict() == hourly.to_dict(), col
