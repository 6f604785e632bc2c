#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: on Debian as root,
# the Debian packages: etcd-server for the 3-member etcd cluster tests;
# dig (bind9-dnsutils), dnsperf, dnsmasq and unbound for the DNS tests and
# the DNS benchmark's peers; nftables and iproute2 for the VIP load balancer
# tests (in network namespaces they create); build-essential and python3 to
# build the strata_netns addon (native/); nsenter (util-linux) for the
# namespace tests.
# tests (in network namespaces they create); slapd and ldap-utils for the
# LDAP identity-provider tests (each test starts its own slapd; no service);
# chromium for the web UI's browser test.
# Idempotent; prints what it did. Elsewhere it says what is missing.
set -euo pipefail

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
command -v unbound >/dev/null 2>&1 || need+=(unbound)
[ -x /usr/sbin/nft ] || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# The strata_netns addon (native/, built by npm ci's install script): make and a C compiler.
{ command -v make >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; } || need+=(build-essential)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/sbin/slapd ] || need+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The web UI's browser test (test/up-ui.test.ts): Debian's chromium, driven by playwright-core (no browser download).
[ -x /usr/bin/chromium ] || need+=(chromium)

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
  # unbound's package may start a system resolver on :53; tests start their own.
  # slapd's package may start a system slapd on 389; tests start their own on free ports.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop etcd unbound slapd >/dev/null 2>&1 || true; fi
else
  echo "install-test-deps: missing ${need[*]}; install them (Debian: apt-get install ${need[*]}) or the etcd and DNS tests fail" >&2
  exit 1
fi
