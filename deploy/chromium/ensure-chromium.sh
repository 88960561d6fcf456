#!/usr/bin/env bash
# ensure-chromium.sh - install Debian's headless-capable Chromium when it is missing.
# The report's browser test (tests/browser/) opens the HTML report in it. Idempotent: does
# nothing when a chromium binary is already on PATH (or CHROMIUM names one). Installing needs
# root, as on CI and the developers' machines; elsewhere it says what to run.
set -euo pipefail

if [[ -n ${CHROMIUM:-} && -x ${CHROMIUM} ]] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "ensure-chromium: chromium is missing; run: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium package (once)" >&2
# Other installs may hold dpkg's lock for a while: wait for it instead of failing.
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null || { echo "ensure-chromium: chromium still not on PATH" >&2; exit 1; }
