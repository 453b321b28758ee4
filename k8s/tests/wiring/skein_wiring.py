"""How each Skein node's effective config fits the manifests around it:
listen ports vs container ports, files vs mounts and Secret keys, TLS server
name vs certificate vs SNI ingress route, gossip seeds vs Services/ingresses,
cluster and federation ids."""

from __future__ import annotations

from .bundle import Bundle
from .podenv import split_host_port
from .ports import ingress_route, port_matches, service_pods, service_target
from .refs import file_source_keys, resolve_file
from .skein_nodes import SkeinNode

FILE_KEYS = ("tls.cert_file", "tls.key_file", "tls.ca_file", "gossip.keyring_file",
             "sidecar.objstore_config_file", "store.objstore_config_file")
WRITABLE_DIRS = ("store.data_dir", "sidecar.tsdb_path")


def _err(n: SkeinNode, msg: str) -> None:
    n.bundle.error(n.pod.owner, f"pod {n.pod.name}: {msg}")


def _own_port(n: SkeinNode, name: str, proto: str = "TCP") -> int | None:
    for p in n.container.get("ports") or []:
        if port_matches(p, name, proto):
            return p.get("containerPort")
    return None


def check_ports(n: SkeinNode) -> None:
    pairs = (("http_address", "http", "TCP"), ("grpc_address", "grpc", "TCP"),
             ("advertise_address", "grpc", "TCP"), ("gossip.listen_address", "gossip", "UDP"),
             ("gossip.advertise_address", "gossip", "UDP"))
    for key, port_name, proto in pairs:
        value = n.get(key)
        if value is None:
            if key in ("http_address", "grpc_address"):
                _err(n, f"{key} is not set (the default listens on 127.0.0.1 only)")
            continue
        host, port = split_host_port(value)
        want = _own_port(n, port_name, proto)
        if want is None:
            _err(n, f"{key} is set but the container has no {proto} port named {port_name!r}")
        elif port != want:
            _err(n, f"{key} {value} does not match containerPort {port_name}={want}")
        if key.endswith("listen_address") or key in ("http_address", "grpc_address"):
            if host in ("127.0.0.1", "localhost", "::1"):
                _err(n, f"{key} {value} listens on loopback: probes and peers cannot reach it")
        elif host != n.pod.ip:
            _err(n, f"{key} {value} is not the pod IP (use $(POD_IP) from status.podIP)")


def check_files(n: SkeinNode) -> None:
    b, pod = n.bundle, n.pod
    external = b.external
    for key in FILE_KEYS:
        path = n.get(key)
        if path is None:
            continue
        mount, vol, file_key = resolve_file(b, pod, n.container, str(path), external)
        if mount is None or vol is None:
            _err(n, f"{key} {path} is on no volume mounted in container {n.container.get('name')}")
            continue
        kind, name, keys = file_source_keys(b, pod, vol, external)
        if not kind:
            _err(n, f"{key} {path} is on volume {vol.get('name')}, which is not a ConfigMap or Secret")
        elif keys is not None and file_key not in keys:
            _err(n, f"{key} {path}: {kind} {name} provides no key {file_key!r}")
    for key in WRITABLE_DIRS:
        path = n.get(key)
        if path is None:
            continue
        mount, vol, _ = resolve_file(b, pod, n.container, str(path), external)
        if mount is None or vol is None:
            _err(n, f"{key} {path} is on no mounted volume (the root filesystem is read-only)")
        elif mount.get("readOnly"):
            _err(n, f"{key} {path} is on a read-only mount")


def _certificate_for(n: SkeinNode) -> dict | None:
    cert_file = n.get("tls.cert_file")
    if cert_file is None:
        return None
    external = n.bundle.external
    _, vol, _ = resolve_file(n.bundle, n.pod, n.container, str(cert_file), external)
    secret = (vol or {}).get("secret", {}).get("secretName")
    for cert in n.bundle.objects("Certificate"):
        if cert.get("spec", {}).get("secretName") == secret:
            return cert
    return None


def check_tls(n: SkeinNode) -> None:
    if n.get("dev") is True:
        _err(n, "dev: true (plaintext gRPC and gossip) in a cluster manifest")
        return
    if n.get("tls") is None:
        _err(n, "no tls section: gRPC needs mutual TLS outside --dev")
        return
    name = n.get("tls.server_name")
    if name is None:
        _err(n, "tls.server_name is not set (peers verify it and the ingress routes by it)")
        return
    cert = _certificate_for(n)
    if cert is None:
        _err(n, f"tls.cert_file {n.get('tls.cert_file')} is not from a cert-manager Certificate's Secret")
        return
    spec = cert.get("spec", {})
    if name not in (spec.get("dnsNames") or []):
        _err(n, f"tls.server_name {name} is not a dnsName of Certificate {cert['metadata'].get('name')}")
    usages = set(spec.get("usages") or [])
    for u in ("server auth", "client auth"):
        if u not in usages:
            _err(n, f"Certificate {cert['metadata'].get('name')} lacks usage {u!r} (a node serves and dials)")


def _route_pods(bundles: list[Bundle], host: str):
    route = ingress_route(bundles, host)
    if route is None:
        return None
    b, ing, backend = route
    svc = backend["service"]
    return b, ing, svc, backend["port"], service_pods(svc, b_pods(b))


def b_pods(b: Bundle):
    return b.all_pods()


