"""infra/rbac.yaml grants the collector's group exactly what the collector uses, nothing more."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from infra.collector import rbac_command
from infra.names import RBAC_MANIFEST
from infra.settings import DEFAULT_KUBERNETES_GROUP, CollectorSettings

ROLE_NAME = "fargate-insights-collector"
# The collector's API calls (lambda_src/fargate_insights/kube_api.py): GET /api/v1/nodes (list, Fargate
# label selector) and GET /api/v1/nodes/{name}/proxy/metrics/cadvisor.
EXPECTED_RULES = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
]


def _documents(text: str | None = None) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text or RBAC_MANIFEST.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs) == 2, [d["kind"] for d in docs]
    return by_kind


def test_only_a_cluster_role_and_its_binding() -> None:
    docs = _documents()
    assert set(docs) == {"ClusterRole", "ClusterRoleBinding"}
    for doc in docs.values():
        assert doc["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert doc["metadata"]["name"] == ROLE_NAME


def test_cluster_role_rules_are_exactly_what_the_collector_uses() -> None:
    role = _documents()["ClusterRole"]
    assert role["rules"] == EXPECTED_RULES
    assert "aggregationRule" not in role
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}  # no resourceNames, nonResourceURLs
        for values in rule.values():
            assert "*" not in values


def test_binding_binds_the_default_group_of_the_construct() -> None:
    binding = _documents()["ClusterRoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": ROLE_NAME,
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": DEFAULT_KUBERNETES_GROUP}
    ]
    assert CollectorSettings(cluster_name="demo").kubernetes_group == DEFAULT_KUBERNETES_GROUP


def test_manifest_warns_about_nodes_proxy() -> None:
    text = RBAC_MANIFEST.read_text()
    assert "nodes/proxy" in text and "every kubelet API" in text
    assert "only the collector's role" in text


def test_rbac_command_for_the_default_group() -> None:
    assert rbac_command(DEFAULT_KUBERNETES_GROUP) == "kubectl apply -f infra/rbac.yaml"


@pytest.mark.skipif(shutil.which("sed") is None, reason="needs sed")
def test_rbac_command_for_another_group_changes_only_the_subject() -> None:
    command = rbac_command("metrics-collectors")
    sed_part, _, kubectl = command.partition(" | ")
    assert kubectl == "kubectl apply -f -"
    expression = sed_part.split("'")[1]
    result = subprocess.run(
        ["sed", expression, str(RBAC_MANIFEST)], capture_output=True, text=True, check=True
    )
    changed = _documents(result.stdout)
    original = _documents()
    assert changed["ClusterRoleBinding"]["subjects"][0]["name"] == "metrics-collectors"
    changed["ClusterRoleBinding"]["subjects"][0]["name"] = DEFAULT_KUBERNETES_GROUP
    assert changed == original
