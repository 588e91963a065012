#!/bin/sh
# run.sh PROGRAM: prepares what the guest test needs and runs PROGRAM (the
# check_guest binary) against a private libvirtd (tests/libvirtd).
#
# The guest kit: Debian's stock kernel, downloaded once with
# `apt-get download` into $HL_GUEST_CACHE (default
# /var/cache/hyperlet-test; nothing is installed), of which only vmlinuz
# and the virtio/SCSI/cdrom/isofs/virtio-net modules are kept; a static busybox (busybox-static);
# and an initramfs made of those and tests/guest/init, rebuilt each run.
# PROGRAM sees HL_GUEST_KERNEL and HL_GUEST_INITRD.
#
# Exits 77 (skip) only when this machine cannot run libvirtd or QEMU.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prog=$1
CACHE=${HL_GUEST_CACHE:-/var/cache/hyperlet-test}

skip() { echo "SKIP: $*" >&2; exit 77; }
die() { echo "run.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "the guest test needs root (private libvirtd)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "no qemu-system-x86_64"
command -v libvirtd >/dev/null 2>&1 || skip "no libvirtd"
for c in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip; do
	command -v $c >/dev/null 2>&1 || die "missing $c (see ./bootstrap deps)"
done

t0=$(date +%s%N)
mkdir -p "$CACHE"
# two builds testing at once share the cache: one builds, the other waits
exec 9>"$CACHE/.lock"
flock 9
rm -rf "$CACHE"/initramfs.* "$CACHE"/initrd.gz.* # of a killed run

# the kernel linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
if [ -z "$pkg" ]; then
	apt-get -qq update >&2 || die "apt-get update failed"
	pkg=$(apt-cache depends linux-image-amd64 |
	    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
fi
[ -n "$pkg" ] || die "cannot resolve linux-image-amd64"
kver=${pkg#linux-image-}
kroot=$CACHE/kernel-$kver
# (a kit extracted before the config drive lacks the cdrom and isofs)
if [ ! -f "$kroot/lib/modules/$kver/modules.dep" ] ||
    [ ! -d "$kroot/lib/modules/$kver/kernel/fs/isofs" ] ||
    [ ! -f "$kroot/lib/modules/$kver/kernel/drivers/net/virtio_net.ko" ]; then
	rm -rf "$CACHE/dl" "$kroot.tmp"
	mkdir -p "$CACHE/dl" "$kroot.tmp"
	(cd "$CACHE/dl" && apt-get -qq -o APT::Sandbox::User=root download "$pkg") >&2 ||
	    die "apt-get download $pkg failed"
	m=./lib/modules/$kver
	dpkg-deb --fsys-tarfile "$CACHE"/dl/"$pkg"_*.deb |
	    tar -x -C "$kroot.tmp" --wildcards "./boot/vmlinuz-$kver" \
		"$m/modules.*" "$m/kernel/drivers/virtio/*" \
		"$m/kernel/drivers/block/*" "$m/kernel/drivers/scsi/*" \
		"$m/kernel/block/*" "$m/kernel/lib/*" "$m/kernel/crypto/*" \
		"$m/kernel/arch/x86/crypto/*" \
		"$m/kernel/drivers/cdrom/*" "$m/kernel/fs/isofs/*" \
		"$m/kernel/drivers/net/virtio_net.ko" \
		"$m/kernel/drivers/net/net_failover.ko" \
		"$m/kernel/net/core/failover.ko" ||
	    die "extracting $pkg failed"
	depmod -b "$kroot.tmp" "$kver"
	rm -rf "$kroot" "$CACHE/dl"
	mv "$kroot.tmp" "$kroot"
fi

bb=/bin/busybox
if ! [ -x $bb ] || ! LC_ALL=C ldd $bb 2>&1 | grep -q 'not a dynamic'; then
	bb=$CACHE/busybox
	if [ ! -x "$bb" ]; then
		rm -rf "$CACHE/dl"
		mkdir -p "$CACHE/dl"
		(cd "$CACHE/dl" && apt-get -qq -o APT::Sandbox::User=root download busybox-static) >&2 ||
		    die "apt-get download busybox-static failed"
		dpkg-deb --fsys-tarfile "$CACHE"/dl/busybox-static_*.deb |
		    tar -x -O ./bin/busybox >"$bb.tmp"
		chmod 755 "$bb.tmp"
		mv "$bb.tmp" "$bb"
		rm -rf "$CACHE/dl"
	fi
fi

ir=$CACHE/initramfs.$$
rm -rf "$ir"
mkdir -p "$ir/bin" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/lib/modules"
cp "$bb" "$ir/bin/busybox"
cp "$here/init" "$ir/init"
chmod 755 "$ir/init"
for mod in virtio_pci virtio_blk virtio_scsi sd_mod sr_mod isofs virtio_net; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$mod" |
	    awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r f; do
	cp "$f" "$ir/lib/modules/"
	basename "$f" >>"$ir/lib/modules/order"
done
(cd "$ir" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet |
    gzip -6) >"$CACHE/initrd.gz.$$"
# atomic: a guest of another run that is booting keeps the file it opened
mv "$CACHE/initrd.gz.$$" "$CACHE/initrd-$kver.gz"
rm -rf "$ir"
chmod -R a+rX "$CACHE"
exec 9>&- # not inherited by libvirtd: a killed run must not hold it
echo "run.sh: guest kit ($pkg) ready in $((($(date +%s%N) - t0) / 1000000)) ms" >&2

HL_GUEST_KERNEL=$kroot/boot/vmlinuz-$kver
HL_GUEST_INITRD=$CACHE/initrd-$kver.gz
export HL_GUEST_KERNEL HL_GUEST_INITRD
"$here/../libvirtd/with-libvirtd.sh" "$prog"
