"""deploy/kubernetes: valid for Kubernetes 1.29+ (strict schemas, offline), and consistent
with the program: known settings only, shutdown within the grace period, spool on its claim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline import __version__
from pipeline.cli import build_parser
from pipeline.config import SETTINGS

FOLDER = Path(__file__).parents[2] / "deploy" / "kubernetes"
MANIFESTS = sorted(p for p in FOLDER.rglob("*.yaml") if p.name != "kustomization.yaml")
VERSIONS = ["1.29.0", "1.37.0"]  # the oldest we support and the newest schemas we have


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resource(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise LookupError(f"{kind}/{name}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(FOLDER)))
def test_manifest_is_valid_in_strict_mode(path: Path, version: str) -> None:
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_kustomization_lists_every_manifest_but_the_job_template() -> None:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    listed = {FOLDER / name for name in kustomization["resources"]}
    assert listed  # an empty list and an empty folder would agree
    assert listed == {p for p in MANIFESTS if p.parent == FOLDER}


def env_names() -> set[str]:
    """Every variable the manifests give the program, from env lists and the ConfigMap."""
    names = set(resource("ConfigMap", "plug-pipeline-settings")["data"])
    for path in MANIFESTS:
        for doc in documents(path):
            spec = doc.get("spec", {})
            pod = (spec.get("jobTemplate", {}).get("spec", spec)).get("template", {})
            for container in pod.get("spec", {}).get("containers", []):
                names |= {e["name"] for e in container.get("env", [])}
    return names


def test_every_variable_is_a_setting_the_program_knows() -> None:
    # The program refuses unknown PLUG_PIPELINE_* variables at start (exit 2).
    ours = {n for n in env_names() if n.startswith(("PLUG_PIPELINE_", "KAFKA_"))}
    known = {s.env for s in SETTINGS}
    assert ours <= known, sorted(ours - known)
    assert "PLUG_PIPELINE_TOKENS" not in env_names()  # tokens come as a file from the Secret


def ingress_container() -> tuple[dict[str, Any], dict[str, Any]]:
    sts = resource("StatefulSet", "plug-ingress")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return sts, container


def test_shutdown_fits_in_the_termination_grace_period() -> None:
    sts, container = ingress_container()
    env = {e["name"]: e.get("value") for e in container["env"]}
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = (
        float(pre_stop[1])
        + float(env["PLUG_PIPELINE_SHUTDOWN_GRACE_S"])
        + float(env["PLUG_PIPELINE_SHUTDOWN_TIMEOUT_S"])
    )
    assert needed < sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_ingress_probes_spool_claim_and_read_only_root() -> None:
    sts, container = ingress_container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["spool"] == env["PLUG_PIPELINE_SPOOL_DIR"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"  # a claim per pod, not an emptyDir
    assert "spool" not in {v["name"] for v in pod["volumes"]}
    size = claim["spec"]["resources"]["requests"]["storage"]
    assert size.endswith("Gi")
    assert int(env["PLUG_PIPELINE_SPOOL_MAX_BYTES"]) < int(size[:-2]) * 1024**3


def test_the_autoscaler_and_budget_select_the_ingress() -> None:
    hpa = resource("HorizontalPodAutoscaler", "plug-ingress")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": "plug-ingress",
    }
    labels = resource("StatefulSet", "plug-ingress")["spec"]["template"]["metadata"]["labels"]
    pdb = resource("PodDisruptionBudget", "plug-ingress")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_image_tags_are_the_package_version() -> None:
    kustomization = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())
    images = {image["name"]: image["newTag"] for image in kustomization["images"]}
    assert images == {"plug-pipeline": __version__, "plug-pipeline-loader": __version__}
    job = documents(FOLDER / "jobs" / "spool-drain.yaml")[0]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"plug-pipeline:{__version__}"


def command_lines() -> dict[str, list[str]]:
    """Every plug-pipeline command line the manifests and docker-compose.yml run."""
    lines = {}
    for path in MANIFESTS:
        for doc in documents(path):
            spec = doc.get("spec", {})
            for container in spec.get("template", {}).get("spec", {}).get("containers", []):
                lines[f"{path.name}:{container['name']}"] = container["args"]
    compose = yaml.safe_load((FOLDER.parents[1] / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        if service.get("image", "").startswith("plug-pipeline"):
            lines[f"compose:{name}"] = service.get("command", ["serve"])
    return lines


def test_every_command_line_is_one_the_program_accepts() -> None:
    lines = command_lines()
    assert {"ingress-statefulset.yaml:ingress", "compose:loader"} <= lines.keys()
    parser = build_parser()
    for where, argv in lines.items():
        try:
            parser.parse_args([str(a) for a in argv])
        except SystemExit:
            pytest.fail(f"{where}: plug-pipeline {' '.join(map(str, argv))} is refused")


def test_the_loader_serves_metrics_where_prometheus_can_scrape() -> None:
    deployment = resource("Deployment", "plug-loader")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(container["args"])
    assert args.metrics_host == "0.0.0.0"  # not loopback: the pod's IP is scraped
    (port,) = container["ports"]
    assert args.metrics_port == port["containerPort"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(args.metrics_port)
