"""The API server surface: TLS, authentication, node list, RBAC, access reviews."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.parse

import pytest

from fargate_sim import SimulatedCluster
from fargate_sim.testing import make_token

from .conftest import ACCESS_KEY, CLUSTER, SECRET_KEY, Client

FARGATE = "eks.amazonaws.com/compute-type=fargate"


def q(selector: str) -> str:
    return urllib.parse.quote(selector, safe="")


def test_tls_is_verified_against_the_generated_ca(sim, client):
    assert client.get("/version").status == 200
    assert base64.b64decode(sim.ca_data).decode() == sim.ca_pem
    untrusting = ssl.create_default_context()
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", sim.port, context=untrusting, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/version")
    conn.close()


def test_hostname_localhost_is_in_the_certificate(sim):
    import http.client

    from fargate_sim.testing import ssl_context

    conn = http.client.HTTPSConnection("localhost", sim.port, context=ssl_context(sim.ca_pem), timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()


UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer ",
        "Bearer not-a-token",
        "Bearer k8s-aws-v1.!!!notbase64",
        "Bearer k8s-aws-v1."
        + base64.urlsafe_b64encode(b"https://evil.example.com/?Action=GetCallerIdentity").decode(),
        "Basic dXNlcjpwYXNz",
    ],
)
def test_bad_tokens_get_401_status(sim, header):
    c = Client(sim, None)
    headers = {"Authorization": header} if header is not None else {}
    response = c.request("GET", "/api/v1/nodes", headers=headers)
    assert response.status == 401
    assert response.json() == UNAUTHORIZED
    c.close()
    assert sim.stats.unauthorized >= 1


def test_token_for_another_cluster_or_key_is_rejected(sim):
    for token in (
        make_token("other-cluster", ACCESS_KEY, SECRET_KEY),
        make_token(CLUSTER, ACCESS_KEY, "wrong-secret"),
        make_token(CLUSTER, "AKIAOTHERKEY00000001", SECRET_KEY),
    ):
        c = Client(sim, token)
        assert c.get("/api/v1/nodes").status == 401
        c.close()


def test_token_expires_15_minutes_after_signing(sim, client, token):
    assert client.get("/version").status == 200
    sim.clock.advance(14 * 60)
    assert client.get("/version").status == 200
    sim.clock.advance(2 * 60)
    response = client.get("/version")
    assert response.status == 401
    assert response.json()["reason"] == "Unauthorized"


def test_tampered_token_is_rejected(sim, token):
    url = base64.urlsafe_b64decode(token[len("k8s-aws-v1.") :] + "==").decode()
    tampered = url.replace("X-Amz-Expires=60", "X-Amz-Expires=900")
    bad = "k8s-aws-v1." + base64.urlsafe_b64encode(tampered.encode()).decode().rstrip("=")
    c = Client(sim, bad)
    assert c.get("/version").status == 401
    c.close()


def test_oversized_token_is_rejected(sim, token):
    c = Client(sim, token + "A" * 4096)
    assert c.get("/version").status == 401
    c.close()


def test_without_credentials_signature_is_not_checked(token):
    with SimulatedCluster(cluster_name=CLUSTER, pods=2) as sim:
        c = Client(sim, make_token(CLUSTER, "AKIAANYKEY0000000001", "anything"))
        assert c.get("/version").status == 200
        c.close()


def test_version(client):
    body = client.get("/version").json()
    assert body["gitVersion"].startswith("v1.30.") and "-eks-" in body["gitVersion"]


def test_node_list_shape_and_fargate_selector(sim, client):
    everything = client.get("/api/v1/nodes").json()
    assert everything["kind"] == "NodeList" and everything["apiVersion"] == "v1"
    assert everything["metadata"]["resourceVersion"]
    assert "continue" not in everything["metadata"]
    assert len(everything["items"]) == len(sim.pods) + 2
    fargate = client.get(f"/api/v1/nodes?labelSelector={q(FARGATE)}").json()["items"]
    assert sorted(n["metadata"]["name"] for n in fargate) == sorted(p.node_name for p in sim.pods)
    node = fargate[0]
    labels = node["metadata"]["labels"]
    for key in (
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    ):
        assert key in labels
    pod = next(p for p in sim.pods if p.node_name == node["metadata"]["name"])
    assert labels["kubernetes.io/hostname"] == pod.hostname
    assert node["metadata"]["name"] == "fargate-" + pod.hostname
    assert node["spec"]["taints"] == [
        {"key": "eks.amazonaws.com/compute-type", "value": "fargate", "effect": "NoSchedule"}
    ]
    assert node["spec"]["providerID"].startswith("aws:///")
    status = node["status"]
    assert {"InternalIP", "Hostname"} <= {a["type"] for a in status["addresses"]}
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    assert status["nodeInfo"]["kubeletVersion"].startswith("v1.30.")
    assert status["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://1.7.")
    assert {"cpu", "memory", "pods"} <= set(status["capacity"]) and status["allocatable"]
    assert node["metadata"]["uid"] and node["metadata"]["creationTimestamp"].endswith("Z")


@pytest.mark.parametrize(
    ("selector", "expect"),
    [
        ("eks.amazonaws.com/compute-type==fargate", "fargate"),
        ("eks.amazonaws.com/compute-type!=fargate", "ec2"),
        ("eks.amazonaws.com/nodegroup", "ec2"),
        ("!eks.amazonaws.com/nodegroup", "fargate"),
        ("eks.amazonaws.com/compute-type in (fargate, other)", "fargate"),
        ("eks.amazonaws.com/compute-type notin (fargate)", "ec2"),
        ("kubernetes.io/os=linux,eks.amazonaws.com/compute-type=fargate", "fargate"),
        ("kubernetes.io/os=windows", "none"),
        ("", "all"),
    ],
)
def test_label_selectors(sim, client, selector, expect):
    names = {
        n["metadata"]["name"]
        for n in client.get(f"/api/v1/nodes?labelSelector={q(selector)}").json()["items"]
    }
    fargate = {p.node_name for p in sim.pods}
    ec2 = set(sim.node_names) - fargate
    assert names == {"fargate": fargate, "ec2": ec2, "none": set(), "all": fargate | ec2}[expect]


def test_bad_selector_is_400(client):
    response = client.get(f"/api/v1/nodes?labelSelector={q('a=(b')}")
    assert response.status == 400
    assert response.json()["reason"] == "BadRequest"


@pytest.mark.parametrize(("limit", "cap"), [(5, None), (1, None), (100, 4), (0, 3)])
def test_pagination_covers_every_node_once(clock, token, limit, cap):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=13,
        seed=5,
        clock=clock,
        credentials=(ACCESS_KEY, SECRET_KEY),
        max_page_size=cap,
    ) as sim:
        c = Client(sim, token)
        seen: list[str] = []
        pages = 0
        cont = ""
        while True:
            path = f"/api/v1/nodes?labelSelector={q(FARGATE)}"
            if limit:
                path += f"&limit={limit}"
            if cont:
                path += f"&continue={q(cont)}"
            body = c.get(path).json()
            pages += 1
            seen += [n["metadata"]["name"] for n in body["items"]]
            cont = body["metadata"].get("continue", "")
            assert body["metadata"]["resourceVersion"]
            if not cont:
                break
        page = min(x for x in (limit or None, cap) if x)
        assert pages == -(-13 // page)
        assert sorted(seen) == sorted(p.node_name for p in sim.pods)
        assert len(seen) == len(set(seen))
        c.close()


def test_bad_continue_is_400(client):
    assert client.get("/api/v1/nodes?limit=2&continue=garbage!").status == 400


def test_rbac_denials_look_like_the_real_ones(clock, token):
    with SimulatedCluster(
        cluster_name=CLUSTER,
        pods=3,
        clock=clock,
        credentials=(ACCESS_KEY, SECRET_KEY),
        permissions={"list nodes": False, "get nodes/proxy": False},
    ) as sim:
        c = Client(sim, token)
        listed = c.get("/api/v1/nodes")
        assert listed.status == 403
        body = listed.json()
        assert body["reason"] == "Forbidden" and body["code"] == 403
        assert 'cannot list resource "nodes" in API group "" at the cluster scope' in body["message"]
        node = sim.pods[0].node_name
        proxied = c.get(f"/api/v1/nodes/{node}/proxy/metrics/cadvisor")
        assert proxied.status == 403
        message = proxied.json()["message"]
        assert message.startswith(f'nodes "{node}" is forbidden: User "')
        assert message.endswith('cannot get resource "nodes/proxy" in API group "" at the cluster scope')
        assert sim.stats.forbidden == 2

        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "verb": "get",
                    "resource": "nodes",
                    "subresource": "proxy",
                    "group": "",
                }
            },
        }
        response = c.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=json.dumps(review).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 201
        assert response.json()["status"]["allowed"] is False
        review["spec"]["resourceAttributes"] = {"verb": "get", "resource": "nodes"}
        allowed = c.request(
            "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=json.dumps(review).encode()
        ).json()
        assert allowed["status"]["allowed"] is True
        c.close()


def test_unknown_node_is_404(client):
    response = client.get("/api/v1/nodes/fargate-ip-1-2-3-4.x/proxy/metrics/cadvisor")
    assert response.status == 404
    body = response.json()
    assert body["reason"] == "NotFound"
    assert body["message"] == 'nodes "fargate-ip-1-2-3-4.x" not found'


def test_pods_list_and_field_selector(sim, client):
    pod = sim.pods[0]
    items = client.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{pod.node_name}").json()["items"]
    assert [i["metadata"]["uid"] for i in items] == [pod.uid]
    assert "CapacityProvisioned" in items[0]["metadata"]["annotations"]
    assert len(client.get("/api/v1/pods").json()["items"]) == len(sim.pods)


def test_add_remove_recreate(sim, client):
    victim = sim.pods[0]
    fresh = sim.recreate_pod(victim.name)
    assert fresh.uid != victim.uid and fresh.name == victim.name and fresh.node_name == victim.node_name
    assert fresh.start_time == sim.clock.now()
    removed = sim.remove_pod(sim.pods[1].name)
    names = {
        n["metadata"]["name"] for n in client.get(f"/api/v1/nodes?labelSelector={q(FARGATE)}").json()["items"]
    }
    assert removed.node_name not in names
    sim.add_pod(removed)
    names = {
        n["metadata"]["name"] for n in client.get(f"/api/v1/nodes?labelSelector={q(FARGATE)}").json()["items"]
    }
    assert removed.node_name in names


METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"


def test_node_list_as_metadata_only(sim, client):
    """What the collector asks for: the same names and labels, without spec and status."""
    path = f"/api/v1/nodes?labelSelector={q(FARGATE)}&limit=5"
    full = client.get(path).json()
    partial = client.get(path, Accept=METADATA_ONLY).json()
    assert partial["kind"] == "PartialObjectMetadataList" and partial["apiVersion"] == "meta.k8s.io/v1"
    assert partial["metadata"]["continue"] and partial["metadata"]["continue"] == full["metadata"]["continue"]
    assert [item["metadata"] for item in partial["items"]] == [item["metadata"] for item in full["items"]]
    for item in partial["items"]:
        assert item.keys() == {"kind", "apiVersion", "metadata"}
        assert (item["kind"], item["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    # managedFields, kept in metadata-only items as by the real server, are most of the metadata's bytes
    assert all(item["metadata"]["managedFields"] for item in partial["items"])
    assert len(json.dumps(partial)) < len(json.dumps(full)) * 0.7


@pytest.mark.parametrize(
    "accept",
    [
        "application/json",
        "application/json, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        "application/json;as=Table;g=meta.k8s.io;v=v1, application/json",
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta2, application/json",
    ],
)
def test_other_accept_headers_get_the_full_node_list(client, accept):
    body = client.get(f"/api/v1/nodes?labelSelector={q(FARGATE)}", Accept=accept).json()
    assert body["kind"] == "NodeList" and all("status" in item for item in body["items"])
