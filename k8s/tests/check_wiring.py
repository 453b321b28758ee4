#!/usr/bin/env python3
"""Checks how rendered Kubernetes manifests fit together, beyond what schema
validators see: ports by name and number (containers, probes, Services,
NetworkPolicies, ingress), selectors that select real pods, ConfigMaps and
Secrets that exist (or are allowlisted external Secrets), each Skein node's
effective config loaded by the real `skein config check`, its TLS server
name vs certificate vs SNI route, gossip seeds, and the Prometheus next to
each sidecar (promtool, external labels, shared TSDB).

usage: check_wiring.py [--self-test] [--skein-bin BIN] [--external-secrets FILE] NAME=RENDERED.yaml...
Each NAME=FILE is one cluster (one rendered overlay). Exit 1 on any finding.
With --self-test, the bundles are also broken on purpose, one way at a time,
and every breakage must be reported (exit 1 if one goes unnoticed).
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wiring import driver, selftest  # noqa: E402
from wiring.bundle import Bundle  # noqa: E402
from wiring.prometheus import Promtool  # noqa: E402
from wiring.refs import load_allowlist  # noqa: E402
from wiring.skein_nodes import ConfigChecker  # noqa: E402


def load_bundles(specs: list[str], external: dict) -> list[Bundle]:
    bundles = []
    for i, spec in enumerate(specs):
        name, sep, path = spec.partition("=")
        if not sep:
            raise SystemExit(f"check_wiring: expected NAME=FILE, got {spec!r}")
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
        bundles.append(Bundle(name=name, docs=docs, index=i + 1, external=external))
    return bundles


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundles", nargs="+", metavar="NAME=FILE")
    ap.add_argument("--skein-bin", default=os.environ.get("SKEIN_BIN", "target/debug/skein"))
    ap.add_argument("--promtool", default=os.environ.get("PROMTOOL"))
    ap.add_argument("--external-secrets", default=os.path.join(here, "external-secrets.txt"))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()

    external = load_allowlist(args.external_secrets)
    bundles = load_bundles(args.bundles, external)
    checker = ConfigChecker(args.skein_bin)
    promtool = Promtool(args.promtool)
    errors = driver.run(bundles, checker, promtool)
    for e in errors:
        print(f"wiring: {e}")
    objects = sum(len(b.docs) for b in bundles)
    print(f"wiring: {len(bundles)} bundles, {objects} objects, {len(errors)} findings")
    failed = bool(errors)
    if args.self_test:
        missed = selftest.run(bundles, errors, checker, promtool)
        failed = failed or missed > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
