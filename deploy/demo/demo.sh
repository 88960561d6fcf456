#!/usr/bin/env bash
# demo.sh - the whole path on one machine: the local Kafka (already up, from make), the
# ingress, a simulated busy contact centre, the loader into DuckDB, and the HTML report.
#   demo.sh             uses KAFKA_BOOTSTRAP_SERVERS (make demo sets it) and these knobs:
#   DEMO_SECONDS=120    how long simulate sends webhooks (real seconds)
#   DEMO_RATE=40        webhooks per second
#   DEMO_TIME_SCALE=100 simulated seconds per real second (120 s at 100x: ~3 h of a day)
#   DEMO_PORT=18080     the ingress's port
#   DEMO_LIVE_PORT=18090 the wallboard's port (plug-pipeline live), open while simulate runs
#   DEMO_DIR=.demo      where the warehouse, the report and the logs go
# Each run publishes under topics of its own (prefix demo<epoch>), so the report shows
# this run only. Prints the wallboard's URL while the centre runs; ends by printing the
# report's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BIN=.venv/bin
DIR=${DEMO_DIR:-.demo}
PORT=${DEMO_PORT:-18080}
LIVE_PORT=${DEMO_LIVE_PORT:-18090}
SECONDS_TO_RUN=${DEMO_SECONDS:-120}
RATE=${DEMO_RATE:-40}
SCALE=${DEMO_TIME_SCALE:-100}
TENANT=demo
TOKEN=demo-token
VIEWER_TOKEN=demo-viewer-token
PREFIX="demo$(date +%s)"

mkdir -p "$DIR"
rm -rf "$DIR/plug.duckdb" "$DIR/plug.duckdb.wal" "$DIR/spool"
export PLUG_PIPELINE_TOKENS="$TENANT=$TOKEN"
# The loader pseudonymises customers' phones by default (docs/privacy.md): a key for the
# demo's one tenant, as throwaway as its token.
export PLUG_PIPELINE_PRIVACY_KEYS="$TENANT=demo-pseudonym-key"
export PLUG_PIPELINE_TOPIC_PREFIX=$PREFIX
export PLUG_PIPELINE_PORT=$PORT
export PLUG_PIPELINE_HOST=127.0.0.1
export PLUG_PIPELINE_SPOOL_DIR="$DIR/spool"
export PLUG_PIPELINE_VIEWER_TOKENS="$TENANT=$VIEWER_TOKEN"
export PLUG_PIPELINE_LIVE_PORT=$LIVE_PORT

echo "demo: ingress on 127.0.0.1:$PORT, topics $PREFIX.*, log in $DIR/ingress.log" >&2
"$BIN/plug-pipeline" serve >"$DIR/ingress.log" 2>&1 &
INGRESS=$!
LIVE=
stop() {
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
  fi
}
stop_ingress() { stop "$INGRESS"; }
stop_all() {
  [ -n "$LIVE" ] && stop "$LIVE"
  stop_ingress
}
trap stop_all EXIT

# Ready once Kafka answers it (the ingress creates its topics first).
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$INGRESS" 2>/dev/null || { echo "demo: the ingress exited; see $DIR/ingress.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "demo: ingress not ready" >&2; exit 1; }

# The wallboard reads the topics the ingress just created; it is up once it has caught up.
"$BIN/plug-pipeline" live >"$DIR/live.log" 2>&1 &
LIVE=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$LIVE_PORT/healthz" 2>/dev/null | grep -q '"caught_up":true' && break
  kill -0 "$LIVE" 2>/dev/null || { echo "demo: live exited; see $DIR/live.log" >&2; exit 1; }
  sleep 0.5
done
echo
echo "Wallboard: http://127.0.0.1:$LIVE_PORT/?token=$VIEWER_TOKEN  (TV: add &tv=1)"
echo

echo "demo: simulating ${SECONDS_TO_RUN}s at ${RATE}/s (time x$SCALE)" >&2
"$BIN/plug-pipeline" simulate --target "http://127.0.0.1:$PORT" --tenant "$TENANT" \
  --rate "$RATE" --duration "$SECONDS_TO_RUN" --time-scale "$SCALE" \
  --parallel 8 --operators 14 --customers 400 --instances 3
stop_ingress  # flushes the producer: everything acknowledged is in Kafka now

echo "demo: loading into $DIR/plug.duckdb" >&2
"$BIN/plug-pipeline" load --to "$DIR/plug.duckdb" --until-caught-up
"$BIN/plug-pipeline" report --from "$DIR/plug.duckdb" --out "$DIR/report.html" >/dev/null
echo
echo "Report: $(cd "$DIR" && pwd)/report.html"
