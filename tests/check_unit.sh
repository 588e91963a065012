#!/bin/sh
# The systemd unit: run `systemd-analyze verify` on the unit make generated
# (systemd/hyperlet.service, from its .in), with ExecStart= pointing at the
# built daemon instead of $(sbindir) (verify insists the binary exists).
# Any output (systemd only warns about unknown keys) is a failure. Skips
# (77) when systemd-analyze is missing or cannot run here.
set -u
bin=${HYPERLETD:-daemon/hyperletd}
sa=$(command -v systemd-analyze) || {
	echo "SKIP: systemd-analyze not found (Debian package systemd)"
	exit 77
}
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

# systemd-analyze itself must work (it does not in every container)
printf '[Service]\nExecStart=/bin/true\n' >"$tmp/probe.service"
if ! "$sa" verify --man=no "$tmp/probe.service" >"$tmp/probe.out" 2>&1; then
	echo "SKIP: systemd-analyze verify does not run here:"
	sed 's/^/  /' "$tmp/probe.out"
	exit 77
fi

unit=${TOP_BUILDDIR:-.}/systemd/hyperlet.service
[ -f "$unit" ] || { echo "FAIL: $unit not generated (make all)"; exit 1; }
abs=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
sed -e "s|^ExecStart=[^ ]*/hyperletd |ExecStart=$abs |" "$unit" \
    >"$tmp/hyperlet.service"
fail=0
pass=0
check() { # description, then the test as arguments
	d=$1
	shift
	if "$@"; then pass=$((pass + 1)); else echo "FAIL: $d"; fail=$((fail + 1)); fi
}

check "ExecStart= names the daemon" grep -q "^ExecStart=$abs " "$tmp/hyperlet.service"
"$sa" verify --man=no "$tmp/hyperlet.service" >"$tmp/out" 2>&1
rc=$?
sed 's/^/  verify: /' "$tmp/out"
check "systemd-analyze verify exits 0" [ "$rc" = 0 ]
check "systemd-analyze verify prints nothing" [ ! -s "$tmp/out" ]

# the properties the daemon relies on
for want in 'Type=notify' 'WatchdogSec=30' 'Restart=on-failure' \
    'StateDirectory=hyperlet' 'ProtectSystem=strict' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'Wants=libvirtd.service'; do
	check "unit sets $want" grep -qx "$want" "$tmp/hyperlet.service"
done
check "no @substitution@ is left" sh -c "! grep -q '@[a-z]*@' '$tmp/hyperlet.service'"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
