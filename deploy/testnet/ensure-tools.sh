#!/usr/bin/env bash
# ensure-tools.sh - install Debian's iproute2 and iptables when either is missing.
# The network fault tests and `make soak` build their test network with `ip netns`, veth
# pairs and iptables rules (tests/support/testnet.py). Idempotent: does nothing when both
# are on PATH. Installing needs root, as the test network itself does.
set -euo pipefail

PATH="$PATH:/usr/sbin:/sbin"
if command -v ip >/dev/null 2>&1 && command -v iptables >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-tools: ip or iptables is missing; run: sudo apt-get install -y iproute2 iptables" >&2
  exit 1
fi
echo "ensure-tools: installing Debian's iproute2 and iptables (once)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends iproute2 iptables >/dev/null
command -v iptables >/dev/null || { echo "ensure-tools: iptables still not on PATH" >&2; exit 1; }
