"""What every pod here must have: the restricted security context, resource
requests and limits, liveness and readiness probes (Skein's on /-/healthy and
/-/ready of its http port), and a PodDisruptionBudget when it has replicas."""

from __future__ import annotations

from .bundle import Bundle, Pod, selector_matches
from .skein_nodes import is_skein


def _probe_path(c: dict, kind: str) -> tuple[str | None, object]:
    h = (c.get(kind) or {}).get("httpGet") or {}
    return h.get("path"), h.get("port")


def check_pod_policy(b: Bundle, pods: list[Pod]) -> None:
    seen = set()
    for pod in pods:
        if id(pod.owner) in seen:
            continue
        seen.add(id(pod.owner))
        w, spec = pod.owner, pod.spec
        psc = spec.get("securityContext") or {}
        for c in spec.get("containers") or []:
            name = c.get("name")
            sc = c.get("securityContext") or {}
            if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
                b.error(w, f"container {name}: runAsNonRoot is not true")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                b.error(w, f"container {name}: seccompProfile is {seccomp!r}, not RuntimeDefault")
            if sc.get("allowPrivilegeEscalation") is not False:
                b.error(w, f"container {name}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                b.error(w, f"container {name}: readOnlyRootFilesystem is not true")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                b.error(w, f"container {name}: capabilities do not drop ALL")
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in (res.get(part) or {}):
                        b.error(w, f"container {name}: no {part}.{r}")
            for kind in ("livenessProbe", "readinessProbe"):
                if not c.get(kind):
                    b.error(w, f"container {name}: no {kind}")
            if is_skein(c):
                for kind, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
                    got, port = _probe_path(c, kind)
                    if got != path or port != "http":
                        b.error(w, f"container {name}: {kind} must be GET {path} on port http, is {got} on {port}")


def check_disruption_budgets(b: Bundle, pods: list[Pod]) -> None:
    pdbs = b.objects("PodDisruptionBudget")
    for w in {id(p.owner): p.owner for p in pods}.values():
        own = [p for p in pods if p.owner is w]
        if len(own) < 2:
            continue
        if not any(all(selector_matches(pdb.get("spec", {}).get("selector"), p.labels) for p in own) for pdb in pdbs):
            b.error(w, "has replicas but no PodDisruptionBudget covers its pods")


def check_images(b: Bundle, pods: list[Pod]) -> None:
    images = {c.get("image") for p in pods for c in p.containers() if is_skein(c)}
    if len(images) > 1:
        b.error(None, f"Skein containers run different images: {sorted(images)}")
    for img in images:
        tag = str(img).rsplit("/", 1)[-1]
        if ":" not in tag or tag.endswith(":latest"):
            b.error(None, f"Skein image {img} has no pinned tag")


def run_all(b: Bundle, pods: list[Pod]) -> None:
    check_pod_policy(b, pods)
    check_disruption_budgets(b, pods)
    check_images(b, pods)
