"""A rendered overlay: its objects, indexed, and the pods its workloads make."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass
class Pod:
    """One pod as the controller would create it (labels and spec only)."""

    name: str
    namespace: str
    owner: dict
    ordinal: int
    labels: dict
    spec: dict
    ip: str

    def containers(self) -> list[dict]:
        return list(self.spec.get("containers") or []) + list(self.spec.get("initContainers") or [])

    def volume(self, name: str) -> dict | None:
        for v in self.spec.get("volumes") or []:
            if v.get("name") == name:
                return v
        return None

    def claim_template(self, name: str) -> dict | None:
        if self.owner.get("kind") != "StatefulSet":
            return None
        for t in self.owner.get("spec", {}).get("volumeClaimTemplates") or []:
            if t.get("metadata", {}).get("name") == name:
                return t
        return None


@dataclass
class Bundle:
    """All objects of one rendered overlay (one cluster)."""

    name: str
    docs: list[dict]
    index: int = 0
    external: dict = field(default_factory=dict)  # allowlisted external Secrets: name -> keys
    errors: list[str] = field(default_factory=list)
    _pods: list | None = None

    def all_pods(self) -> list["Pod"]:
        """pods(), computed once (call only after the docs stop changing)."""
        if self._pods is None:
            self._pods = self.pods()
        return self._pods

    def error(self, obj: dict | None, message: str) -> None:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}" if obj else "-"
        self.errors.append(f"{self.name}: {where}: {message}")

    def objects(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d.get("kind") == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        for d in self.docs:
            meta = d.get("metadata", {})
            if d.get("kind") != kind or meta.get("name") != name:
                continue
            if namespace is None or meta.get("namespace", namespace) == namespace:
                return d
        return None

    def pods(self) -> list[Pod]:
        out: list[Pod] = []
        for w in self.docs:
            if w.get("kind") not in WORKLOAD_KINDS:
                continue
            meta = w.get("metadata", {})
            spec = w.get("spec", {})
            template = spec.get("template", {})
            labels = dict(template.get("metadata", {}).get("labels") or {})
            replicas = spec.get("replicas", 1)
            if w["kind"] == "DaemonSet" or w["kind"] == "Job":
                replicas = 1
            for i in range(replicas if isinstance(replicas, int) else 0):
                pod_labels = dict(labels)
                if w["kind"] == "StatefulSet":
                    name = f"{meta.get('name')}-{i}"
                    pod_labels["statefulset.kubernetes.io/pod-name"] = name
                    pod_labels["apps.kubernetes.io/pod-index"] = str(i)
                else:
                    name = f"{meta.get('name')}-{i}-x"
                out.append(
                    Pod(
                        name=name,
                        namespace=meta.get("namespace", "default"),
                        owner=w,
                        ordinal=i,
                        labels=pod_labels,
                        spec=template.get("spec", {}),
                        ip=f"10.{self.index}.{len(out) // 200}.{10 + len(out) % 200}",
                    )
                )
        return out


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) against pod labels."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def plain_selector_matches(selector: dict | None, labels: dict) -> bool:
    """A Service-style selector (a plain map); empty selects nothing here."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def clone(bundle: Bundle) -> Bundle:
    return Bundle(name=bundle.name, docs=copy.deepcopy(bundle.docs), index=bundle.index, external=bundle.external)
