"""The Grafana dashboard and the Prometheus alert rules parse, and name only metrics we export."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client.metrics_core import Metric

from pipeline.runtime.metrics import Metrics, samples
from pipeline.warehouse.metrics import LoaderMetrics
from tests.support.promql import PromQLError, metric_names

DEPLOY = Path(__file__).parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "plug-pipeline.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"


def series_names(family: Metric) -> set[str]:
    """The names Prometheus stores for one family, as the text exposition writes them."""
    if family.type == "counter":
        return {family.name + "_total"}
    if family.type == "histogram":
        return {family.name + s for s in ("_bucket", "_sum", "_count")}
    if family.type == "summary":
        return {family.name, family.name + "_sum", family.name + "_count"}
    return {family.name}


def exported() -> set[str]:
    """Every series the ingress's and the loader's registries expose."""
    names: set[str] = set()
    for registry in (Metrics().registry, LoaderMetrics().registry):
        for family in registry.collect():
            names |= series_names(family)
    return names


def dashboard_exprs() -> list[str]:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [t["expr"] for p in panels for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_dashboard_parses_with_unique_ids_and_a_query_per_panel() -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job", "loader_job"} <= variables
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"


def test_dashboard_shows_what_an_operator_needs() -> None:
    used = set().union(*(metric_names(e) for e in dashboard_exprs()))
    assert {
        "plug_webhook_responses_total",  # request rate and status mix per webhook
        "plug_kafka_ack_seconds_bucket",
        "plug_spool_depth",
        "plug_spool_oldest_age_seconds",
        "plug_webhooks_deadlettered_total",
        "plug_loader_lag_records",
        "plug_loader_rows_total",
    } <= used


def test_alert_rules_parse_and_cover_the_failure_modes() -> None:
    rules = alert_rules()
    names = {r["alert"] for r in rules}
    assert {
        "PlugSpoolNotDraining",
        "PlugWebhook5xxRate",
        "PlugWebhook503",
        "PlugDeadLetters",
        "PlugLoaderLag",
    } <= names
    assert len(names) == len(rules)  # no alert defined twice
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_named_is_one_the_code_exports(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in alert_rules()]
    named = set().union(*(metric_names(e) for e in exprs))
    assert named, "no metric found: the reader is broken"
    assert named <= exported(), f"not exported: {sorted(named - exported())}"


def test_the_promql_reader_refuses_what_it_cannot_account_for() -> None:
    assert metric_names('sum by (le) (rate(a_bucket{job=~"x"}[5m])) / b') == {"a_bucket", "b"}
    for bad in ("rate(a[5m]", "sum(a{job=x})", "rat(a[5m])", "a[5q]"):
        with pytest.raises(PromQLError):
            metric_names(bad)


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus's own checker, fetched once by deploy/prometheus/promtool.sh."""
    script = DEPLOY / "prometheus" / "promtool.sh"
    found = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert found.returncode == 0, found.stderr
    return found.stdout.strip()


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_alerts_fire_when_they_should_and_only_then(promtool: str) -> None:
    """deploy/prometheus/alerts.test.yaml: series in, expected alerts out, per case."""
    result = subprocess.run(
        [promtool, "test", "rules", str(ALERTS.with_suffix(".test.yaml"))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_scrape_reads_back_as_series_by_name_and_labels() -> None:
    metrics = Metrics()
    metrics.received.labels("receive-message").inc(3)
    found = samples(metrics.render().decode())
    assert found['plug_webhooks_received_total{webhook="receive-message"}'] == 3.0
    assert not any(name.startswith("#") for name in found)  # HELP and TYPE lines skipped
