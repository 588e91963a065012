#!/bin/sh
# with-libvirtd.sh CMD [ARG...]: runs CMD against a private libvirtd made for
# it (start.sh) in a fresh /tmp/hlv-XXXXXX, and stops and removes it
# afterwards (stop.sh), also when interrupted. Leftovers of killed runs are
# reaped first. CMD sees HL_LIBVIRT_URI, HL_LIBVIRT_DIR (the harness dir;
# put disk images under it) and HL_LIBVIRT_HARNESS (this directory, for
# tests that restart the daemon). Exits with CMD's status, or 77 when the
# machine cannot run libvirtd.
set -u
here=$(cd "$(dirname "$0")" && pwd)

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: a private libvirtd needs root" >&2
	exit 77
fi
"$here/reap.sh"
D=$(mktemp -d /tmp/hlv-XXXXXX) || exit 1
echo "$$ $(sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f20)" >"$D/owner"
trap '"$here/stop.sh" "$D"' EXIT
trap 'exit 130' INT TERM HUP

URI=$("$here/start.sh" "$D")
rc=$?
if [ $rc = 77 ]; then
	echo "SKIP: this machine cannot run a private libvirtd" >&2
	exit 77
fi
[ $rc = 0 ] || { echo "with-libvirtd.sh: start.sh failed ($rc)" >&2; exit 1; }

HL_LIBVIRT_URI=$URI HL_LIBVIRT_DIR=$D HL_LIBVIRT_HARNESS=$here
export HL_LIBVIRT_URI HL_LIBVIRT_DIR HL_LIBVIRT_HARNESS
"$@"
