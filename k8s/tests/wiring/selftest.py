"""Negative self-test: break the manifests on purpose, one way at a time; the
checker must report something new for every breakage."""

from __future__ import annotations

from typing import Callable

from . import driver
from .bundle import Bundle, clone


def _find(bundles: list[Bundle], bundle: str, kind: str, name: str) -> dict:
    for b in bundles:
        if b.name != bundle:
            continue
        for d in b.docs:
            n = d.get("metadata", {}).get("name", "")
            # Generated ConfigMaps carry a hash suffix.
            if d.get("kind") == kind and (n == name or (kind == "ConfigMap" and n.rsplit("-", 1)[0] == name)):
                return d
    raise LookupError(f"self-test target {bundle}: {kind}/{name} not found")


def _container(sts: dict, name: str) -> dict:
    for c in sts["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    raise LookupError(f"container {name} not found")


def _edit_data(cm: dict, old: str, new: str) -> None:
    for k, v in cm["data"].items():
        if old in v:
            cm["data"][k] = v.replace(old, new, 1)
            return
    raise LookupError(f"{old!r} not in ConfigMap {cm['metadata']['name']}")


def _rename_port(bs, bundle, sts, container, old, new):
    for p in _container(_find(bs, bundle, "StatefulSet", sts), container)["ports"]:
        if p["name"] == old:
            p["name"] = new
            return
    raise LookupError(f"port {old} not found")


def _drop_arg(bs, bundle, sts, container, prefix):
    c = _container(_find(bs, bundle, "StatefulSet", sts), container)
    before = len(c["args"])
    c["args"] = [a for a in c["args"] if not a.startswith(prefix)]
    if len(c["args"]) == before:
        raise LookupError(f"no arg {prefix}")


def _set_mount_path(bs, bundle, sts, container, volume, path):
    for m in _container(_find(bs, bundle, "StatefulSet", sts), container)["volumeMounts"]:
        if m["name"] == volume:
            m["mountPath"] = path
            return
    raise LookupError(f"mount {volume} not found")


# (what is broken, substring the new finding must contain, how)
MUTATIONS: list[tuple[str, str, Callable[[list[Bundle]], None]]] = [
    ("query container port grpc renamed", "grpc",
     lambda bs: _rename_port(bs, "observer", "skein-query", "skein", "grpc", "grpc-x")),
    ("store Service selector typo", "selects no pod",
     lambda bs: _find(bs, "observer", "Service", "skein-store")["spec"]["selector"].update(
         {"app.kubernetes.io/component": "stor"})),
    ("NetworkPolicy names a port no pod has", "is not a port of pod",
     lambda bs: _find(bs, "observer", "NetworkPolicy", "skein-query-http")["spec"]["ingress"][0]["ports"][0]
     .update({"port": "https"})),
    ("Prometheus readiness probe on an undeclared port", "readinessProbe",
     lambda bs: _container(_find(bs, "workload", "StatefulSet", "prometheus"), "prometheus")["readinessProbe"]
     ["httpGet"].update({"port": 9091})),
    ("ConfigMap key the pods read is renamed", "no key 'wan_domain'",
     lambda bs: _find(bs, "workload", "ConfigMap", "skein-cluster").update({"data": {"domain": "x.example.com"}})),
    ("store mounts a Secret that nobody creates", "does not exist",
     lambda bs: next(v for v in _find(bs, "observer", "StatefulSet", "skein-store")["spec"]["template"]["spec"]
                     ["volumes"] if v["name"] == "objstore")["secret"].update({"secretName": "skein-objstor"})),
    ("certificate lacks one pod's SNI name", "is not a dnsName",
     lambda bs: _find(bs, "workload", "Certificate", "skein-sidecar")["spec"]["dnsNames"].pop()),
    ("WAN ingress host typo", "no Ingress rule has host",
     lambda bs: _find(bs, "observer", "Ingress", "skein-wan")["spec"]["rules"][1].update(
         {"host": "skein-query1.observer.skein.example.com"})),
    ("Prometheus cluster label differs from the Skein cluster id", "external label cluster",
     lambda bs: _edit_data(_find(bs, "workload", "ConfigMap", "prometheus-config"), "cluster: eu1", "cluster: eu2")),
    ("Prometheus scaled to one replica, per-pod Service left behind", "selects no pod",
     lambda bs: _find(bs, "workload", "StatefulSet", "prometheus")["spec"].update({"replicas": 1})),
    ("grpc_address port drifts from the containerPort", "does not match containerPort",
     lambda bs: _edit_data(_find(bs, "observer", "ConfigMap", "skein-query-config"),
                           "grpc_address: 0.0.0.0:10901", "grpc_address: 0.0.0.0:10911")),
    ("gossip Service port becomes TCP", "no UDP port",
     lambda bs: _find(bs, "observer", "Service", "skein-gossip")["spec"]["ports"][0].update({"protocol": "TCP"})),
    ("Prometheus local compaction left on", "local compaction",
     lambda bs: _drop_arg(bs, "workload", "prometheus", "prometheus", "--storage.tsdb.min-block-duration")),
    ("TLS secret mounted elsewhere than tls.cert_file", "on no volume",
     lambda bs: _set_mount_path(bs, "observer", "skein-query", "skein", "tls", "/etc/skein/certs")),
    ("querier does not dedup by the replica label", "no querier dedups",
     lambda bs: _edit_data(_find(bs, "observer", "ConfigMap", "skein-query-config"),
                           "replica_labels: [replica]", "replica_labels: [prometheus_replica]")),
    ("per-pod WAN Service routes to ready pods only", "publishNotReadyAddresses",
     lambda bs: _find(bs, "workload", "Service", "skein-sidecar-0")["spec"].pop("publishNotReadyAddresses")),
    ("Prometheus container gets a writable root filesystem", "readOnlyRootFilesystem",
     lambda bs: _container(_find(bs, "workload", "StatefulSet", "prometheus"), "prometheus")["securityContext"]
     .pop("readOnlyRootFilesystem")),
    ("store loses its memory limit", "limits.memory",
     lambda bs: _container(_find(bs, "observer", "StatefulSet", "skein-store"), "skein")["resources"]["limits"]
     .pop("memory")),
    ("query readiness probe on /-/healthy", "readinessProbe must be GET /-/ready",
     lambda bs: _container(_find(bs, "observer", "StatefulSet", "skein-query"), "skein")["readinessProbe"]
     ["httpGet"].update({"path": "/-/healthy"})),
    ("store PodDisruptionBudget selects another component", "no PodDisruptionBudget",
     lambda bs: _find(bs, "observer", "PodDisruptionBudget", "skein-store")["spec"]["selector"]["matchLabels"]
     .update({"app.kubernetes.io/component": "query"})),
]

def _misspell_flag(bs):
    c = _container(_find(bs, "workload", "StatefulSet", "prometheus"), "skein")
    c["args"] = [a.replace("--tls.server-name=", "--tls.servername=") for a in c["args"]]


# Need the real binary: only meaningful once the unbroken configs load.
BINARY_MUTATIONS = [
    ("unknown key in the Skein config", "config check",
     lambda bs: _edit_data(_find(bs, "observer", "ConfigMap", "skein-query-config"),
                           "federation: skein", "federation: skein\nquerry: {}")),
    ("misspelt per-pod flag", "has no flag --tls.servername", _misspell_flag),
]


def run(bundles: list[Bundle], baseline: list[str], checker, promtool) -> int:
    base = set(baseline)
    mutations = list(MUTATIONS)
    if any("config check" in e or "has no flag" in e for e in baseline):
        print("self-test: SKIP unknown-config-key breakage: `skein config check` is unusable "
              "or the unbroken configs do not load")
    else:
        mutations += BINARY_MUTATIONS
    caught = missed = 0
    for what, expect, mutate in mutations:
        broken = [clone(b) for b in bundles]
        try:
            mutate(broken)
        except (LookupError, KeyError, IndexError, StopIteration) as e:
            print(f"self-test: FAIL {what}: could not apply ({e})")
            missed += 1
            continue
        new = [e for e in driver.run(broken, checker, promtool) if e not in base]
        hits = [e for e in new if expect in e]
        if hits:
            caught += 1
            print(f"self-test: ok   {what}: {hits[0]}")
        else:
            missed += 1
            print(f"self-test: FAIL {what}: not reported (new findings: {new[:3]})")
    print(f"self-test: {caught} passed, {missed} failed")
    return missed
