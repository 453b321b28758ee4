"""Container environment and argument expansion as the kubelet does it:
`$(VAR)` from earlier env entries, `$$` for a literal `$`."""

from __future__ import annotations

import re

from .bundle import Bundle, Pod
from .refs import configmap_value

_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))

    return _VAR.sub(sub, text)


def container_env(b: Bundle, pod: Pod, container: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        name = e.get("name")
        if "value" in e:
            env[name] = expand(str(e["value"]), env)
            continue
        vf = e.get("valueFrom") or {}
        if "fieldRef" in vf:
            path = vf["fieldRef"].get("fieldPath")
            env[name] = {
                "metadata.name": pod.name,
                "metadata.namespace": pod.namespace,
                "status.podIP": pod.ip,
                "status.hostIP": "192.0.2.1",
                "spec.nodeName": "node-a",
            }.get(path, f"<{path}>")
        elif "configMapKeyRef" in vf:
            ref = vf["configMapKeyRef"]
            value = configmap_value(b, ref.get("name"), pod.namespace, ref.get("key"))
            env[name] = value if value is not None else f"<missing {ref.get('name')}/{ref.get('key')}>"
        elif "secretKeyRef" in vf:
            env[name] = f"<secret {vf['secretKeyRef'].get('name')}/{vf['secretKeyRef'].get('key')}>"
        else:
            env[name] = "<unknown>"
    return env


def container_args(b: Bundle, pod: Pod, container: dict) -> list[str]:
    env = container_env(b, pod, container)
    return [expand(str(a), env) for a in (container.get("command") or []) + (container.get("args") or [])]


def flag_value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a[len(flag) + 1:]
        if a == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def split_host_port(addr: str) -> tuple[str, int | None]:
    host, sep, port = str(addr).rpartition(":")
    if not sep:
        return str(addr), None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return host, None
