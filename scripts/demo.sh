#!/usr/bin/env bash
# A local two-cluster federation on loopback: two Prometheus servers
# (cluster="eu1", cluster="us1"), a Skein sidecar next to each, and one Skein
# querier over both. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

SKEIN=${SKEIN_BIN:-$PWD/target/release/skein}
PROMETHEUS=${PROMETHEUS:-prometheus}
BASE=${DEMO_DIR:-$PWD/.demo}
QUERY_HTTP=${QUERY_HTTP:-127.0.0.1:10902}

[ -x "$SKEIN" ] || { echo "missing $SKEIN: run 'make release' first" >&2; exit 1; }

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping demo processes..."
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo "stopped; logs and data are in $BASE"
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }
for a in 127.0.0.1:9091 127.0.0.1:9092 127.0.0.1:10911 127.0.0.1:10912 127.0.0.1:10921 127.0.0.1:10922 "$QUERY_HTTP"; do
    port_free "$a" || { echo "address $a is in use; stop what listens there first" >&2; exit 1; }
done

rm -rf "$BASE"; mkdir -p "$BASE"

start_cluster() { # name prom_port sidecar_grpc sidecar_http
    local name=$1 pport=$2 grpc=$3 http=$4 dir="$BASE/$1"
    mkdir -p "$dir/data"
    cat > "$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
  external_labels:
    cluster: $name
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:$pport"]}]
  - job_name: skein
    static_configs: [{targets: ["127.0.0.1:$http", "$QUERY_HTTP"]}]
YAML
    "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$pport" >"$dir/prometheus.log" 2>&1 &
    pids+=($!)
    "$SKEIN" node --dev --roles sidecar --grpc-address "127.0.0.1:$grpc" --http-address "127.0.0.1:$http" \
        --sidecar.prometheus-url "http://127.0.0.1:$pport" --sidecar.refresh-interval 5s \
        >"$dir/sidecar.log" 2>&1 &
    pids+=($!)
}

start_cluster eu1 9091 10911 10912
start_cluster us1 9092 10921 10922
"$SKEIN" node --dev --roles query --http-address "$QUERY_HTTP" --grpc-address 127.0.0.1:10901 \
    --query.store 127.0.0.1:10911 --query.store 127.0.0.1:10921 --query.info-interval 2s \
    >"$BASE/query.log" 2>&1 &
pids+=($!)

wait_ready() { # url name
    for _ in $(seq 1 60); do
        curl -fsS "$1" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "$2 did not become ready; see the logs in $BASE" >&2
    exit 1
}
wait_ready http://127.0.0.1:9091/-/ready "Prometheus eu1"
wait_ready http://127.0.0.1:9092/-/ready "Prometheus us1"
wait_ready http://127.0.0.1:10912/-/ready "sidecar eu1"
wait_ready http://127.0.0.1:10922/-/ready "sidecar us1"
wait_ready "http://$QUERY_HTTP/-/ready" "querier"

cat <<TXT

Skein demo is up: two clusters (eu1, us1), one querier.

  Querier (Prometheus HTTP API): http://$QUERY_HTTP
  Prometheus eu1: http://127.0.0.1:9091   Prometheus us1: http://127.0.0.1:9092
  Stores seen by the querier:    curl -s http://$QUERY_HTTP/api/v1/stores

Try (give Prometheus ~10 s to scrape first):
  curl -s 'http://$QUERY_HTTP/api/v1/query?query=up'
  promtool query instant http://$QUERY_HTTP 'sum by (cluster) (up)'

Logs: $BASE/*.log, $BASE/*/*.log. Ctrl-C stops everything.
TXT

wait -n "${pids[@]}" || true
echo "a demo process exited; see the logs in $BASE" >&2
