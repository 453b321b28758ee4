"""Ports by name and number: containers, probes, Services, NetworkPolicies,
Ingress backends; and that every selector selects pods that exist."""

from __future__ import annotations

from .bundle import Bundle, Pod, plain_selector_matches, selector_matches


def port_matches(port: dict, ref, protocol: str = "TCP") -> bool:
    if (port.get("protocol") or "TCP") != protocol:
        return False
    if isinstance(ref, int):
        return port.get("containerPort") == ref
    return port.get("name") == ref


def pod_ports(pod: Pod) -> list[tuple[dict, dict]]:
    return [(c, p) for c in pod.containers() for p in c.get("ports") or []]


def pod_has_port(pod: Pod, ref, protocol: str = "TCP") -> bool:
    return any(port_matches(p, ref, protocol) for _, p in pod_ports(pod))


def check_container_ports(b: Bundle, pods: list[Pod]) -> None:
    seen_owner = set()
    for pod in pods:
        key = id(pod.owner)
        if key in seen_owner:
            continue
        seen_owner.add(key)
        names: dict[str, str] = {}
        numbers: dict[tuple[int, str], str] = {}
        for c, p in pod_ports(pod):
            name = p.get("name")
            if name is not None:
                if name in names:
                    b.error(pod.owner, f"port name {name!r} used by containers {names[name]} and {c.get('name')}")
                names[name] = c.get("name")
                if len(name) > 15:
                    b.error(pod.owner, f"port name {name!r} is longer than 15 characters")
            num = (p.get("containerPort"), p.get("protocol") or "TCP")
            if num in numbers:
                b.error(pod.owner, f"containerPort {num[0]}/{num[1]} declared twice")
            numbers[num] = c.get("name")


def check_probes(b: Bundle, pods: list[Pod]) -> None:
    seen = set()
    for pod in pods:
        if id(pod.owner) in seen:
            continue
        seen.add(id(pod.owner))
        for c in pod.containers():
            own = c.get("ports") or []
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = c.get(kind)
                if not probe:
                    continue
                handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
                if handler is None:
                    continue
                ref = handler.get("port")
                if not any(port_matches(p, ref) for p in own):
                    b.error(pod.owner, f"container {c.get('name')}: {kind} port {ref!r} is not one of its ports")


def service_pods(svc: dict, pods: list[Pod]) -> list[Pod]:
    ns = svc.get("metadata", {}).get("namespace")
    return [p for p in pods if p.namespace == ns and plain_selector_matches(svc.get("spec", {}).get("selector"), p.labels)]


def check_services(b: Bundle, pods: list[Pod]) -> None:
    for svc in b.objects("Service"):
        spec = svc.get("spec", {})
        if spec.get("type") == "ExternalName":
            continue
        if not spec.get("selector"):
            b.error(svc, "has no selector")
            continue
        selected = service_pods(svc, pods)
        if not selected:
            b.error(svc, f"selector {spec.get('selector')} selects no pod")
            continue
        for sp in spec.get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            proto = sp.get("protocol") or "TCP"
            for pod in selected:
                if not pod_has_port(pod, target, proto):
                    b.error(svc, f"port {sp.get('name')}: targetPort {target!r}/{proto} is not a port of pod {pod.name}")


def check_statefulset_services(b: Bundle, pods: list[Pod]) -> None:
    for sts in b.objects("StatefulSet"):
        name = sts.get("spec", {}).get("serviceName")
        ns = sts.get("metadata", {}).get("namespace")
        svc = b.get("Service", name, ns) if name else None
        if svc is None:
            b.error(sts, f"serviceName {name!r} is not a Service of this bundle")
            continue
        if svc.get("spec", {}).get("clusterIP") != "None":
            b.error(sts, f"governing Service {name} is not headless")
        own = [p for p in pods if p.owner is sts]
        if own and not all(p in service_pods(svc, pods) for p in own):
            b.error(sts, f"governing Service {name} does not select all its pods")


