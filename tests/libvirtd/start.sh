#!/bin/sh
# start.sh DIR: starts a private libvirtd (QEMU driver, running as root) that
# touches nothing of the host's libvirt state, and prints its URI.
#
# The daemon runs in its own mount and network namespaces (unshare -m -n,
# private propagation) with overlayfs over /etc, /var and /run whose upper
# and work directories live in DIR/ov, so everything it writes (domain
# configs, state, logs, pid files) lands in DIR, and it sees none of the
# host's libvirt state. Its sockets live in DIR/sock; DIR
# must be short (UNIX socket paths hold at most 108 bytes). Disk images
# must live outside /etc, /var and /run (DIR itself is fine).
# Starting again on a DIR that stop.sh left alone keeps the domains.
#
# Exit status: 0 up (URI on stdout), 77 this machine cannot run it (not
# root, no libvirtd, no namespaces or overlayfs), 1 anything else.
set -eu

die() { echo "start.sh: $*" >&2; exit "${2:-1}"; }

[ $# -eq 1 ] || die "usage: start.sh DIR"
D=$1
case $D in /*) ;; *) die "DIR must be absolute" ;; esac
[ ${#D} -le 64 ] || die "DIR too long for a UNIX socket path: $D"
[ "$(id -u)" = 0 ] || die "needs root" 77
command -v libvirtd >/dev/null 2>&1 || die "no libvirtd (Debian: libvirt-daemon)" 77
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
    die "no QEMU driver (Debian: libvirt-daemon-driver-qemu)" 77
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "no qemu-system-x86_64" 77
command -v unshare >/dev/null 2>&1 || die "no unshare (util-linux)" 77
command -v virsh >/dev/null 2>&1 || die "no virsh (libvirt-clients)" 77

mkdir -p "$D/sock" "$D/ov/etc.u" "$D/ov/etc.w" "$D/ov/var.u" "$D/ov/var.w" \
    "$D/ov/run.u" "$D/ov/run.w"
chmod 755 "$D"
URI="qemu+unix:///system?socket=$D/sock/libvirt-sock"

cat >"$D/libvirtd.conf" <<CONF
unix_sock_dir = "$D/sock"
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$D/libvirtd.log"
CONF
# root, no virtlogd (stdio_handler), no cgroups (else libvirt leaves
# /sys/fs/cgroup/*/machine behind on the host)
cat >"$D/qemu.conf" <<CONF
user = "root"
group = "root"
stdio_handler = "file"
cgroup_controllers = [ ]
CONF
cat >"$D/ns.sh" <<'NS'
#!/bin/sh
# Runs inside the private mount (and network) namespace: overlay /etc,
# /var and /run, then become libvirtd (same pid).
set -e
D=$1
for d in etc var run; do
	mount -t overlay "hlv-$d" \
	    -o "lowerdir=/$d,upperdir=$D/ov/$d.u,workdir=$D/ov/$d.w" "/$d" ||
	    { echo "hlv: cannot mount overlayfs on /$d" >&2; exit 77; }
done
# None of the host's libvirt state: its domains, networks, pools and
# secrets, and the status files of guests it runs, would otherwise be
# loaded (and autostarted, or reconnected to). Removing them in the
# overlay only writes whiteouts into DIR; the host's files stay.
# Only on the first start on DIR: a restart keeps what the tests made.
grep -qF "upperdir=$D/ov/run.u," /proc/self/mountinfo || exit 1
if [ ! -e "$D/ov/hidden" ]; then
	rm -rf /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/nwfilter \
	    /etc/libvirt/secrets /var/lib/libvirt /run/libvirt
	: >"$D/ov/hidden"
fi
# The QEMU driver looks its compiled-in user up at start, even when
# qemu.conf names root.
getent group libvirt-qemu >/dev/null ||
    echo 'libvirt-qemu:x:64055:' >>/etc/group
getent passwd libvirt-qemu >/dev/null ||
    echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>/etc/passwd
mkdir -p /etc/libvirt
cp "$D/qemu.conf" /etc/libvirt/qemu.conf
exec libvirtd -f "$D/libvirtd.conf" -p "$D/libvirtd.pid"
NS
chmod 755 "$D/ns.sh"

if [ -f "$D/daemon.pid" ] && kill -0 "$(cat "$D/daemon.pid")" 2>/dev/null; then
	die "a daemon already runs for $D (pid $(cat "$D/daemon.pid"))"
fi
rm -f "$D/sock/libvirt-sock" "$D/sock/libvirt-sock-ro" \
    "$D/sock/libvirt-admin-sock" "$D/libvirtd.pid"
# stdin from /dev/null, our stdout not inherited: a caller reading the URI
# from $(start.sh) must not wait for the daemon to close it
# -n: a network it might start (a bridge, firewall rules) stays private
unshare -m -n --propagation private "$D/ns.sh" "$D" \
    </dev/null >"$D/daemon.out" 2>&1 &
pid=$!
echo "$pid" >"$D/daemon.pid"

i=0
while :; do
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" && rc=0 || rc=$?
		cat "$D/daemon.out" >&2
		[ "$rc" = 77 ] && die "no overlayfs here" 77
		grep -qi 'unshare.*\(not permitted\|denied\)' "$D/daemon.out" &&
		    die "no mount namespaces here" 77
		die "libvirtd exited ($rc); see $D/libvirtd.log"
	fi
	if [ -S "$D/sock/libvirt-sock" ] &&
	    virsh -q -c "$URI" uri >/dev/null 2>&1; then
		break
	fi
	i=$((i + 1))
	[ $i -lt 300 ] || die "libvirtd did not answer within 30 s; see $D/libvirtd.log"
	sleep 0.1
done
# stop.sh finds the daemon and its QEMUs by these mounts
grep -qF "upperdir=$D/ov/etc.u," "/proc/$pid/mountinfo" ||
    die "libvirtd runs without the overlay on /etc"
echo "$URI"
