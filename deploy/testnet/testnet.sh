#!/usr/bin/env bash
# testnet.sh - test networks for the fault tests: hosts in network namespaces (named
# plugt-ID-HOST) on one bridge, the faults of a real network between them. As root, with
# Debian's iproute2 and iptables. The logic is tests/support/testnet.py; this is its door
# for people, and the cleanup that works without Python.
#   testnet.sh up HOST...        make a net; prints its id, each host's address, and how
#                                to run a command there (ip netns exec plugt-ID-HOST CMD)
#   testnet.sh list              our namespaces and root links (nothing when clean)
#   testnet.sh clean [ID]        kill every process in our namespaces, delete them and our
#                                root links: of one net, or of every net (after a failure)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[[ -x $PY ]] || PY=python3

clean() {
  local id=${1:-} ns pid link
  for ns in $(ip netns list | awk '{print $1}' | grep "^plugt-$id" || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^plugt$id" || true); do
    ip link del "$link" 2>/dev/null || true
  done
}

cmd=${1:-}; shift || true
case $cmd in
  up|list) cd "$ROOT" && exec "$PY" -m tests.support.testnet "$cmd" "$@" ;;
  clean)   clean "$@" ;;
  *)       sed -n '2,11p' "$0"; exit 2 ;;
esac
