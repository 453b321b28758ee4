"""Runs every check over a set of bundles and returns the error list."""

from __future__ import annotations

from . import policy, ports, prometheus, refs, skein_nodes, skein_wiring
from .bundle import Bundle


def check_unique(b: Bundle) -> None:
    seen = set()
    for d in b.docs:
        meta = d.get("metadata", {})
        key = (d.get("apiVersion"), d.get("kind"), meta.get("namespace"), meta.get("name"))
        if key in seen:
            b.error(d, "declared twice")
        seen.add(key)


def run(bundles: list[Bundle], config_checker, promtool) -> list[str]:
    for b in bundles:
        b.errors = []
    all_nodes = []
    for b in bundles:
        check_unique(b)
        pods = b.all_pods()
        ports.run_all(b, pods)
        refs.run_all(b, pods, b.external)
        policy.run_all(b, pods)
        all_nodes += skein_nodes.build_nodes(b, pods, b.external)
    if config_checker is not None:
        skein_nodes.check_configs(all_nodes, config_checker)
    skein_wiring.run_all(all_nodes, bundles)
    prometheus.run_all(all_nodes, promtool)
    # The same finding for each replica of one workload is reported once.
    return list(dict.fromkeys(e for b in bundles for e in b.errors))
