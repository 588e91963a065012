#!/bin/sh
# Crash safety (tests/crash_load.py): SIGKILLs of hyperletd under
# concurrent creates and deletes against a private libvirtd, libvirt going
# away mid-run, and a full disk. Runs inside tests/libvirtd/with-libvirtd.sh
# (its own libvirtd, removed afterwards); skips (77) where that cannot run.
here=$(cd "$(dirname "$0")" && pwd)
: "${HYPERLETD:?HYPERLETD is not set (run under make check)}"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
if [ -z "${HL_LIBVIRT_URI:-}" ]; then
	exec "$here/libvirtd/with-libvirtd.sh" "$0" "$@"
fi
rc=0
[ "${CRASH_STALL_ONLY:-0}" = 1 ] || python3 "$here/crash_load.py" || rc=1

# libvirtd SIGSTOPped under load for longer than the keepalive, then
# SIGCONTed (tests/crash_stall.py; issues 16.9 and 17.6). CRASH_STALL_ONLY=1
# runs only this part.
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" python3 "$here/crash_stall.py" ||
    rc=1
exit $rc
