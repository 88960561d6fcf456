"""schemas/openapi.yaml is what the code generates, and it lists what the ingress answers."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.errors import NotDurable, PipelineError, Rejected
from pipeline.specs.openapi import FILE_NAME, document, render
from pipeline.webhooks import Webhook

COMMITTED = Path(__file__).parents[2] / "schemas" / FILE_NAME


def test_committed_openapi_matches_the_code() -> None:
    assert COMMITTED.read_bytes() == render(), "run `make schemas` and commit schemas/"


def test_the_yaml_is_the_document() -> None:
    assert yaml.safe_load(COMMITTED.read_text(encoding="utf-8")) == document()


def test_every_webhook_is_an_operation_with_every_error_status() -> None:
    doc = document()
    for hook in Webhook:
        responses = doc["paths"][f"/webhooks/{hook.value}"]["post"]["responses"]
        assert {"200", "400", "401", "408", "413", "415", "429", "503"} <= set(responses)


def _leaves(cls: type[PipelineError]) -> list[type[PipelineError]]:
    subs: list[type[PipelineError]] = cls.__subclasses__()
    return [cls] if not subs else [leaf for s in subs for leaf in _leaves(s)] + [cls]


def test_every_error_class_reason_is_listed_under_its_status() -> None:
    doc = document()
    for cls in _leaves(Rejected) + _leaves(NotDurable):
        reason = cls.__dict__.get("reason")
        if reason is None or (cls in (Rejected, NotDurable) and reason in {"rejected"}):
            continue
        response = doc["components"]["responses"][f"E{cls.status}"]
        assert f"{reason}" in response["description"], (cls.__name__, reason)
