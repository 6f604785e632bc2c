#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: on Debian as root,
# the Debian packages (etcd-server for the 3-member etcd cluster tests).
# Idempotent; prints what it did. Elsewhere it says what is missing.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-test-deps: Debian packages already present"
  exit 0
fi
if [ -r /etc/debian_version ] && [ "$(id -u)" = 0 ]; then
  echo "install-test-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # The package may start a system etcd on 2379; tests use their own ports, but stop it to save memory.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop etcd >/dev/null 2>&1 || true; fi
else
  echo "install-test-deps: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or the etcd tests fail" >&2
  exit 1
fi
