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
    stopped=1
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }
for a in 127.0.0.1:9091 127.0.0.1:9092 127.0.0.1:10911 127.0.0.1:10912 127.0.0.1:10921 127.0.0.1:10922 127.0.0.1:10901 "$QUERY_HTTP"; do
    port_free "$a" || { echo "address $a is in use; stop what listens there first" >&2; exit 1; }
done

rm -rf "$BASE"; mkdir -p "$BASE"

# Mutual TLS on every gRPC link and sealed gossip, as in production: a
# development CA with one certificate per node, and a gossip keyring.
# Each certificate names its node's identity (spiffe://skein/cluster/demo/node/NAME),
# which the querier requires of stores it finds by gossip.
"$SKEIN" tools certs --out "$BASE/certs" --cluster demo --node sidecar-eu1=127.0.0.1,localhost \
    --node sidecar-us1=127.0.0.1,localhost --node query=127.0.0.1,localhost >/dev/null
"$SKEIN" tools gossip-key > "$BASE/gossip.keyring"
tls() { # node name
    echo --tls.cert-file "$BASE/certs/$1.crt" --tls.key-file "$BASE/certs/$1.key" \
        --tls.ca-file "$BASE/certs/ca.crt" --tls.server-name 127.0.0.1
}
GOSSIP_SEED=127.0.0.1:7946
gossip() { # listen port
    echo --cluster demo --gossip.listen-address "127.0.0.1:$1" --gossip.seed "$GOSSIP_SEED" \
        --gossip.keyring-file "$BASE/gossip.keyring" --gossip.interval 500ms
}

start_cluster() { # name prom_port sidecar_grpc sidecar_http gossip_port
    local name=$1 pport=$2 grpc=$3 http=$4 gport=$5 dir="$BASE/$1"
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
    # shellcheck disable=SC2046
    "$SKEIN" node --roles sidecar --grpc-address "127.0.0.1:$grpc" --http-address "127.0.0.1:$http" \
        --sidecar.prometheus-url "http://127.0.0.1:$pport" --sidecar.refresh-interval 5s \
        $(tls "sidecar-$name") $(gossip "$gport") >"$dir/sidecar.log" 2>&1 &
    pids+=($!)
}

# The querier is the gossip seed; it finds the sidecars (and their label
# sets) by gossip and checks each with Info over mutual TLS.
# shellcheck disable=SC2046
"$SKEIN" node --roles query --http-address "$QUERY_HTTP" --grpc-address 127.0.0.1:10901 \
    --query.info-interval 2s $(tls query) $(gossip 7946) >"$BASE/query.log" 2>&1 &
pids+=($!)
start_cluster eu1 9091 10911 10912 7947
start_cluster us1 9092 10921 10922 7948

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
for _ in $(seq 1 60); do
    n=$({ curl -fsS "http://$QUERY_HTTP/api/v1/stores" 2>/dev/null || true; } | { grep -o '"lastError":null' || true; } | wc -l)
    [ "$n" -ge 2 ] && break
    sleep 0.5
done
[ "${n:-0}" -ge 2 ] || { echo "the querier did not find both sidecars; see $BASE/query.log" >&2; exit 1; }

cat <<TXT

Skein demo is up: two clusters (eu1, us1), one querier that found both
sidecars by sealed gossip and queries them over mutual TLS.

  Querier (Prometheus HTTP API): http://$QUERY_HTTP
  Prometheus eu1: http://127.0.0.1:9091   Prometheus us1: http://127.0.0.1:9092
  Stores seen by the querier:    curl -s http://$QUERY_HTTP/api/v1/stores
  Gossip view:                   $SKEIN members --url http://$QUERY_HTTP

Try (give Prometheus ~10 s to scrape first):
  curl -s 'http://$QUERY_HTTP/api/v1/query?query=up'
  promtool query instant http://$QUERY_HTTP 'sum by (cluster) (up)'

Logs: $BASE/*.log, $BASE/*/*.log. Ctrl-C stops everything.
TXT

wait -n "${pids[@]}" || true
# Reached after Ctrl-C too (the trap has then stopped everything already).
[ -n "${stopped:-}" ] || echo "a demo process exited; see the logs in $BASE" >&2
