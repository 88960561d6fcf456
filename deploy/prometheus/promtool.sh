#!/usr/bin/env bash
# Prints the path of a promtool, taken once from Debian's prometheus package (only the
# promtool binary is kept, under ~/.cache/plug-pipeline). Used by the test suite to check
# and unit-test deploy/prometheus/alerts.yaml:
#   "$(bash deploy/prometheus/promtool.sh)" test rules deploy/prometheus/alerts.test.yaml
set -euo pipefail
DIR=${PROMTOOL_HOME:-$HOME/.cache/plug-pipeline/promtool}
BIN=$DIR/usr/bin/promtool
if [[ ! -x $BIN ]]; then
  command -v apt-get >/dev/null || { echo "promtool.sh: needs apt-get (Debian)" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # apt's package lists may be missing on a fresh machine: update once, then retry.
  (cd "$tmp" && { apt-get download prometheus 2>/dev/null \
      || { apt-get update -qq 2>/dev/null && apt-get download prometheus 2>/dev/null; }; }) >/dev/null
  mkdir -p "$DIR"
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$DIR" ./usr/bin/promtool
fi
echo "$BIN"
