"""References between objects: ConfigMaps, Secrets (in the bundle, made by a
cert-manager Certificate, or external and allowlisted), volumes, service
accounts, issuers."""

from __future__ import annotations

from .bundle import Bundle, Pod

CERT_SECRET_KEYS = {"tls.crt", "tls.key", "ca.crt"}


def load_allowlist(path: str) -> dict[str, set[str]]:
    """Lines `name key...`; `#` starts a comment."""
    out: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if words:
                out[words[0]] = set(words[1:])
    return out


def configmap_keys(b: Bundle, name: str, ns: str) -> set[str] | None:
    cm = b.get("ConfigMap", name, ns)
    if cm is None:
        return None
    return set((cm.get("data") or {}).keys()) | set((cm.get("binaryData") or {}).keys())


def secret_keys(b: Bundle, name: str, ns: str, external: dict[str, set[str]]) -> set[str] | None:
    s = b.get("Secret", name, ns)
    if s is not None:
        return set((s.get("data") or {}).keys()) | set((s.get("stringData") or {}).keys())
    for cert in b.objects("Certificate"):
        meta = cert.get("metadata", {})
        if meta.get("namespace", ns) == ns and cert.get("spec", {}).get("secretName") == name:
            return set(CERT_SECRET_KEYS)
    if name in external:
        return external[name]
    return None


def configmap_value(b: Bundle, name: str, ns: str, key: str) -> str | None:
    cm = b.get("ConfigMap", name, ns)
    if cm is None:
        return None
    return (cm.get("data") or {}).get(key)


def _check_source(b, obj, what, kind, name, keys_wanted, ns, external, optional):
    keys = configmap_keys(b, name, ns) if kind == "ConfigMap" else secret_keys(b, name, ns, external)
    if keys is None:
        if not optional:
            b.error(obj, f"{what}: {kind} {name!r} does not exist (nor is it an allowlisted external Secret)")
        return
    for k in keys_wanted:
        if k not in keys:
            b.error(obj, f"{what}: {kind} {name!r} has no key {k!r}")


def check_pod_refs(b: Bundle, pods: list[Pod], external: dict[str, set[str]]) -> None:
    seen = set()
    for pod in pods:
        if id(pod.owner) in seen:
            continue
        seen.add(id(pod.owner))
        obj, ns, spec = pod.owner, pod.namespace, pod.spec
        sa = spec.get("serviceAccountName")
        if sa and sa != "default" and b.get("ServiceAccount", sa, ns) is None:
            b.error(obj, f"serviceAccountName {sa!r} does not exist")
        for v in spec.get("volumes") or []:
            _check_volume(b, obj, ns, v, external)
        volume_names = {v.get("name") for v in spec.get("volumes") or []}
        claims = {t.get("metadata", {}).get("name") for t in obj.get("spec", {}).get("volumeClaimTemplates") or []}
        for c in pod.containers():
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in volume_names | claims:
                    b.error(obj, f"container {c.get('name')}: volumeMount {m.get('name')!r} names no volume")
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for kind, field in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    ref = vf.get(field)
                    if ref:
                        _check_source(b, obj, f"container {c.get('name')} env {e.get('name')}", kind,
                                      ref.get("name"), [ref.get("key")], ns, external, ref.get("optional", False))
            for ef in c.get("envFrom") or []:
                for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    ref = ef.get(field)
                    if ref:
                        _check_source(b, obj, f"container {c.get('name')} envFrom", kind, ref.get("name"), [],
                                      ns, external, ref.get("optional", False))


def _check_volume(b, obj, ns, v, external):
    what = f"volume {v.get('name')}"
    sources = []
    if "configMap" in v:
        sources.append(("ConfigMap", v["configMap"], v["configMap"].get("name")))
    if "secret" in v:
        sources.append(("Secret", v["secret"], v["secret"].get("secretName")))
    for src in (v.get("projected") or {}).get("sources") or []:
        if "configMap" in src:
            sources.append(("ConfigMap", src["configMap"], src["configMap"].get("name")))
        if "secret" in src:
            sources.append(("Secret", src["secret"], src["secret"].get("name")))
    for kind, src, name in sources:
        keys = [i.get("key") for i in src.get("items") or []]
        _check_source(b, obj, what, kind, name, keys, ns, external, src.get("optional", False))


def check_issuers(b: Bundle, external: dict[str, set[str]]) -> None:
    for cert in b.objects("Certificate"):
        ns = cert.get("metadata", {}).get("namespace")
        ref = cert.get("spec", {}).get("issuerRef") or {}
        kind = ref.get("kind", "Issuer")
        found = b.get(kind, ref.get("name"), ns if kind == "Issuer" else None)
        if found is None:
            b.error(cert, f"issuerRef {kind}/{ref.get('name')} does not exist")
    for iss in b.objects("Issuer") + b.objects("ClusterIssuer"):
        ns = iss.get("metadata", {}).get("namespace")
        ca = (iss.get("spec") or {}).get("ca")
        if ca:
            _check_source(b, iss, "spec.ca", "Secret", ca.get("secretName"), ["tls.crt", "tls.key"], ns,
                          external, False)


def resolve_file(b: Bundle, pod: Pod, container: dict, path: str, external: dict[str, set[str]]):
    """Which volume serves `path` in `container`: (mount, volume-or-claim, key or None).
    key is the file name inside a ConfigMap/Secret volume (items applied)."""
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m.get("mountPath", "").rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best.get("mountPath", "").rstrip("/")):
                best = m
    if best is None:
        return None, None, None
    vol = pod.volume(best.get("name")) or pod.claim_template(best.get("name"))
    rel = path[len(best.get("mountPath", "").rstrip("/")) + 1:]
    if best.get("subPath"):
        rel = best["subPath"] + ("/" + rel if rel else "")
    key = None
    if vol is not None:
        src = vol.get("configMap") or vol.get("secret")
        if src is not None:
            key = rel
            for item in src.get("items") or []:
                if item.get("path") == rel:
                    key = item.get("key")
                    break
            else:
                if src.get("items"):
                    key = f"<not projected: {rel}>"
    return best, vol, key


def file_source_keys(b: Bundle, pod: Pod, vol: dict, external: dict[str, set[str]]) -> tuple[str, str, set[str] | None]:
    if "configMap" in vol:
        name = vol["configMap"].get("name")
        return "ConfigMap", name, configmap_keys(b, name, pod.namespace)
    if "secret" in vol:
        name = vol["secret"].get("secretName")
        return "Secret", name, secret_keys(b, name, pod.namespace, external)
    return "", "", None


def run_all(b: Bundle, pods: list[Pod], external: dict[str, set[str]]) -> None:
    check_pod_refs(b, pods, external)
    check_issuers(b, external)
