"""schemathesis against the running ingress on the real broker, from its own /openapi.json.

Every answer must be one the document lists, with the content type and schema it gives
(``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
``response_headers_conformance``): a 500, or any 5xx but the documented 503, fails.
Examples per operation are bounded (SCHEMATHESIS_EXAMPLES, by default what keeps the run
near a minute here); the figures of a run are in docs/edge.md.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from pipeline.webhooks import all_topics
from tests.support import kafka
from tests.support.ingress import start_ingress, stop_ingress
from tests.support.payloads import TOKENS
from tests.support.slow import peak_rss_mb

# fuzzing-phase examples per operation; the coverage phase adds its own (about 3,300)
EXAMPLES = int(os.environ.get("PLUG_PIPELINE_TEST_SCHEMATHESIS_EXAMPLES", "60"))
CHECKS = ",".join(
    [
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
        "negative_data_rejection",
        "unsupported_method",
    ]
)


def test_schemathesis_finds_no_answer_outside_the_document(broker: str, tmp_path: Path) -> None:
    prefix = f"oas{uuid.uuid4().hex[:8]}"
    kafka.create_topics(all_topics(prefix))
    ingress = start_ingress(tmp_path, prefix)
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{ingress.url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "14",
                "--phases",
                "examples,coverage,fuzzing",
                "--header",
                f"Authorization: Bearer {TOKENS['acme']}",
                "--suppress-health-check",
                "all",
                "--no-shrink",
                # one worker: with two, hypothesis's code generation for the recursive
                # chat schema races (SystemError: AST constructor recursion depth mismatch)
                "--workers",
                "1",
                "--request-timeout",
                "10",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # schemathesis keeps a cache in its working directory
            check=False,
        )
        alive = ingress.process.poll() is None
        rss = peak_rss_mb(ingress.process.pid)
    finally:
        stop_ingress(ingress)
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary
    assert alive
    assert rss < 400, f"peak RSS {rss:.0f} MB"
    found = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert found, summary
    generated, passed = int(found.group(1)), int(found.group(2))
    print(f"schemathesis: {generated} test cases, ingress peak RSS {rss:.0f} MB")
    assert generated == passed
    assert generated >= 7 * EXAMPLES  # it did run, at least the bound's worth per webhook