def check_external(n: SkeinNode, bundles: list[Bundle]) -> None:
    ext = n.get("external_address")
    if ext is None:
        return
    host, port = split_host_port(ext)
    if host != n.get("tls.server_name"):
        _err(n, f"external_address host {host} differs from tls.server_name {n.get('tls.server_name')} "
                "(the ingress routes by SNI, which is the server name)")
    route = _route_pods(bundles, host)
    if route is None:
        _err(n, f"external_address {ext}: no Ingress rule has host {host}")
        return
    b, ing, svc, port_ref, pods = route
    ann = (ing.get("metadata", {}).get("annotations") or {})
    if ann.get("nginx.ingress.kubernetes.io/ssl-passthrough") != "true":
        _err(n, f"Ingress {ing['metadata'].get('name')} does not pass TLS through: mTLS would end at the ingress")
    if port != 443:
        _err(n, f"external_address {ext}: the ingress listens on 443")
    names = [p.name for p in pods]
    if names != [n.pod.name]:
        _err(n, f"external_address {ext}: Service {svc['metadata'].get('name')} selects {names}, not exactly this pod")
        return
    if not svc.get("spec", {}).get("publishNotReadyAddresses"):
        _err(n, f"external_address {ext}: Service {svc['metadata'].get('name')} lacks publishNotReadyAddresses "
                "(WAN members join through it before they are ready)")
    target, proto = service_target(svc, port_ref)
    _, grpc = split_host_port(n.get("grpc_address", ""))
    if not any(port_matches(p, target, proto or "TCP") and p.get("containerPort") == grpc
               for p in n.container.get("ports") or []):
        _err(n, f"external_address {ext}: Service {svc['metadata'].get('name')} targets {target!r}, "
                f"not the gRPC port {grpc}")


def check_seeds(n: SkeinNode, bundles: list[Bundle], wan_hosts: dict[str, SkeinNode]) -> None:
    for seed in n.get("gossip.seeds") or []:
        host, port = split_host_port(seed)
        parts = host.split(".")
        if len(parts) < 3 or parts[2] != "svc":
            _err(n, f"gossip seed {seed} is not a Service DNS name <svc>.<ns>.svc.<domain>")
            continue
        svc = n.bundle.get("Service", parts[0], parts[1])
        if svc is None:
            _err(n, f"gossip seed {seed}: no Service {parts[0]} in namespace {parts[1]}")
            continue
        spec = svc.get("spec", {})
        sp = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if sp is None or (sp.get("protocol") or "TCP") != "UDP":
            _err(n, f"gossip seed {seed}: Service {parts[0]} has no UDP port {port}")
            continue
        if n.pod not in service_pods(svc, b_pods(n.bundle)):
            _err(n, f"gossip seed {seed}: Service {parts[0]} does not select this pod")
        elif not port_matches_gossip(n, sp):
            _err(n, f"gossip seed {seed}: targetPort {sp.get('targetPort')!r} is not this pod's gossip port")
        if spec.get("clusterIP") != "None" or not spec.get("publishNotReadyAddresses"):
            _err(n, f"gossip seed {seed}: Service {parts[0]} must be headless with publishNotReadyAddresses "
                    "(nodes join before they are ready)")
    for seed in n.get("gossip.wan_seeds") or []:
        host, port = split_host_port(seed)
        peer = wan_hosts.get(host)
        if peer is None:
            _err(n, f"WAN seed {seed} is no WAN member's external address in these manifests")
        elif split_host_port(peer.get("external_address"))[1] != port:
            _err(n, f"WAN seed {seed}: the member there announces {peer.get('external_address')}")
    if n.get("gossip.wan_seeds") and n.get("external_address") is None:
        _err(n, "gossip.wan_seeds set without external_address: only reachable nodes join the WAN pool")


def port_matches_gossip(n: SkeinNode, sp: dict) -> bool:
    target = sp.get("targetPort", sp.get("port"))
    _, gossip = split_host_port(n.get("gossip.listen_address", ""))
    return any(port_matches(p, target, "UDP") and p.get("containerPort") == gossip
               for p in n.container.get("ports") or [])


def check_ids(nodes: list[SkeinNode], bundles: list[Bundle]) -> None:
    federations = {str(n.get("federation")) for n in nodes}
    if len(federations) > 1:
        nodes[0].bundle.error(None, f"nodes disagree on the federation id: {sorted(federations)}")
    owner_of_cluster: dict[str, str] = {}
    for b in bundles:
        clusters = {str(n.get("cluster")) for n in nodes if n.bundle is b}
        if len(clusters) > 1:
            b.error(None, f"nodes of one cluster disagree on the cluster id: {sorted(clusters)}")
        for c in clusters:
            if c == "None":
                b.error(None, "a node has no cluster id")
            elif c in owner_of_cluster and owner_of_cluster[c] != b.name:
                b.error(None, f"cluster id {c!r} is also used by {owner_of_cluster[c]}")
            owner_of_cluster.setdefault(c, b.name)


def wan_members(nodes: list[SkeinNode]) -> dict[str, SkeinNode]:
    out = {}
    for n in nodes:
        ext = n.get("external_address")
        if ext is not None:
            out[split_host_port(ext)[0]] = n
    return out


def run_all(nodes: list[SkeinNode], bundles: list[Bundle]) -> None:
    wan = wan_members(nodes)
    for n in nodes:
        check_ports(n)
        check_files(n)
        check_tls(n)
        check_external(n, bundles)
        check_seeds(n, bundles, wan)
    check_ids(nodes, bundles)
