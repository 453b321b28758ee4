"""Skein containers: their effective config (the ConfigMap file plus the
per-pod flags, expanded for each pod), and `skein config check` on it."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass

import yaml

from .bundle import Bundle, Pod
from .podenv import container_args
from .refs import resolve_file

SKEIN_IMAGE_REPO_SUFFIX = "/skein"


@dataclass
class SkeinNode:
    bundle: Bundle
    pod: Pod
    container: dict
    config_path: str
    config_text: str
    config: dict  # effective: file + flags
    flags: list[str]  # the flag names given besides --config

    def get(self, dotted: str, default=None):
        cur = self.config
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur

    @property
    def roles(self) -> list[str]:
        r = self.config.get("roles")
        return [str(x) for x in r] if isinstance(r, list) else []


def is_skein(container: dict) -> bool:
    image = str(container.get("image", ""))
    repo = image.rsplit("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return repo.endswith(SKEIN_IMAGE_REPO_SUFFIX)


def _set_dotted(cfg: dict, path: list[str], value: str) -> None:
    cur = cfg
    for part in path[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[path[-1]] = value


def build_nodes(b: Bundle, pods: list[Pod], external) -> list[SkeinNode]:
    nodes = []
    for pod in pods:
        for c in pod.containers():
            if not is_skein(c):
                continue
            node = _build_node(b, pod, c, external)
            if node is not None:
                nodes.append(node)
    return nodes


def _build_node(b: Bundle, pod: Pod, c: dict, external) -> SkeinNode | None:
    where = f"pod {pod.name} container {c.get('name')}"
    args = container_args(b, pod, c)
    if not args or args[0] != "node":
        b.error(pod.owner, f"{where}: args must start with the subcommand `node`, got {args[:1]}")
        return None
    config_path = None
    overrides: dict[str, str] = {}
    rest = args[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if not a.startswith("--"):
            b.error(pod.owner, f"{where}: unexpected argument {a!r}")
            i += 1
            continue
        name, eq, value = a[2:].partition("=")
        if not eq:
            if i + 1 >= len(rest):
                b.error(pod.owner, f"{where}: flag --{name} has no value")
                break
            value = rest[i + 1]
            i += 1
        i += 1
        if name == "config":
            config_path = value
            continue
        if name in overrides:
            b.error(pod.owner, f"{where}: flag --{name} given twice")
        overrides[name] = value
    if config_path is None:
        b.error(pod.owner, f"{where}: no --config file")
        return None
    mount, vol, key = resolve_file(b, pod, c, config_path, external)
    if vol is None or "configMap" not in vol:
        b.error(pod.owner, f"{where}: --config {config_path} is not in a mounted ConfigMap")
        return None
    cm = b.get("ConfigMap", vol["configMap"].get("name"), pod.namespace)
    text = (cm or {}).get("data", {}).get(key) if cm else None
    if text is None:
        b.error(pod.owner, f"{where}: --config {config_path}: ConfigMap {vol['configMap'].get('name')} has no key {key!r}")
        return None
    try:
        cfg = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        b.error(cm, f"key {key}: not YAML: {e}")
        return None
    if not isinstance(cfg, dict):
        b.error(cm, f"key {key}: not a YAML mapping")
        return None
    for name, value in overrides.items():
        # --a.b-c sets a.b_c (every config key is also a flag).
        _set_dotted(cfg, [seg.replace("-", "_") for seg in name.split(".")], value)
    return SkeinNode(b, pod, c, config_path, text, cfg, list(overrides))


class ConfigChecker:
    """Runs the real loader: `skein config check FILE` must exit 0."""

    def __init__(self, skein_bin: str):
        self.skein_bin = skein_bin
        self.cache: dict[str, tuple[int, str]] = {}
        self._probe: str | None = None
        self._flags: set[str] | None = None

    def probe(self) -> str:
        """'' if the binary rejects a config with an unknown key (so that an
        exit 0 means something), else why its answers cannot be trusted."""
        if self._probe is None:
            code, out = self.check("roles: [query]\nno_such_key_skein_probe: 1\n")
            if code == 0:
                self._probe = (f"`{self.skein_bin} config check` accepted a config with an unknown key: "
                               "not the real loader (stale or placeholder binary?)")
            elif code == 127:
                self._probe = out
            else:
                self._probe = ""
        return self._probe

    def node_flags(self) -> set[str] | None:
        """The flags `skein node --help` lists, or None if it lists none."""
        if self._flags is None:
            try:
                p = subprocess.run([self.skein_bin, "node", "--help"], capture_output=True, text=True, timeout=30)
                self._flags = set(re.findall(r"--([a-z0-9][a-z0-9.-]*)", p.stdout))
            except (OSError, subprocess.TimeoutExpired):
                self._flags = set()
        return self._flags or None

    def check(self, text: str) -> tuple[int, str]:
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in self.cache:
            return self.cache[digest]
        if not (os.path.isfile(self.skein_bin) and os.access(self.skein_bin, os.X_OK)):
            result = (127, f"skein binary {self.skein_bin} not found: build it (cargo build -p skein-node "
                           "--bin skein) or set SKEIN_BIN")
        else:
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write(text)
                path = f.name
            try:
                p = subprocess.run([self.skein_bin, "config", "check", path], capture_output=True, text=True,
                                   timeout=30)
                out = (p.stderr.strip() or p.stdout.strip()).replace(path, "<file>")
                result = (p.returncode, out)
            except subprocess.TimeoutExpired:
                result = (124, "timed out after 30 s")
            finally:
                os.unlink(path)
        self.cache[digest] = result
        return result


def check_configs(nodes: list[SkeinNode], checker: ConfigChecker) -> None:
    """The effective per-pod config (the ConfigMap file with the pod's flags
    folded in, which is what `skein node` runs with) must load. The flags only
    set values, so an unknown or misspelt key in the file fails here too."""
    if nodes:
        why = checker.probe()
        if why:
            nodes[0].bundle.error(None, f"config check: {why}")
            return
    flags = checker.node_flags()
    if nodes and flags is None:
        nodes[0].bundle.error(None, f"`{checker.skein_bin} node --help` lists no flags: cannot check the pods' flags")
    for n in nodes:
        for f in n.flags:
            if flags is not None and f not in flags:
                n.bundle.error(n.pod.owner, f"container {n.container.get('name')}: `skein node` has no flag --{f}")
        effective = yaml.safe_dump(n.config, sort_keys=False)
        code, out = checker.check(effective)
        if code != 0:
            first = out.splitlines()[0] if out else ""
            n.bundle.error(n.pod.owner, f"config {n.config_path} of pod {n.pod.name} (file + flags): "
                                        f"`skein config check` exited {code}: {first}")
