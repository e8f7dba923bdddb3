"""x_AiWorkload classification: the rule table compiles to SQL whose first match wins; a source with a fixed
provider gets a specialized expression that must classify exactly as the generic one."""

from __future__ import annotations

import duckdb
import pytest

from finops_kit.classify import ai_workload_case

ROWS = [
    # ProviderName, x_InstanceType, x_UsageType, ServiceName, ServiceCategory, expected
    ("AWS", "p5.48xlarge", "USE1-BoxUsage:p5.48xlarge", "Amazon Elastic Compute Cloud", "Compute", "Accelerated compute"),
    ("AWS", None, "USW2-SpotUsage:g5.12xlarge", "Amazon Elastic Compute Cloud", "Compute", "Accelerated compute"),
    ("AWS", "m5.large", "USE1-BoxUsage:m5.large", "Amazon Elastic Compute Cloud", "Compute", None),
    ("AWS", None, None, "Amazon SageMaker", "AI and Machine Learning", "ML platform"),
    ("AWS", None, None, "Amazon Bedrock", "AI and Machine Learning", "Managed AI service"),
    ("AWS", None, None, "Amazon Simple Storage Service", "Storage", None),
    ("Google Cloud", "a3-highgpu-8g", None, "Compute Engine", "Compute", "Accelerated compute"),
    ("Google Cloud", None, "Nvidia Tesla A100 GPU running in Americas", "Compute Engine", "Compute",
     "Accelerated compute"),
    ("Google Cloud", None, None, "Vertex AI", "AI and Machine Learning", "Managed AI service"),
    ("Microsoft", "Standard_ND96asr_v4", None, "Virtual Machines", "Compute", "Accelerated compute"),
    ("Microsoft", None, None, "Azure OpenAI", "AI and Machine Learning", "Managed AI service"),
    ("Microsoft", "Standard_D4s_v5", None, "Virtual Machines", "Compute", None),
    # a provider no rule names: only the provider-independent ServiceCategory rule applies
    ("Oracle", None, None, "OCI Generative AI", "AI and Machine Learning", "Managed AI service"),
    ("Oracle", "BM.GPU.H100.8", None, "Compute", "Compute", None),
]


@pytest.fixture()
def rows():
    con = duckdb.connect()
    con.execute("CREATE TABLE r (ProviderName VARCHAR, x_InstanceType VARCHAR, x_UsageType VARCHAR, "
                "ServiceName VARCHAR, ServiceCategory VARCHAR, expected VARCHAR)")
    con.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?)", ROWS)
    yield con
    con.close()


def test_generic_expression_classifies_every_provider(rows):
    got = rows.execute(f"SELECT {ai_workload_case()} AS got, expected FROM r").fetchall()
    assert [g for g, _ in got] == [e for _, e in got]


@pytest.mark.parametrize("provider", ["AWS", "Google Cloud", "Microsoft", "Oracle"])
def test_fixed_provider_expression_matches_the_generic_one(rows, provider):
    specialized = ai_workload_case(provider=provider)
    got = rows.execute(f"SELECT {specialized}, expected FROM r WHERE ProviderName = ?", [provider]).fetchall()
    assert got and [g for g, _ in got] == [e for _, e in got]
    # the other providers' rules and every per-row provider test are gone
    assert "ProviderName" not in specialized
    others = {"AWS": "sagemaker", "Google Cloud": "vertex ai", "Microsoft": "openai"}
    for name, word in others.items():
        if name != provider:
            assert word not in specialized.lower()
