#!/usr/bin/env bash
# Lints packaging/BUCKWILD-MIB.txt with smilint (Debian's smitools) at its
# strictest level: any error or warning fails. smilint exits 0 whatever it
# finds, so the test is that it prints nothing.
#
# The modules the MIB imports (SNMPv2-SMI, SNMPv2-TC, SNMPv2-CONF,
# INET-ADDRESS-MIB) are not in Debian main (snmp-mibs-downloader is
# non-free), so tests/mibs/ carries net-snmp's copies; SMIPATH makes smilint
# find them without linting them.
# Usage: mib_test.sh SOURCE_DIR
set -euo pipefail

src=$1
mib=$src/packaging/BUCKWILD-MIB.txt
command -v smilint >/dev/null || { echo "FAIL: smilint not installed (scripts/setup.sh installs smitools)" >&2; exit 1; }
[[ -f $mib ]] || { echo "FAIL: $mib missing" >&2; exit 1; }

out=$(SMIPATH=$src/tests/mibs smilint -l 9 "$mib" 2>&1)
if [[ -n $out ]]; then
  echo "FAIL: smilint -l 9 $mib:" >&2
  echo "$out" >&2
  exit 1
fi
# The module must be the one the daemon serves: its OID is the daemon's.
oid=$(SMIPATH=$src/tests/mibs smidump -f identifiers "$mib" 2>/dev/null | awk '$2 == "buckwild" {print $4}')
want=$(sed -n 's/.*kBuckwildEnterpriseOid\[\] = {\(.*\)};.*/\1/p' "$src/src/daemon/snmp/mib_oids.h" | tr -d ' ' | tr ',' '.')
if [[ -z $want || $oid != "$want" ]]; then
  echo "FAIL: the MIB's root is $oid but src/daemon/snmp/mib_oids.h serves $want" >&2
  exit 1
fi
echo "ok: $mib lints clean at level 9 (root $oid)"
