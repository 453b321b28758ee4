"""The Prometheus next to each Skein sidecar: its config (checked with the real
promtool), external labels vs the Skein cluster id and the queriers' replica
labels, the shared TSDB volume, block durations, the URL the sidecar uses."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from .podenv import container_args, container_env, flag_value, split_host_port
from .ports import port_matches
from .refs import resolve_file
from .skein_nodes import SkeinNode

_ENV_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


class Promtool:
    def __init__(self, path: str | None):
        self.path = path or shutil.which("promtool")
        self.cache: dict[str, tuple[int, str]] = {}

    def check_config(self, text: str) -> tuple[int, str]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in self.cache:
            return self.cache[digest]
        if not self.path:
            result = (127, "promtool not found (installed with the prometheus package; or set PROMTOOL)")
        else:
            with tempfile.TemporaryDirectory() as d:
                f = os.path.join(d, "prometheus.yml")
                with open(f, "w", encoding="utf-8") as out:
                    out.write(text)
                p = subprocess.run([self.path, "check", "config", f], capture_output=True, text=True, timeout=60)
                result = (p.returncode, (p.stdout + p.stderr).replace(f, "<file>").strip())
        self.cache[digest] = result
        return result


def _prometheus_container(n: SkeinNode) -> dict | None:
    for c in n.pod.containers():
        if c is not n.container and flag_value(container_args(n.bundle, n.pod, c), "--config.file"):
            return c
    return None


def _expanded_labels(labels: dict, env: dict[str, str], expand_on: bool) -> dict[str, str]:
    if not expand_on:
        return {k: str(v) for k, v in labels.items()}
    return {k: _ENV_REF.sub(lambda m: env.get(m.group(1) or m.group(2), ""), str(v)) for k, v in labels.items()}


def check_sidecar(n: SkeinNode, promtool: Promtool, replica_labels_seen: dict) -> None:
    b, pod = n.bundle, n.pod

    def err(msg: str) -> None:
        b.error(pod.owner, f"pod {pod.name}: {msg}")

    prom = _prometheus_container(n)
    if prom is None:
        err("role sidecar but no Prometheus container (one with --config.file) in the pod")
        return
    args = container_args(b, pod, prom)
    env = container_env(b, pod, prom)
    # The URL the sidecar calls must be this Prometheus.
    url = str(n.get("sidecar.prometheus_url", "http://127.0.0.1:9090"))
    host, port = split_host_port(url.split("://", 1)[-1].split("/", 1)[0])
    listen = flag_value(args, "--web.listen-address") or "0.0.0.0:9090"
    if host not in ("127.0.0.1", "localhost") or port != split_host_port(listen)[1]:
        err(f"sidecar.prometheus_url {url} is not the Prometheus of this pod (it listens on {listen})")
    if not any(port_matches(p, port) for p in prom.get("ports") or []):
        err(f"sidecar.prometheus_url port {port} is not a containerPort of {prom.get('name')}")
    # Shared TSDB.
    tsdb = n.get("sidecar.tsdb_path")
    prom_tsdb = flag_value(args, "--storage.tsdb.path") or "data/"
    if tsdb is not None:
        m1, v1, _ = resolve_file(b, pod, n.container, str(tsdb), b.external)
        m2, v2, _ = resolve_file(b, pod, prom, prom_tsdb, b.external)
        if m1 is None or m2 is None or m1.get("name") != m2.get("name") or tsdb != prom_tsdb:
            err(f"sidecar.tsdb_path {tsdb} is not the volume and path of Prometheus's "
                f"--storage.tsdb.path {prom_tsdb}")
        if n.get("sidecar.objstore_config_file") is not None:
            lo = flag_value(args, "--storage.tsdb.min-block-duration")
            hi = flag_value(args, "--storage.tsdb.max-block-duration")
            if lo is None or lo != hi:
                err("the shipper needs Prometheus's local compaction off: "
                    f"--storage.tsdb.min-block-duration ({lo}) must equal max ({hi})")
    # The Prometheus config itself.
    cfg_path = flag_value(args, "--config.file")
    _, vol, key = resolve_file(b, pod, prom, cfg_path, b.external)
    cm = b.get("ConfigMap", (vol or {}).get("configMap", {}).get("name"), pod.namespace) if vol else None
    text = ((cm or {}).get("data") or {}).get(key)
    if text is None:
        err(f"--config.file {cfg_path} is not in a mounted ConfigMap")
        return
    code, out = promtool.check_config(text)
    if code != 0:
        err(f"promtool check config {cfg_path}: exit {code}: {out.splitlines()[-1] if out else ''}")
    try:
        labels = ((yaml.safe_load(text) or {}).get("global") or {}).get("external_labels") or {}
    except yaml.YAMLError as e:
        err(f"{cfg_path}: not YAML: {e}")
        return
    features = ",".join(a.split("=", 1)[1] for a in args if a.startswith("--enable-feature="))
    expand_on = "expand-external-labels" in features.split(",")
    uses_env = any(_ENV_REF.search(str(v)) for v in labels.values())
    if uses_env and not expand_on:
        err("external labels use ${VAR} but Prometheus runs without --enable-feature=expand-external-labels")
    for m in _ENV_REF.finditer(" ".join(str(v) for v in labels.values())):
        if (m.group(1) or m.group(2)) not in env:
            err(f"external labels use ${{{m.group(1) or m.group(2)}}}, which the Prometheus container's env lacks")
    values = _expanded_labels(labels, env, expand_on)
    if values.get("cluster") != str(n.get("cluster")):
        err(f"Prometheus external label cluster={values.get('cluster')!r} differs from Skein cluster "
            f"{n.get('cluster')!r}")
    replica_labels_seen.setdefault(id(pod.owner), (n, []))[1].append(values)


def check_replicas(groups: dict, query_replica_labels: set[str]) -> None:
    """Pods of one HA group must differ in their external labels, and only by
    labels every querier drops when deduplicating."""
    for n, label_sets in groups.values():
        if len(label_sets) < 2:
            continue
        differing = {k for s in label_sets for k in s if len({t.get(k) for t in label_sets}) > 1}
        if not differing:
            n.bundle.error(n.pod.owner, "the HA replicas have identical external labels: set a replica label")
        missing = differing - query_replica_labels
        if missing and query_replica_labels:
            n.bundle.error(n.pod.owner, f"external labels {sorted(missing)} differ between replicas but no "
                                        f"querier dedups by them (query.replica_labels {sorted(query_replica_labels)})")


def run_all(nodes: list[SkeinNode], promtool: Promtool) -> None:
    groups: dict = {}
    for n in nodes:
        if "sidecar" in n.roles:
            check_sidecar(n, promtool, groups)
    replica_labels: set[str] = set()
    queriers = [n for n in nodes if "query" in n.roles]
    for q in queriers:
        replica_labels |= {str(x) for x in (q.get("query.replica_labels") or ["replica"])}
    check_replicas(groups, replica_labels if queriers else set())
