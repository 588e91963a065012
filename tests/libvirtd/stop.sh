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
ns=$(cat "$D/mntns" 2>/dev/null || true)
[ "$ns" = "$self_ns" ] && ns=""

ns_pids() { # pids whose mount namespace is $ns
	[ -n "$ns" ] || return 0
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$ns" ] && echo "${p#/proc/}"
	done
	return 0
}
alive() { # any of the given pids still there?
	for p in "$@"; do [ -d "/proc/$p" ] && return 0; done
	return 1
}

# the daemon first (it may be mid-start, before mntns was written)
dpid=$(cat "$D/daemon.pid" 2>/dev/null || true)
if [ -n "$dpid" ] && [ -d "/proc/$dpid" ] &&
    tr '\0' ' ' <"/proc/$dpid/cmdline" 2>/dev/null | grep -qF "$D/"; then
	kill -TERM "$dpid" 2>/dev/null
else
	dpid=""
fi
pids="$dpid $(ns_pids)"
kill -TERM $pids 2>/dev/null
i=0
while alive $pids && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if alive $pids; then
	kill -KILL $pids 2>/dev/null
	i=0
	while alive $pids && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
fi
# a pid that appeared meanwhile (a QEMU mid-start)
pids=$(ns_pids)
[ -z "$pids" ] || { kill -KILL $pids 2>/dev/null; sleep 0.2; }
[ "${HLV_KEEP:-0}" = 1 ] || rm -rf "$D"
exit 0
