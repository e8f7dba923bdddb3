"""``finops-kit samples``: seeded, realistic multi-cloud AI billing exports in the providers' native formats.

    finops-kit samples --out data/samples [--rows N] [--seed S] [--providers aws,gcp,azure]

writes, under ``--out``:

* ``aws-cur2/``        AWS CUR 2.0 Data Exports parquet + manifests (main organisation, payer 111122223333)
* ``aws-cur-legacy/``  AWS legacy CUR gzip CSV delivery with manifests and one restated month
                       (a second, smaller payer 999988887777, so nothing is counted twice with aws-cur2)
* ``gcp/``             GCP detailed billing export rows as gzip newline-delimited JSON, one file per invoice month
* ``azure/``           Azure MCA cost exports, actual and amortized, one gzip CSV per month each
* ``_ai_units/``       side files of the AI unit economics notebook (GPU utilization exports and their host map;
                       :mod:`.ai_units`): not billing data, in a ``_`` folder that ``finops-kit ingest`` skips
* ``PLANTED.json``     the planted cost spikes and the known billed/amortized totals per provider, dataset,
                       billing period and currency, computed from the generator's own records; ``ai_tokens``:
                       the token unit costs, cache savings and unmatched lines of :mod:`.ai_tokens`

The workloads (teams, projects, GPU fleets, inference, managed AI services, storage tiers, data transfer,
commitments, credits, tax, tag variants and gaps, planted spikes) are described once, provider-neutrally, in
:mod:`.model`; one writer module per native format applies that provider's prices, mechanics and columns.
Same seed and rows -> byte-identical files (no wall clock in any output). ``--rows N`` asks for about N line
items per dataset: the base population is replicated (new line item and resource ids per copy) and written
in streamed batches; below the base size the base population is written.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ..errors import ConfigError
from . import ai_tokens, commitment_facts, model

PROVIDERS = ("aws", "gcp", "azure")
#: provider -> [(dataset folder, writer module)]
DATASETS = {
    "aws": [("aws-cur2", "aws_cur2"), ("aws-cur-legacy", "aws_cur_legacy")],
    "gcp": [("gcp", "gcp")],
    "azure": [("azure", "azure")],
}


def generate(out: str | Path, *, rows: int | None = None, seed: int = model.DEFAULT_SEED,
             providers: tuple[str, ...] | list[str] = PROVIDERS) -> dict:
    """Write the sample exports and PLANTED.json under ``out``; return the PLANTED document."""
    import importlib

    out = Path(out)
    unknown = [p for p in providers if p not in DATASETS]
    if unknown:
        raise ConfigError(f"unknown provider(s) {', '.join(unknown)}; expected some of {', '.join(PROVIDERS)}")
    out.mkdir(parents=True, exist_ok=True)
    planted = model.Planted()
    datasets, totals = {}, []
    for provider in PROVIDERS:
        if provider not in providers:
            continue
        for folder, module in DATASETS[provider]:
            target = out / folder
            if target.exists():
                shutil.rmtree(target)  # never leave files of an earlier run (other seed/rows) behind
            writer = importlib.import_module(f"{__name__}.{module}")
            got = writer.write(out, seed, planted, rows=rows)
            totals += got["totals"]
            datasets[folder] = {"provider": provider, "files": got["files"],
                                "superseded_files": got.get("skipped", [])}
    doc = {
        "generator": {"command": "finops-kit samples", "seed": seed, "rows": rows,
                      "providers": [p for p in PROVIDERS if p in providers],
                      "window_start": model.PERIOD_START.isoformat(), "today": model.TODAY.isoformat(),
                      "note": "totals are exact decimal sums of the generator's own line amounts; billed = "
                              "unblended / actual / cost+credits, amortized = effective (commitments spread)"},
        "datasets": datasets,
        "spikes": _spikes(planted),
        "known_patterns": _patterns(providers),
        "commitments": commitment_facts.section(planted),
        "totals": totals,
    }
    if "aws" in providers and "gcp" in providers:  # the side files describe AWS and GCP resources of the bill
        from . import ai_units

        if (out / ai_units.FOLDER).exists():
            shutil.rmtree(out / ai_units.FOLDER)
        doc["ai_units"] = ai_units.write(out, seed)
    if rows is None:  # the token facts of the base sample (--rows replicates lines: totals scale, unit costs not)
        doc["ai_tokens"] = ai_tokens.facts(seed, [p for p in PROVIDERS if p in providers])
    (out / "PLANTED.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def _spikes(planted: model.Planted) -> list[dict]:
    out = []
    for ev in sorted(planted.events.values(), key=lambda e: (e["start"], e["event"])):
        out.append({
            "event": ev["event"], "provider": ev["provider"], "dataset": ev["dataset"],
            "start": ev["start"].isoformat(), "end_inclusive": ev["end"].isoformat(),
            "teams": sorted(ev["teams"]),
            "services": {k: str(v) for k, v in sorted(ev["services"].items())},
            "extra_cost": str(ev["extra_cost"]), "currency": "USD", "description": ev["description"],
        })
    return out


def _patterns(providers) -> list[dict]:
    """Non-spike truths the analyses should find (24/7 dev GPUs, unused commitments, untagged spend)."""
    out = []
    for provider in PROVIDERS:
        if provider not in providers:
            continue
        for w in model.workloads(provider):
            if w.note and not w.planted and not w.events:
                out.append({"provider": provider, "workload": w.name, "team": w.team, "env": w.env,
                            "sku": w.sku, "start": w.start.isoformat(), "note": w.note})
    return out


def configure_parser(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--out", default="data/samples", help="output folder (default: data/samples)")
    parser.add_argument("--rows", type=int, default=None,
                        help="about N line items per dataset (default: the base sample, ~5k-20k per dataset)")
    parser.add_argument("--seed", type=int, default=model.DEFAULT_SEED, help=f"random seed (default {model.DEFAULT_SEED})")
    parser.add_argument("--providers", default=",".join(PROVIDERS),
                        help="comma-separated subset of aws,gcp,azure (default: all)")


def run(args: argparse.Namespace, command: str) -> int:
    providers = [p.strip().lower() for p in args.providers.split(",") if p.strip()]
    if args.rows is not None and args.rows <= 0:
        raise ConfigError(f"--rows must be a positive number of line items, got {args.rows}")
    doc = generate(args.out, rows=args.rows, seed=args.seed, providers=providers)
    n_files = sum(len(d["files"]) for d in doc["datasets"].values())
    print(f"wrote {n_files} billing files for {', '.join(doc['generator']['providers'])} to {args.out} "
          f"({len(doc['totals'])} period totals, {len(doc['spikes'])} planted spikes in {args.out}/PLANTED.json)")
    return 0
