#!/usr/bin/env bash
# Installs every Debian package that building and testing Buckwild needs.
# Idempotent: safe to run on a fresh Debian 12 machine and again on a prepared one.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ccache
  clang-16 llvm-16                                               # the eBPF object
  clang-19 libclang-rt-19-dev libc++-19-dev libc++abi-19-dev       # the fuzz build
  # libraries the build links against
  libssl-dev libsodium-dev
  libbpf-dev bpftool linux-libc-dev
  libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libspdlog-dev
  libsnmp-dev libsystemd-dev libmnl-dev libmicrohttpd-dev
  # tests and micro-benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # the metrics tests check our exposition with the Prometheus client's own parser
  python3-prometheus-client
  # the MIB's lint (smilint); tests/e2e/snmp.sh's master agent, trap receiver and clients
  smitools snmpd snmptrapd snmp
  # end-to-end tests and the demo: namespaces, capture, real servers and clients
  iproute2 iputils-ping tcpdump nginx-light dnsmasq-base bind9-dnsutils curl iperf3 python3 procps
  openssh-server openssh-client redis-server redis-tools
  # tests/e2e/run.sh turns GRO on a veth on (ethtool -K) for the UDP offload check
  ethtool
  # tests/e2e/ntp.sh: real NTP servers (chronyd -x in namespaces, never the
  # system clock); the system service is disabled below
  chrony
  # tests/e2e/nat.sh: a masquerading router namespace and its conntrack table
  nftables conntrack
  # the .deb (CPack: dpkg-shlibdeps, file) and tests/e2e/package.sh: its man
  # pages, its units (systemd-analyze), its bash completion
  dpkg-dev file man-db groff-base systemd bash-completion logrotate
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Servers the tests start themselves (nginx, iperf3) must not also start as
  # system services: policy-rc.d tells the packages' scripts not to.
  created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if ((created_policy)); then rm -f /usr/sbin/policy-rc.d; fi
else
  echo "setup.sh: all ${#packages[@]} packages present"
fi

# chrony is here for the tests' own servers (chronyd -x, in namespaces): the
# system service must not start at boot and discipline this machine's clock.
if command -v systemctl >/dev/null 2>&1 && systemctl list-unit-files chrony.service >/dev/null 2>&1; then
  systemctl disable chrony.service >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1 && [[ -e /etc/init.d/chrony ]]; then
  update-rc.d chrony disable >/dev/null 2>&1 || true
fi
