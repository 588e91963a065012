#!/bin/sh
# make check: the instance's state follows libvirt's (lib/domevents.c), on
# a private libvirtd with real QEMU (TCG) guests and the real hyperletd,
# through its HTTP API:
#   - virsh destroy behind hyperlet's back: GET shows stopped within 1 s;
#     virsh start: running again;
#   - virsh suspend / resume: paused / running;
#   - a guest whose init powers itself off (tests/guest/init, hl.poweroff):
#     stopped;
#   - libvirtd stopped, the guest's QEMU killed meanwhile, libvirtd started
#     again: hyperletd reconnects and re-reads the state (crashed: libvirt
#     finds the QEMU gone).
# Runs itself under tests/guest/run.sh (the guest kit and a private
# libvirtd); skips (77) where those cannot run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${HL_LIBVIRT_URI:-}" ] || [ -z "${HL_GUEST_KERNEL:-}" ]; then
	exec "$here/../guest/run.sh" "$here/check_lifecycle.sh"
fi
bin=${HYPERLETD:-${TOP_BUILDDIR:-.}/daemon/hyperletd}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
D=$HL_LIBVIRT_DIR
URI=$HL_LIBVIRT_URI
tmp=$D/lifecycle
mkdir -p "$tmp"
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
no() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { # description, then the test as arguments
	d=$1
	shift
	if "$@"; then ok "$d"; else no "$d"; fi
}
ms() { echo $(($(date +%s%N) / 1000000)); }
vsh() { virsh -q -c "$URI" "$@" >"$tmp/virsh.out" 2>&1; }

log=$tmp/hyperletd.log
printf '[log]\nlevel = debug\n[libvirt]\nstop_timeout = 0\n' >"$tmp/conf"
"$bin" --config "$tmp/conf" --state-dir "$tmp/state" \
    --listen 127.0.0.1:0 --libvirt-uri "$URI" --virt-type qemu \
    2>"$log" &
