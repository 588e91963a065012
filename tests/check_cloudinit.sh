#!/bin/sh
# check_cloudinit.sh: the config drive read by a consumer no one here wrote.
# A real hyperletd (test:///default) creates an instance with a config
# drive, NICs, keys, a hostname and user data; the drive is fetched with
# GET /v1/instances/{uuid}/config_drive, its label read by blkid, its
# files extracted with xorriso -osirrox, and cloud-init's own reader
# (Debian's cloud-init: ConfigDriveReader.read_v2 and convert_net_json,
# what its ConfigDrive datasource runs) reads them: tests/cloudinit_check.py
# compares what it reports with the instance the API shows.
#
# cloud-init is never installed (on a real host it would run at the next
# boot): `apt-get download` and `dpkg -x` into $HL_GUEST_CACHE (default
# /var/cache/hyperlet-test, shared with the guest test), once.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${HYPERLETD:-daemon/hyperletd}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
CACHE=${HL_GUEST_CACHE:-/var/cache/hyperlet-test}

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }
[ -x "$bin" ] || die "$bin not built"
for c in curl xorriso apt-get apt-cache dpkg; do
	command -v $c >/dev/null 2>&1 || die "missing $c (see ./bootstrap deps)"
done
# Debian's python3, where python3-yaml and the rest are (not a pyenv's)
py=/usr/bin/python3
[ -x $py ] || py=python3

# --- cloud-init, unpacked once ------------------------------------------------
ver=$(apt-cache policy cloud-init 2>/dev/null | awk '/Candidate:/ { print $2 }')
if [ -z "$ver" ] || [ "$ver" = "(none)" ]; then
	apt-get -qq update >/dev/null 2>&1 || true
	ver=$(apt-cache policy cloud-init 2>/dev/null | awk '/Candidate:/ { print $2 }')
fi
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no cloud-init"
ci=$CACHE/cloud-init-$ver
mkdir -p "$CACHE"
if [ ! -d "$ci/usr/lib/python3/dist-packages/cloudinit" ]; then
	(
		flock 9
		if [ ! -d "$ci/usr/lib/python3/dist-packages/cloudinit" ]; then
			dl=$(mktemp -d "$CACHE/dl-ci.XXXXXX")
			(cd "$dl" && apt-get -qq -o APT::Sandbox::User=root \
			    download "cloud-init=$ver") || die "apt-get download cloud-init failed"
			rm -rf "$ci.tmp"
			dpkg -x "$dl"/cloud-init_*.deb "$ci.tmp"
			rm -rf "$dl" "$ci"
			mv "$ci.tmp" "$ci"
		fi
	) 9>"$CACHE/.lock-cloudinit"
fi
export PYTHONPATH=$ci/usr/lib/python3/dist-packages
$py -c 'import cloudinit.sources.helpers.openstack' ||
    die "cloud-init's reader does not import (python3-yaml, -jsonschema, -configobj, -jinja2, -requests, -oauthlib?)"

# --- a daemon, an image, an instance with a config drive ----------------------
tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
"$bin" --state-dir "$tmp/st" --listen 127.0.0.1:0 --virt-type qemu 2>"$tmp/log" &
pid=$!
i=0
until grep -q "serving on" "$tmp/log"; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 $pid 2>/dev/null || { cat "$tmp/log"; die "daemon did not start"; }
	sleep 0.1
done
port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$tmp/log")
api() { # method, path, [curl args...]: body in $tmp/body, code out
	m=$1 path=$2
	shift 2
	curl -s --noproxy '*' -o "$tmp/body" -w '%{http_code}' \
	    -X "$m" "$@" "http://127.0.0.1:$port$path" 2>/dev/null
}
img=6b7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b
head -c 1048576 /dev/zero >"$tmp/img.raw"
[ "$(api PUT /v1/images/$img -H 'Content-Type: application/octet-stream' \
    --data-binary @"$tmp/img.raw")" = 201 ] || die "image upload: $(cat "$tmp/body")"

# user data that is not text, and two real OpenSSH ed25519 public keys
$py - "$tmp" "$img" <<'EOF'
import base64, json, struct, sys
tmp, img = sys.argv[1:3]
def ed25519(seed):
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes((seed + i) % 256 for i in range(32))
    return "ssh-ed25519 " + base64.b64encode(blob).decode()
ud = b"#cloud-config\nruncmd:\n - [echo, hyperlet]\n" + bytes(range(256))
open(tmp + "/ud.b64", "w").write(base64.b64encode(ud).decode())
body = {
    "name": "web 1", "imageRef": img, "start": False, "config_drive": True,
    "flavor": {"vcpus": 1, "memory_mb": 128, "root_gb": 1},
    "metadata": {"role": "web"},
    "hostname": "web-1",
    "user_data": base64.b64encode(ud).decode(),
    "keys": [{"name": "ops", "type": "ssh", "data": ed25519(1) + " ops@example"},
             {"name": "backup", "type": "ssh", "data": ed25519(7) + " backup@example"}],
    "networks": [
        {"bridge": "br-ex", "mac": "fa:16:3e:12:34:56", "mtu": 1450, "tag": "public",
         "ips": [{"address": "192.0.2.10/24", "gateway": "192.0.2.1"},
                 {"address": "2001:db8::10/64", "gateway": "2001:db8::1"}],
         "dns": ["192.0.2.53", "2001:db8::53"]},
        {"network": "default", "tag": "mgmt"},
    ],
    "block_device_mapping_v2": [
        {"boot_index": 0, "source_type": "image", "destination_type": "local",
         "uuid": img, "tag": "root"}],
}
json.dump(body, open(tmp + "/create.json", "w"))
EOF
code=$(api POST /v1/instances -H 'Content-Type: application/json' -d @"$tmp/create.json")
[ "$code" = 201 ] || die "create: $code $(cat "$tmp/body")"
uuid=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["uuid"])' "$tmp/body")
[ "$(api GET /v1/instances/$uuid)" = 200 ] || die "GET instance"
cp "$tmp/body" "$tmp/instance.json"
[ "$(api GET /v1/instances/$uuid/config_drive)" = 200 ] || die "GET config_drive: $(cat "$tmp/body")"
cp "$tmp/body" "$tmp/disk.config"
echo "drive: $(wc -c <"$tmp/disk.config") bytes"

fail=0
if command -v blkid >/dev/null 2>&1; then
	label=$(blkid -o value -s LABEL "$tmp/disk.config" || true)
	fstype=$(blkid -o value -s TYPE "$tmp/disk.config" || true)
	if [ "$label" = config-2 ] && [ "$fstype" = iso9660 ]; then
		echo "ok: blkid: TYPE=iso9660 LABEL=config-2 (what cloud-init looks for)"
	else
		echo "FAIL: blkid: TYPE=$fstype LABEL=$label"
		fail=1
	fi
fi
xorriso -osirrox on -indev "$tmp/disk.config" -extract / "$tmp/drive" >"$tmp/x.log" 2>&1 ||
    { cat "$tmp/x.log"; die "xorriso could not extract the drive"; }
(cd "$tmp/drive" && find . -type f | LC_ALL=C sort | sed 's/^/  /')
$py "$top/tests/cloudinit_check.py" "$tmp/drive" "$tmp/instance.json" "$tmp/ud.b64" || fail=1
[ "$(api DELETE /v1/instances/$uuid)" = 204 ] || echo "note: delete answered $(cat "$tmp/body")"
[ ! -e "$tmp/st/instances/$uuid" ] || { echo "FAIL: the instance directory outlived the delete"; fail=1; }
exit $fail