def check_selectors(b: Bundle, pods: list[Pod]) -> None:
    for w in b.docs:
        sel = w.get("spec", {}).get("selector") if w.get("kind") in ("Deployment", "StatefulSet", "DaemonSet") else None
        if sel is not None:
            labels = w.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
            if not selector_matches(sel, labels):
                b.error(w, "selector does not match its own pod template labels")
    for pdb in b.objects("PodDisruptionBudget"):
        ns = pdb.get("metadata", {}).get("namespace")
        sel = pdb.get("spec", {}).get("selector")
        if not any(p.namespace == ns and selector_matches(sel, p.labels) for p in pods):
            b.error(pdb, "selector selects no pod")


def check_network_policies(b: Bundle, pods: list[Pod]) -> None:
    for np in b.objects("NetworkPolicy"):
        ns = np.get("metadata", {}).get("namespace")
        spec = np.get("spec", {})
        sel = spec.get("podSelector")
        in_ns = [p for p in pods if p.namespace == ns]
        selected = [p for p in in_ns if selector_matches(sel, p.labels)]
        empty = sel == {} or sel is None
        if not selected and not empty:
            b.error(np, f"podSelector {sel} selects no pod")
        for rule in spec.get("ingress") or []:
            for peer in rule.get("from") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not any(selector_matches(peer["podSelector"], p.labels) for p in in_ns):
                        b.error(np, f"from podSelector {peer['podSelector']} selects no pod of the namespace")
            for port in rule.get("ports") or []:
                ref = port.get("port")
                proto = port.get("protocol") or "TCP"
                if ref is None:
                    continue
                for pod in selected:
                    if not pod_has_port(pod, ref, proto):
                        b.error(np, f"port {ref!r}/{proto} is not a port of pod {pod.name}")


def check_ingresses(b: Bundle, pods: list[Pod]) -> None:
    for ing in b.objects("Ingress"):
        ns = ing.get("metadata", {}).get("namespace")
        for rule in ing.get("spec", {}).get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                backend = (path.get("backend") or {}).get("service") or {}
                svc = b.get("Service", backend.get("name"), ns)
                if svc is None:
                    b.error(ing, f"host {rule.get('host')}: backend Service {backend.get('name')!r} does not exist")
                    continue
                ref = backend.get("port", {})
                want = ref.get("name", ref.get("number"))
                ports = svc.get("spec", {}).get("ports") or []
                if not any(p.get("name") == want or p.get("port") == want for p in ports):
                    b.error(ing, f"host {rule.get('host')}: Service {backend.get('name')} has no port {want!r}")


def ingress_route(bundles: list[Bundle], host: str) -> tuple[Bundle, dict, dict] | None:
    """(bundle, Ingress, Service port dict plus Service) for the rule of `host`."""
    for b in bundles:
        for ing in b.objects("Ingress"):
            ns = ing.get("metadata", {}).get("namespace")
            for rule in ing.get("spec", {}).get("rules") or []:
                if rule.get("host") != host:
                    continue
                for path in (rule.get("http") or {}).get("paths") or []:
                    backend = (path.get("backend") or {}).get("service") or {}
                    svc = b.get("Service", backend.get("name"), ns)
                    if svc is not None:
                        return b, ing, {"service": svc, "port": backend.get("port", {})}
    return None


def service_target(svc: dict, ref: dict):
    want = ref.get("name", ref.get("number"))
    for p in svc.get("spec", {}).get("ports") or []:
        if p.get("name") == want or p.get("port") == want:
            return p.get("targetPort", p.get("port")), p.get("protocol") or "TCP"
    return None, None


def run_all(b: Bundle, pods: list[Pod]) -> None:
    check_container_ports(b, pods)
    check_probes(b, pods)
    check_services(b, pods)
    check_statefulset_services(b, pods)
    check_selectors(b, pods)
    check_network_policies(b, pods)
    check_ingresses(b, pods)