pid=$!
i=0
until grep -q "serving on" "$log"; do
	i=$((i + 1))
	[ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null || {
		cat "$log"
		echo "FAIL: hyperletd did not start"
		exit 1
	}
	sleep 0.1
done
port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
api() { # method, path, [curl args...]: body in $tmp/body, code out
	m=$1 path=$2
	shift 2
	curl -s --noproxy '*' -o "$tmp/body" -w '%{http_code}' \
	    -X "$m" "$@" "http://127.0.0.1:$port$path" 2>/dev/null
}
state() { # uuid: the state GET shows
	api GET "/v1/instances/$1" >/dev/null
	sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' "$tmp/body"
}
# waits up to $2 ms for instance $1 to show state $3 (a pattern: a|b);
# the time it took in $took (ms)
waits() {
	t0=$(ms)
	while :; do
		took=$(($(ms) - t0))
		eval "case \"\$(state \"\$1\")\" in $3) return 0 ;; esac"
		[ $took -ge "$2" ] && return 1
		sleep 0.02
	done
}
create() { # name, start (true/false): uuid out
	c=$(api POST /v1/instances -H 'Content-Type: application/json' \
	    -d '{"name": "'$1'", "imageRef": "'$img'", "start": '$2',
	        "flavor": {"vcpus": 1, "memory_mb": 128, "root_gb": 1,
	        "ephemeral_gb": 0, "swap": 0}}')
	[ "$c" = 201 ] || { echo "create $1: $c $(cat "$tmp/body")" >&2; return 1; }
	sed -n 's/^{"uuid":"\([0-9a-f-]*\)".*/\1/p' "$tmp/body"
}

img=5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b
head -c 1048576 /dev/zero >"$tmp/img.raw"
check "an image is uploaded" [ "$(api PUT /v1/images/$img \
    -H 'Content-Type: application/octet-stream' \
    --data-binary @"$tmp/img.raw")" = 201 ]

# B: a guest whose init powers the machine off: direct kernel boot of the
# guest kit, put into hyperlet's definition behind its back (hyperletd has
# no setting for a kernel). Booted first, as it takes the longest: A's
# checks run meanwhile.
b=$(create b false)
check "a stopped instance is created" [ -n "$b" ]
vsh dumpxml --inactive "instance-$b" && cp "$tmp/virsh.out" "$tmp/b.xml"
sed -i "0,/<\/type>/s||</type><kernel>$HL_GUEST_KERNEL</kernel><initrd>$HL_GUEST_INITRD</initrd><cmdline>console=ttyS0 quiet panic=-1 hl.poweroff</cmdline>|" \
    "$tmp/b.xml"
vsh define "$tmp/b.xml"
check "its domain boots the guest kit" grep -q hl.poweroff "$tmp/b.xml"
check "it is started through the API" [ "$(api POST "/v1/instances/$b/action" \
    -H 'Content-Type: application/json' -d '{"action": "start"}')" = 200 ]
b0=$(ms)

# A: a guest that runs (an empty disk: SeaBIOS looks for a boot device
# for ever, which is all destroy, suspend and resume need)
a=$(create a true)
check "a running instance is created" [ -n "$a" ]
check "... and shows running" [ "$(state "$a")" = running ]

vsh destroy "instance-$a"
check "virsh destroy behind hyperlet's back: GET shows stopped within 1 s" \
    waits "$a" 1000 stopped
echo "   (after $took ms)"
vsh start "instance-$a"
check "virsh start: running again" waits "$a" 1000 running
vsh suspend "instance-$a"
check "virsh suspend: paused within 1 s" waits "$a" 1000 paused
echo "   (after $took ms)"
vsh resume "instance-$a"
check "virsh resume: running within 1 s" waits "$a" 1000 running
echo "   (after $took ms)"
check "the API's own stop is not undone by its event" \
    [ "$(api POST "/v1/instances/$a/action" \
	-H 'Content-Type: application/json' -d '{"action": "stop"}')" = 200 ]
check "... it shows stopped" waits "$a" 1000 stopped
sleep 0.3
check "... and stays so" [ "$(state "$a")" = stopped ]
check "the API's start" [ "$(api POST "/v1/instances/$a/action" \
    -H 'Content-Type: application/json' -d '{"action": "start"}')" = 200 ]
sleep 0.3
check "... shows running and stays so" [ "$(state "$a")" = running ]

check "a guest that powers itself off: stopped" waits "$b" 45000 stopped
echo "   ($(($(ms) - b0)) ms after its start)"

api GET /metrics >/dev/null
n=$(sed -n 's/^hyperlet_libvirt_events_handled_total \([0-9]*\)$/\1/p' \
    "$tmp/body")
check "/metrics counts the events handled (${n:-none})" [ "${n:-0}" -ge 6 ]

# libvirtd goes away; A's QEMU dies while no one listens; libvirtd comes
# back and finds it gone: hyperletd re-reads
check "A runs before libvirtd stops" [ "$(state "$a")" = running ]
lpid=$(cat "$D/daemon.pid")
kill -TERM "$lpid"
i=0
while [ -d "/proc/$lpid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "libvirtd stopped" [ ! -d "/proc/$lpid" ]
qpid=$(cat "$D"/ov/run.u/libvirt/qemu/"instance-$a".pid 2>/dev/null)
check "A's QEMU outlived it" [ -n "$qpid" ] && [ -d "/proc/$qpid" ]
[ -n "$qpid" ] && kill -KILL "$qpid"
i=0
while [ -n "$qpid" ] && [ -d "/proc/$qpid" ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 0.5
check "while libvirtd is down, GET still says running" \
    [ "$(state "$a")" = running ]
"$HL_LIBVIRT_HARNESS/start.sh" "$D" >/dev/null
t0=$(ms)
# libvirt finds the QEMU gone and calls it crashed (shut off, reason
# crashed); stopped would be true as well
check "libvirtd restarted: the state is re-read (not running) within 10 s" \
    waits "$a" 10000 'stopped|crashed'
echo "   (after $took ms: $(state "$a"))"
check "hyperletd logged the re-read" \
    grep -qE "$a: (stopped|crashed) \(reconcile\)" "$log"
check "B stayed stopped" [ "$(state "$b")" = stopped ]

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "hyperletd stops with status 0" [ "$rc" = 0 ]
if [ "$fail" != 0 ]; then
	echo "--- hyperletd log (tail)"
	grep -v ' info: [A-Z]* /' "$log" | tail -40
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
