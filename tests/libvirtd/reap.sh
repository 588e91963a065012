#!/bin/sh
# reap.sh: stops and removes what earlier harness runs left behind when they
# were killed: every /tmp/hlv-XXXXXX whose owner (the with-libvirtd.sh that
# made it, recorded as "pid starttime" in DIR/owner) is gone. Directories of
# runs still alive are left alone, so two builds may test at once.
set -u
here=$(cd "$(dirname "$0")" && pwd)

starttime() { # pid -> its start time in clock ticks (field 22 of stat)
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

for d in /tmp/hlv-??????; do
	[ -d "$d" ] || continue
	if [ -f "$d/owner" ]; then
		read -r opid ostart <"$d/owner" || true
		[ -n "${opid:-}" ] && [ "$(starttime "$opid")" = "${ostart:-}" ] &&
		    continue
	else
		# being made right now (owner is written just after mkdir)
		[ -n "$(find "$d" -maxdepth 0 -mmin -1 2>/dev/null)" ] && continue
	fi
	echo "reap.sh: cleaning up $d, left by an earlier run" >&2
	"$here/stop.sh" "$d"
done
exit 0
