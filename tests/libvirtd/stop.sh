#!/bin/sh
# stop.sh DIR: stops what start.sh DIR started: libvirtd and every QEMU it
# left running (all processes in the daemon's private mount namespace, so
# the overlay mounts vanish with them), then removes DIR unless HLV_KEEP=1.
# Safe to run twice, on a half-started DIR, or after the caller was killed.
set -u

[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 2; }
D=$1
[ -d "$D" ] || exit 0
self_ns=$(readlink /proc/self/ns/mnt)

# Ours: the processes that see DIR's overlay on /etc, i.e. those of the
# daemon's private mount namespace (QEMU too, which libvirt daemonizes
# away from libvirtd). Namespace inode numbers get reused, mounts do not.
ours() {
	for p in /proc/[0-9]*; do
		n=$(readlink "$p/ns/mnt" 2>/dev/null) || continue
		[ "$n" = "$self_ns" ] && continue
		grep -qF "upperdir=$D/ov/etc.u," "$p/mountinfo" 2>/dev/null &&
		    echo "${p#/proc/}"
	done
	return 0
}
alive() { # any of the given pids still there?
	for p in "$@"; do [ -d "/proc/$p" ] && return 0; done
	return 1
}

# the daemon first (it may be mid-start, before its mounts exist)
dpid=$(cat "$D/daemon.pid" 2>/dev/null || true)
if [ -n "$dpid" ] && [ -d "/proc/$dpid" ] &&
    tr '\0' ' ' <"/proc/$dpid/cmdline" 2>/dev/null | grep -qF "$D/"; then
	kill -TERM "$dpid" 2>/dev/null
else
	dpid=""
fi
pids="$dpid $(ours)"
kill -TERM $pids 2>/dev/null
i=0
while alive $pids && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if alive $pids; then
	kill -KILL $pids 2>/dev/null
	i=0
	while alive $pids && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
# a pid that appeared meanwhile (a QEMU mid-start)
pids=$(ours)
[ -z "$pids" ] || { kill -KILL $pids 2>/dev/null; sleep 0.2; }
[ "${HLV_KEEP:-0}" = 1 ] || rm -rf "$D"
exit 0
