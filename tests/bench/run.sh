#!/bin/sh
# The driver of `make bench`: starts the real hyperletd on a free port and a
# temporary state dir, measures create/delete throughput and latency at
# concurrency 1, 8 and 32 against the fair floor (tests/bench/bench_floord:
# an HTTP daemon doing only a create's unavoidable work through the same
# libvirt: JSON, one SQLite transaction, the three local disk files made in
# process, the define; and a delete's), list pages over
# 10,000 instances, memory and start-up, and prints one line per figure
# ("name value unit", the median of BENCH_RUNS runs) and a summary table.
# Not a test: it never fails on a slow figure, only on a broken run.
#
# Knobs (environment): BENCH_URI_N (creates per run there, 100),
# BENCH_LIBVIRTD=1 (start a private libvirtd for
# the BENCH_URI figures), BENCH_RUNS (3), BENCH_N (creates per run, 200),
# BENCH_LIST_N (instances for list/memory/start-up, 10000), BENCH_URI
# (also measure create against this libvirt URI, e.g. a private libvirtd),
# BENCH_VIRT_TYPE (virt_type for BENCH_URI, qemu), BENCH_STARTUP_LIBVIRTD
# (0: skip the start-up/memory figures with the test driver hosted by a
# private libvirtd; on by default where tests/libvirtd/start.sh can run),
# BENCH_RAW (copy every run's figures, not only the medians, to this file),
# BENCH_OUT (also write
# the figures to this file), BENCH_MD (a Markdown report with the machine), BENCH_PARTS ("create model list events": which
# parts to run). BUILDDIR/SRCDIR are set by make.
set -eu
B=${BUILDDIR:-$(pwd)}
S=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# BENCH_LIBVIRTD=1: also measure create against a private libvirtd
# (tests/libvirtd/with-libvirtd.sh starts it and removes it afterwards).
if [ "${BENCH_LIBVIRTD:-}" = 1 ] && [ -z "${HL_LIBVIRT_URI:-}" ]; then
	export BUILDDIR="$B" SRCDIR="$S"
	exec "$S/tests/libvirtd/with-libvirtd.sh" sh "$0" "$@"
fi
[ -n "${HL_LIBVIRT_URI:-}" ] && BENCH_URI=${BENCH_URI:-$HL_LIBVIRT_URI}
RUNS=${BENCH_RUNS:-3}
N=${BENCH_N:-200}
NLIST=${BENCH_LIST_N:-10000}
PARTS=${BENCH_PARTS:-create model configdrive list placement events}
NURI=${BENCH_URI_N:-100}
HYPERLETD=${HYPERLETD:-$B/daemon/hyperletd}
LOADGEN=$B/tests/bench/bench_loadgen
FLOOR=$B/tests/bench/bench_floor
FLOORD=$B/tests/bench/bench_floord
STARTFLOOR=$B/tests/bench/bench_startfloor
HOLD=$B/tests/bench/bench_hold

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hl-bench.XXXXXX")
raw=$tmp/raw.txt # every figure of every run
: >"$raw"
pid=""
hold="" # bench_hold's pid
lvd="" # the private libvirtd's dir, when this script started it
cleanup() {
	# a daemon gone before its stop (pid still set) or anything logged at
	# level err is shown before the temp dir goes
	if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
		log "hyperletd (pid $pid) had exited before the end"
	fi
	if [ -s "$tmp/hyperletd.log" ]; then
		log "hyperletd's log (level err), last 20 lines:"
		tail -20 "$tmp/hyperletd.log" >&2
	fi
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[ -n "$hold" ] && kill "$hold" 2>/dev/null && wait "$hold" 2>/dev/null
	[ -n "${fpid:-}" ] && kill "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
	[ -n "${spid:-}" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	[ -n "$lvd" ] && "$S/tests/libvirtd/stop.sh" "$lvd"
	[ -n "${BENCH_RAW:-}" ] && cp "$raw" "$BENCH_RAW"
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

log() { echo "bench: $*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_daemon STATE_DIR URI VIRT_TYPE: starts hyperletd, waits for
# /v1/health to answer 200, sets $pid, $base and $startup_ms.
start_daemon() {
	port=$(free_port)
	base=http://127.0.0.1:$port
	mkdir -p "$1"
	cat >"$tmp/hyperlet.conf" <<EOF
[api]
listen = 127.0.0.1:$port
connection_limit = 1024
per_ip_connection_limit = 0
[libvirt]
uri = $2
virt_type = $3
[storage]
state_dir = $1
volume_roots = $tmp/vols
[node]
# no capacity claims in the way of 10,000 instances (test:///default is a
# 3 GiB node)
cpu_allocation_ratio = 1000000
ram_allocation_ratio = 1000000
disk_allocation_ratio = 1000000
[log]
level = err
EOF
	# BENCH_STREAM_CPU: [events] stream_cpu (the events part's trade-off
	# between delivery latency and the daemon's CPU)
	if [ -n "${BENCH_STREAM_CPU:-}" ]; then
		printf '[events]\nstream_cpu = %s\n' "$BENCH_STREAM_CPU" \
		    >>"$tmp/hyperlet.conf"
	fi
	t0=$(date +%s%N)
	"$HYPERLETD" --config "$tmp/hyperlet.conf" 2>>"$tmp/hyperletd.log" &
	pid=$!
	deadline=$(($(date +%s) + ${BENCH_START_TIMEOUT:-1800}))
	until curl -sf -o /dev/null "$base/v1/health"; do
		if [ "$(date +%s)" -gt "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
			log "hyperletd did not become ready; its log:"
			tail -20 "$tmp/hyperletd.log" >&2
			exit 1
		fi
		sleep 0.005
	done
	startup_ms=$((($(date +%s%N) - t0) / 1000000))
}

stop_daemon() {
	kill "$pid"
	wait "$pid" || true
	pid=""
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }

# cpu_ticks: hyperletd's user + system CPU time so far, in clock ticks
# (fields 14 and 15 of /proc/PID/stat; the name in field 2 has no spaces).
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${1:-$pid}/stat"; }

figure() { echo "$1 $2 $3" >>"$raw"; }

# startfloor NAME URI DB: bench_startfloor (list URI's domains with their
# state, read DB's instances) timed from exec to exit as figure
# NAME_floor; its phases as startfloor_* and its RSS as rss_NAME_floor.
startfloor() {
	t0=$(date +%s%N)
	"$STARTFLOOR" "startfloor_${1#startup_}" "$2" "$3" >"$tmp/sf.out" \
	    2>>"$tmp/startfloor.log" ||
	    { log "bench_startfloor failed: $(tail -1 "$tmp/startfloor.log")"; exit 1; }
	figure "${1}_floor" $((($(date +%s%N) - t0) / 1000000)) ms
	cat "$tmp/sf.out" >>"$raw"
	figure "rss_${1#startup_}_floor" "$(awk '/_rss / { print $2 }' "$tmp/sf.out")" KiB
}

# upload_image: a 1 MiB raw base image; sets $img.
upload_image() {
	img=6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f
	[ -f "$tmp/base.raw" ] || head -c 1048576 /dev/zero >"$tmp/base.raw"
	code=$(curl -s -o "$tmp/up.out" -w '%{http_code}' -X PUT \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary "@$tmp/base.raw" "$base/v1/images/$img")
	case $code in 201 | 200 | 409) ;; *)
		log "image upload answered $code: $(cat "$tmp/up.out")"
		exit 1
		;;
	esac
}

# The create body: 5 BDMs (root image, ephemeral, swap, two file volumes),
# "start": false (defining is measured, booting is not).
mkdir -p "$tmp/vols"
: >"$tmp/vols/vol1"
: >"$tmp/vols/vol2"
cat >"$tmp/body.json" <<EOF
{"name": "@NAME@", "start": false,
 "flavor": {"vcpus": 1, "memory_mb": 256, "root_gb": 1, "ephemeral_gb": 1, "swap": 64},
 "imageRef": "6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f",
 "block_device_mapping_v2": [
  {"boot_index": 0, "source_type": "image", "destination_type": "local",
   "uuid": "6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f"},
  {"boot_index": -1, "source_type": "blank", "destination_type": "local",
   "volume_size": 1},
  {"boot_index": -1, "source_type": "blank", "destination_type": "local",
   "guest_format": "swap", "volume_size": 64},
  {"boot_index": -1, "source_type": "volume", "destination_type": "volume",
   "uuid": "@VOL1@", "connection_info": {"driver_volume_type": "file",
   "data": {"device_path": "$tmp/vols/vol1"}}},
  {"boot_index": -1, "source_type": "volume", "destination_type": "volume",
   "uuid": "@VOL2@", "connection_info": {"driver_volume_type": "file",
   "data": {"device_path": "$tmp/vols/vol2"}}}
 ]}
EOF

# domain_xml: the XML hyperlet defines for that body, for the floor.
domain_xml() {
	sed -e 's/@NAME@/xmlprobe/' -e 's/@VOL1@/0b6c58b8-0f0a-4b8e-9c55-3f3b9d3c0a01/' \
	    -e 's/@VOL2@/1c7d69c9-1f1b-4c9f-8d66-4a4cae4d1b02/' "$tmp/body.json" >"$tmp/one.json"
	loc=$(curl -s -D - -o "$tmp/one.out" -H 'Content-Type: application/json' \
	    --data-binary "@$tmp/one.json" "$base/v1/instances" |
	    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
	[ -n "$loc" ] || { log "probe create failed: $(cat "$tmp/one.out")"; exit 1; }
	curl -sf -o "$1" "$base$loc/domain" || { log "GET $loc/domain failed"; exit 1; }
	curl -sf -o /dev/null -X DELETE "$base$loc" || true
}

# floord_start STATE_DIR URI LABEL: the fair floor (tests/bench/bench_floord,
# an HTTP daemon doing only a create's and a delete's unavoidable work:
# JSON, one SQLite FULL transaction, the three local disks made in process,
# the define without validation; see its header) on a free port, with
# hyperlet's domain XML, instances directory and base image; sets $fpid
# and $fbase. A fourth argument "safe": the floor with the brief's
# guarantees (ownership checks, crash-safe states, event rows; see
# bench_floord's header).
floord_start() {
	fport=$(free_port)
	fbase=http://127.0.0.1:$fport
	rm -f "$tmp/floor-$3.db"*
	rm -f "$tmp/floord.ready"
	"$FLOORD" "$fport" "$tmp/floor-$3.db" "$2" "$tmp/domain-${3%-safe}.xml" \
	    "$1/instances" "$1/images/$img" raw ${4:-} >"$tmp/floord.ready" \
	    2>>"$tmp/floord.log" &
	fpid=$!
	until [ -s "$tmp/floord.ready" ]; do
		kill -0 "$fpid" 2>/dev/null ||
		    { log "bench_floord failed: $(tail -1 "$tmp/floord.log")"; exit 1; }
		sleep 0.01
	done
}

floord_stop() {
	kill "$fpid"
	wait "$fpid" || true
	fpid=""
	if [ -n "$spid" ]; then
		kill "$spid"
		wait "$spid" || true
		spid=""
	fi
}

# create_run PID BASE PREFIX C: n creates (then their deletes) at
# concurrency C against the daemon at BASE (pid PID), its figures
# prefixed with PREFIX, and its CPU time per create and its delete (from
# /proc: steadier than req/s on a shared machine).
create_run() {
	t0=$(cpu_ticks "$1")
	"$LOADGEN" create "$2" "$tmp/body.json" "$n" "$4" "${label}_c$4" |
	    sed "s/^/$3/" >>"$raw"
	figure "$3create_${label}_c$4_cpu" "$(awk -v a="$t0" \
	    -v b="$(cpu_ticks "$1")" -v n="$n" -v hz="$HZ" \
	    'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')" ms
}

# create_figures LABEL URI VIRT_TYPE N: hyperlet and the floor, interleaved,
# RUNS times at each concurrency, each driven by bench_loadgen; and the
# safe floor (figures floorsafe_*) with them, unless BENCH_FLOOR_SAFE=0.
create_figures() {
	label=$1
	n=$4
	start_daemon "$tmp/state-$label" "$2" "$3"
	upload_image
	domain_xml "$tmp/domain-$label.xml"
	spid=""
	if [ "${BENCH_FLOOR_SAFE:-1}" != 0 ]; then
		floord_start "$tmp/state-$label" "$2" "$label-safe" safe
		spid=$fpid
		sbase=$fbase
	fi
	floord_start "$tmp/state-$label" "$2" "$label"
	for r in $(seq "$RUNS"); do
		for c in ${BENCH_CONCS:-1 8 32}; do
			log "$label run $r/$RUNS: $n creates at concurrency $c"
			# who goes first rotates: each run's deletes leave
			# inodes that make the next run's file creates dearer
			# (ext4 without a journal skips recently deleted
			# inodes when it allocates)
			who="hyperlet floor safe"
			[ $((r % 3)) = 2 ] && who="floor safe hyperlet"
			[ $((r % 3)) = 0 ] && who="safe hyperlet floor"
			for w in $who; do
				case $w in
				hyperlet) create_run "$pid" "$base" "" "$c" ;;
				floor) create_run "$fpid" "$fbase" floor_ "$c" ;;
				safe) [ -z "$spid" ] ||
				    create_run "$spid" "$sbase" floorsafe_ "$c" ;;
				esac
			done
		done
	done
	floord_stop
	stop_daemon
}

# --- create / delete: test:///default ---------------------------------------
# test:///default lives in one process's memory: hyperletd defines on its
# own, the floor on its own test:///default.
case " $PARTS " in *" create "*)
# BENCH_CONCS ("1 8 32"): the concurrencies; BENCH_CREATE_TEST=0: only
# BENCH_URI's (long runs of one case)
[ "${BENCH_CREATE_TEST:-1}" = 0 ] ||
create_figures test test:///default kvm "$N"
if [ -n "${BENCH_URI:-}" ]; then
	create_figures uri "$BENCH_URI" "${BENCH_VIRT_TYPE:-qemu}" "$NURI"
fi
;; esac

# --- model alone (bench_model, when built) ----------------------------------
case " $PARTS " in *" model "*) ;; *) false ;; esac &&
for p in bench_model; do
	if [ -x "$B/tests/bench/$p" ]; then
		log "$p ($RUNS runs)"
		for r in $(seq "$RUNS"); do "$B/tests/bench/$p" >>"$raw" || true; done
	fi
done
# The store alone (its own medians over rounds): one run.
if [ -x "$B/tests/bench/bench_store" ] && case " $PARTS " in *" model "*) true ;; *) false ;; esac; then
	log "bench_store"
	(cd "$tmp" && "$B/tests/bench/bench_store") >>"$raw" || true
fi

# --- the config drive beside Nova's builder ---------------------------------
# bench_configdrive (a typical drive: 2 NICs, 4 tagged disks, 16 KiB user
# data) and, in the same run, Nova's ConfigDriveBuilder + genisoimage on the
# same files (python3-nova and genisoimage, when installed: Debian's
# /usr/bin/python3, not a pyenv one).
case " $PARTS " in *" configdrive "*)
if [ -x "$B/tests/bench/bench_configdrive" ]; then
	for r in $(seq "$RUNS"); do
		log "config drive run $r/$RUNS"
		rm -rf "$tmp/cd" "$tmp/cd.iso"
		"$B/tests/bench/bench_configdrive" --dump "$tmp/cd" 200 >>"$raw" || true
		if [ -d "$tmp/cd" ]; then
			rc=0
			/usr/bin/python3 "$S/tests/bench/bench_configdrive_nova.py" \
			    "$tmp/cd" 30 >>"$raw" || rc=$?
			[ "$rc" = 77 ] && log "Nova's builder not installed (python3-nova, genisoimage): skipped"
		fi
	done
fi
;; esac

# --- OpenStack Placement (tests/bench/placement.py) --------------------------
# Create latency with and without [placement] in the same run, and a full
# reconciliation of NLIST instances, cold and in step (skipped without
# python3-placement).
case " $PARTS " in *" placement "*)
log "placement (create latency with/without, reconcile of $NLIST)"
HYPERLETD="$HYPERLETD" python3 "$S/tests/bench/placement.py" "$B" "$tmp" \
    "$tmp/body.json" 6f1b4a52-6c9b-4f55-8d8f-9a1c2b3d4e5f "${BENCH_PL_N:-100}" \
    "$RUNS" "$NLIST" >>"$raw" || { log "placement part failed"; exit 1; }
;; esac

# --- memory, list, start-up over NLIST instances ----------------------------
# The instances are written straight into the database (bench_populate: the
# API's parse/prepare/blockinfo/store chain, no HTTP) while the daemon is
# down; its start then reconciles them: with test:///default no domain
# survives a restart, so start-up redefines all NLIST of them
# (startup_N_redefine_all, the crash-recovery case). startup_N_defined is
# the start with the domains present (a test:///node.xml URI).
case " $PARTS " in *" list "*)
for r in $(seq "$RUNS"); do
	log "memory/list/start-up run $r/$RUNS ($NLIST instances)"
	rm -rf "$tmp/state-list"
	start_daemon "$tmp/state-list" test:///default kvm
	sleep 1
	figure rss_idle "$(rss_kib)" KiB
	figure rss_idle_anon "$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status")" KiB
	figure rss_idle_file "$(awk '/^RssFile:/ { print $2 }' "/proc/$pid/status")" KiB
	# its floor (rss_idle_floor, _anon_floor, _file_floor): a program
	# linking what hyperletd links that opens the same URI and database
	# and listens, then idles (bench_rssfloor)
	"$B/tests/bench/bench_rssfloor" "$tmp/state-list/hyperlet.db" \
	    test:///default 2>>"$tmp/rssfloor.log" |
	    sed -n 's/^floor_rss_idle\(_anon\|_file\)\{0,1\} /rss_idle\1_floor /p' \
	    >>"$raw" || true
	figure startup_empty "$startup_ms" ms
	upload_image
	stop_daemon
	"$B/tests/bench/bench_populate" "$tmp/state-list/hyperlet.db" \
	    "$tmp/body.json" "$NLIST"
	start_daemon "$tmp/state-list" test:///default kvm
	# the crash-recovery case: every domain missing, all redefined
	figure "startup_${NLIST}_redefine_all" "$startup_ms" ms
	figure "rss_${NLIST}" "$(rss_kib)" KiB
	"$LOADGEN" list "$base" 100 3 p100 >>"$raw"
	"$LOADGEN" list "$base" 1000 10 p1000 >>"$raw"
	figure "rss_${NLIST}_after_list" "$(rss_kib)" KiB
	stop_daemon
	# The stated case: the NLIST domains are defined in libvirt at start
	# (a test-driver node file holding each instance's domain as
	# hyperletd formats it, in its row's run state), so reconciliation
	# only compares. Includes the test driver parsing the node file.
	"$B/tests/bench/bench_nodexml" "$tmp/state-list/hyperlet.db" \
	    "$tmp/state-list/instances" "$tmp/state-list/images" kvm \
	    "$tmp/node.xml"
	start_daemon "$tmp/state-list" "test://$tmp/node.xml" kvm
	figure "startup_${NLIST}_defined" "$startup_ms" ms
	sleep 1
	figure "rss_${NLIST}_defined" "$(rss_kib)" KiB
	stop_daemon
	# Its floor (startup_N_defined_floor): the same node file parsed by
	# the same in-process test driver, listed, and the rows read.
	startfloor "startup_${NLIST}_defined" "test://$tmp/node.xml" \
	    "$tmp/state-list/hyperlet.db"
	rm -f "$tmp/node.xml"
	# How much of that the libvirt test driver holds (its NLIST domains
	# live inside hyperletd): the floor process after NLIST defines.
	# (its domain XML comes from the create part)
	if [ "$r" = 1 ] && [ -f "$tmp/domain-test.xml" ]; then
		rm -f "$tmp/floor-rss.db"*
		"$FLOOR" "$tmp/floor-rss.db" test:///default "$tmp/domain-test.xml" \
		    "$NLIST" 8 "n$NLIST" | grep '^floor_rss_' >>"$raw" || true
	fi
done

# --- start-up and memory with libvirt's state out of process ------------------
# The production shape (as qemu:///system): the test driver hosted by a
# private libvirtd (tests/libvirtd/start.sh; the one BENCH_LIBVIRTD=1
# started, if any), its test:///default filled with the NLIST domains by
# bench_hold, which keeps a connection open: libvirtd frees test:///default
# when its last client leaves, and hyperletd restarts. Figures:
# startup_N_libvirtd (exec to READY, reconciliation included) and
# rss_N_libvirtd (idle after start-up), rss_N_libvirtd_after_list, each
# with its _floor (bench_startfloor on the same URI and database), and
# libvirtd_rss_N (libvirtd holding the domains, for scale).
lvd_dir=${HL_LIBVIRT_DIR:-}
if [ "${BENCH_STARTUP_LIBVIRTD:-1}" != 0 ] && [ -z "$lvd_dir" ] &&
    [ "$(id -u)" = 0 ]; then
	"$S/tests/libvirtd/reap.sh"
	lvd=$(mktemp -d /tmp/hlv-XXXXXX)
	echo "$$ $(sed 's/^.*) //' /proc/$$/stat | cut -d' ' -f20)" >"$lvd/owner"
	if "$S/tests/libvirtd/start.sh" "$lvd" >/dev/null 2>"$tmp/libvirtd.err"; then
		lvd_dir=$lvd
	else
		log "no private libvirtd here, start-up with libvirtd skipped: $(tail -1 "$tmp/libvirtd.err")"
		"$S/tests/libvirtd/stop.sh" "$lvd"
		lvd=""
	fi
fi
if [ "${BENCH_STARTUP_LIBVIRTD:-1}" != 0 ] && [ -n "$lvd_dir" ]; then
	lvuri="test+unix:///default?socket=$lvd_dir/sock/libvirt-sock"
	log "libvirtd-hosted test driver: defining $NLIST domains ($lvuri)"
	"$B/tests/bench/bench_nodexml" "$tmp/state-list/hyperlet.db" \
	    "$tmp/state-list/instances" "$tmp/state-list/images" kvm \
	    "$tmp/node.xml"
	rm -f "$tmp/hold.ready"
	"$HOLD" "$lvuri" "$tmp/node.xml" "$tmp/hold.ready" 2>>"$tmp/hold.log" &
	hold=$!
	until [ -s "$tmp/hold.ready" ]; do
		kill -0 "$hold" 2>/dev/null ||
		    { log "bench_hold failed: $(tail -1 "$tmp/hold.log")"; exit 1; }
		sleep 0.1
	done
	rm -f "$tmp/node.xml"
	for r in $(seq "$RUNS"); do
		log "start-up/memory with libvirtd run $r/$RUNS ($NLIST instances)"
		start_daemon "$tmp/state-list" "$lvuri" kvm
		figure "startup_${NLIST}_libvirtd" "$startup_ms" ms
		sleep 1
		figure "rss_${NLIST}_libvirtd" "$(rss_kib)" KiB
		"$LOADGEN" list "$base" 100 3 lvd_p100 >>"$raw"
		"$LOADGEN" list "$base" 1000 10 lvd_p1000 >>"$raw"
		figure "rss_${NLIST}_libvirtd_after_list" "$(rss_kib)" KiB
		stop_daemon
		startfloor "startup_${NLIST}_libvirtd" "$lvuri" \
		    "$tmp/state-list/hyperlet.db"
	done
	figure "libvirtd_rss_${NLIST}" \
	    "$(awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$lvd_dir/daemon.pid")/status")" KiB
	kill "$hold" && wait "$hold" 2>/dev/null || true
	hold=""
	if [ -n "$lvd" ]; then
		"$S/tests/libvirtd/stop.sh" "$lvd"
		lvd=""
	fi
fi
;; esac

# --- the event stream: 200 readers beside the create benchmark ---------------
# Create throughput at concurrency 8 without readers and with
# BENCH_EVENTS_READERS (200) streams of GET /v1/events open (bench_sse:
# one thread, epoll), interleaved RUNS times; whether every reader got
# every event (ids first..newest, in order, none twice); delivery latency
# (arrival minus the event's "at", the change's time before its commit, so
# an upper bound; "at" has ms resolution); the daemon's idle RSS with the
# readers connected minus without. per_ip_connection_limit = 0: all the
# readers come from 127.0.0.1 (its default, 64, refuses the 65th).
case " $PARTS " in *" events "*)
EVN=${BENCH_EVENTS_READERS:-200}
SSE=$B/tests/bench/bench_sse
ev_readers() { # LABEL: starts bench_sse, waits for every stream
	"$SSE" "$port" "$EVN" "$1" "$tmp/newest" >"$tmp/sse.out" \
	    2>>"$tmp/sse.log" &
	sse=$!
	i=0
	until grep -q '^ready' "$tmp/sse.out"; do
		i=$((i + 1))
		if [ $i -gt 3000 ] || ! kill -0 "$sse" 2>/dev/null; then
			log "bench_sse: not every stream opened: $(tail -3 "$tmp/sse.log")"
			exit 1
		fi
		sleep 0.01
	done
}
ev_readers_stop() {
	curl -s -H 'Accept: application/json' \
	    "$base/v1/events?after=999999999999" |
	    sed 's/.*"last_id":\([0-9]*\).*/\1/' >"$tmp/newest"
	kill -TERM "$sse"
	wait "$sse" || true
	grep -v '^ready' "$tmp/sse.out" >>"$raw"
}
delivery_figures() { # LABEL: from $tmp/metrics0 and $tmp/metrics1
	# the daemon's own view: commit -> the event's bytes handed to a
	# reader's socket, per reader (/metrics' histogram over this run;
	# quantiles interpolated within a bucket, as Prometheus does)
	awk -v label="$1" -F'[{}" ]+' '/^hyperlet_event_delivery_seconds_bucket/ {
		le = ($3 == "+Inf") ? 1e9 : $3
		if (FILENAME ~ /metrics0$/) a[le] = $4; else { b[le] = $4; les[++n] = le } }
	    END { if (!n) exit
		tot = b[les[n]] - a[les[n]]
		if (tot <= 0) exit
		split("0.5 0.99", qs, " ")
		for (k = 1; k <= 2; k++) {
			want = qs[k] * tot; prev = 0; plo = 0
			for (i = 1; i <= n; i++) {
				c = b[les[i]] - a[les[i]]
				if (c >= want) {
					hi = les[i]; if (hi == 1e9) hi = plo
					v = plo + (hi - plo) * (c > prev ? (want - prev) / (c - prev) : 1)
					break
				}
				prev = c; plo = les[i]
			}
			printf "events_%s_delivery_%s %.3f ms\n", label, (k == 1 ? "p50" : "p99"), v * 1000
		}
		printf "events_%s_delivered %d n\n", label, tot }' \
	    "$tmp/metrics0" "$tmp/metrics1" >>"$raw"
}
start_daemon "$tmp/state-events" test:///default kvm
upload_image
# every request thread opens its store connection on first use: warm them
# all first, so the difference is the readers' own
# (JSON pages, 40 at once: a create would also grow the test driver)
wp=""
for i in $(seq 40); do
	curl -s -o /dev/null -H 'Accept: application/json' \
	    "$base/v1/events?after=0" &
	wp="$wp $!"
done
wait $wp
sleep 1
rss0=$(rss_kib)
ev_readers idle
sleep 2
rss_delta=$(($(rss_kib) - rss0))
ev_readers_stop
figure events_idle_rss_with_readers_delta "$rss_delta" KiB
figure events_idle_rss_without_readers "$rss0" KiB
ev_none_run() {
	t0=$(cpu_ticks)
	"$LOADGEN" create "$base" "$tmp/body.json" "$N" 8 ev_none >>"$raw"
	figure create_ev_none_cpu "$(awk -v a="$t0" -v b="$(cpu_ticks)" \
	    -v n="$N" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')" ms
}
# The two runs take turns going first: the one right after a run's
# deletes pays for them in ext4's inode allocation (it skips inodes
# deleted in the last minute; see the create part), which would
# otherwise always fall on the same side.
for r in $(seq "$RUNS"); do
	log "events run $r/$RUNS: $N creates at concurrency 8, without and with $EVN readers"
	[ $((r % 2)) -eq 1 ] && ev_none_run
	rm -f "$tmp/answers"
	export BENCH_ARRIVALS="$tmp/arrivals"
	ev_readers c8
	unset BENCH_ARRIVALS
	curl -s "$base/metrics" >"$tmp/metrics0"
	t0=$(cpu_ticks)
	BENCH_ANSWERS=$tmp/answers \
	    "$LOADGEN" create "$base" "$tmp/body.json" "$N" 8 ev_readers >>"$raw"
	# hyperletd's CPU per create (and its delete), streaming included
	figure create_ev_readers_cpu "$(awk -v a="$t0" -v b="$(cpu_ticks)" \
	    -v n="$N" -v hz="$HZ" 'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')" ms
	sleep 0.5
	curl -s "$base/metrics" >"$tmp/metrics1"
	ev_readers_stop
	delivery_figures c8
	# committed -> received: arrival minus the arrival of the create's
	# answer (sent after the commit; negative when the event came
	# first), every reader's instance.created
	awk 'NR == FNR { ans[$1] = $2; next }
	    ($1 in ans) { print $2 - ans[$1] }' "$tmp/answers" "$tmp/arrivals" |
	    sort -g | awk '{ v[NR] = $1 } END { if (NR) {
		printf "events_c8_after_answer_p50 %.2f ms\n", v[int((NR + 1) / 2)]
		printf "events_c8_after_answer_p99 %.2f ms\n", v[(int(NR * 0.99) > 0 ? int(NR * 0.99) : 1)] } }' >>"$raw"
	# the same readers beside one client (the machine not saturated):
	# what delivery costs when the hub is not waiting for a core
	ev_readers c1
	curl -s "$base/metrics" >"$tmp/metrics0"
	"$LOADGEN" create "$base" "$tmp/body.json" $((N / 4)) 1 ev_c1 >/dev/null
	sleep 0.5
	curl -s "$base/metrics" >"$tmp/metrics1"
	ev_readers_stop
	delivery_figures c1
	[ $((r % 2)) -eq 0 ] && ev_none_run
done
stop_daemon
;; esac

# --- medians and the summary --------------------------------------------------
awk '
{ v[$1] = v[$1] " " $2; u[$1] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
END {
	for (i = 1; i <= n; i++) {
		k = split(v[order[i]], a, " ")
		for (x = 1; x <= k; x++) for (y = x + 1; y <= k; y++)
			if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
		printf "%s %s %s\n", order[i], a[int((k + 1) / 2)], u[order[i]]
	}
}' "$raw" >"$tmp/median.txt"
# Ratios to the floor: throughput, hyperlet / floor.
awk '
{ val[$1] = $2; unit[$1] = $3 }
END {
	for (k in val) if (k ~ /^create_.*_rps$/ && ("floor_" k) in val && val["floor_" k] > 0)
		printf "ratio_%s %.2f x\n", k, val[k] / val["floor_" k]
	if (val["create_ev_none_rps"] > 0)
		printf "ratio_create_ev_readers_rps %.2f x\n", val["create_ev_readers_rps"] / val["create_ev_none_rps"]
	for (k in val) if (k ~ /^delete_.*_rps$/ && ("floor_" k) in val && val["floor_" k] > 0)
		printf "ratio_%s %.2f x\n", k, val[k] / val["floor_" k]
	# against the safe floor (bench_floord safe): ratio_safe_*
	for (k in val) if (k ~ /^(create|delete)_.*_rps$/ && ("floorsafe_" k) in val && val["floorsafe_" k] > 0)
		printf "ratio_safe_%s %.2f x\n", k, val[k] / val["floorsafe_" k]
	# CPU per request: floor / hyperlet, so that 1 is as cheap as the
	# floor and lower is worse, as for req/s
	for (k in val) if (k ~ /^create_.*_cpu$/ && ("floor_" k) in val && val[k] > 0)
		printf "ratio_%s %.2f x\n", k, val["floor_" k] / val[k]
	# the config drive: how many times faster than the Nova builder
	if (("configdrive_nova_genisoimage" in val) && val["configdrive_build"] > 0)
		printf "ratio_configdrive_nova %.1f x\n", val["configdrive_nova_genisoimage"] / val["configdrive_build"]
	if (("configdrive_nova_genisoimage" in val) && val["configdrive_build_write"] > 0)
		printf "ratio_configdrive_write_nova %.1f x\n", val["configdrive_nova_genisoimage"] / val["configdrive_build_write"]
	# start-up and memory: X next to X_floor; X_own = X - X_floor
	for (k in val) if (k ~ /^(startup|rss)_.*_floor$/) {
		b = substr(k, 1, length(k) - 6)
		if (!(b in val) || val[k] <= 0) continue
		printf "ratio_%s %.2f x\n", b, val[b] / val[k]
		printf "%s_own %d %s\n", b, val[b] - val[k], unit[k]
	}
}' "$tmp/median.txt" | sort >>"$tmp/median.txt"
cat "$tmp/median.txt"
[ -n "${BENCH_OUT:-}" ] && cp "$tmp/median.txt" "$BENCH_OUT"

summary() {
echo "summary (median of $RUNS runs; $N creates per run, \"start\": false; 5 BDMs each)"
awk -v NL="$NLIST" '
{ val[$1] = $2; unit[$1] = $3 }
function g(k) { return (k in val) ? val[k] : "-" }
END {
	printf "%-22s %10s %9s %9s %9s %6s | %10s %7s | %7s %7s %7s\n", "create", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "floor r/s", "ratio", "cpu ms", "floor", "ratio"
	split("test uri", labels, " ")
	for (l = 1; l <= 2; l++) for (c = 1; c <= 32; c *= (c == 1 ? 8 : 4)) {
		p = "create_" labels[l] "_c" c
		if (!((p "_rps") in val)) continue
		printf "%-22s %10s %9s %9s %9s %6s | %10s %7s | %7s %7s %7s\n", labels[l] " c=" c, g(p "_rps"), g(p "_p50"), g(p "_p99"), g(p "_max"), g(p "_errors"), g("floor_" p "_rps"), g("ratio_" p "_rps"), g(p "_cpu"), g("floor_" p "_cpu"), g("ratio_" p "_cpu")
		d = "delete_" labels[l] "_c" c
		printf "%-22s %10s %9s %9s %9s %6s | %10s %7s\n", "  delete", g(d "_rps"), g(d "_p50"), g(d "_p99"), g(d "_max"), g(d "_errors"), g("floor_" d "_rps"), g("ratio_" d "_rps")
		if (("floorsafe_" p "_rps") in val)
			printf "%-22s %10s %9s %9s %9s %6s | %10s %7s\n", "  safe floor c/d", "", "", "", "", "", g("floorsafe_" p "_rps") "/" g("floorsafe_" d "_rps"), g("ratio_safe_" p "_rps") "/" g("ratio_safe_" d "_rps")
	}
	if ("create_placement_on_p50" in val)
		printf "placement: create p50/p99 %s/%s ms with, %s/%s ms without; PUT /allocations p50 %s ms; reconcile of %s: cold %s ms, in step %s ms\n", g("create_placement_on_p50"), g("create_placement_on_p99"), g("create_placement_off_p50"), g("create_placement_off_p99"), g("placement_put_allocation_p50"), NL, g("placement_reconcile_" NL "_cold"), g("placement_reconcile_" NL "_in_step")
	printf "list limit=100:  p50 %s ms, p99 %s ms;  limit=1000: p50 %s ms, p99 %s ms (target p99 < 25)\n", g("list_p100_p50"), g("list_p100_p99"), g("list_p1000_p50"), g("list_p1000_p99")
	for (k in val) if (k ~ /^rss_|^floor_rss_/) printf "%s %s KiB\n", k, val[k] | "sort"
	close("sort")
	for (k in val) if (k ~ /^startup_|^startfloor_|^libvirtd_rss_|^ratio_(startup|rss)_/) printf "%s %s %s\n", k, val[k], unit[k] | "sort"
	close("sort")
	for (k in val) if (k ~ /^model_|^store_|^ratio_model/) printf "%s %s %s\n", k, val[k], unit[k] | "sort"
	close("sort")
	if ("configdrive_build" in val)
		printf "config drive (2 NICs, 4 tagged disks, 16 KiB user data): build %s ms (p99 %s), with the fsync'\''d write %s ms; Nova ConfigDriveBuilder+genisoimage %s ms: %s x faster (goal < 2 ms, >= 10 x)\n", g("configdrive_build"), g("configdrive_build_p99"), g("configdrive_build_write"), g("configdrive_nova_genisoimage"), g("ratio_configdrive_nova")
}' "$tmp/median.txt"
}
echo
summary

# BENCH_MD=FILE: the same as a Markdown report with the machine it ran on.
if [ -n "${BENCH_MD:-}" ]; then
	{
		echo "# hyperlet benchmark results"
		echo
		echo "Produced by \`make bench\` (tests/bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC')."
		echo
		echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)"
		echo "- libvirt $(pkg-config --modversion libvirt 2>/dev/null), SQLite $(pkg-config --modversion sqlite3 2>/dev/null), libmicrohttpd $(pkg-config --modversion libmicrohttpd 2>/dev/null)"
		echo "- hyperletd: $HYPERLETD ($(grep -o "CFLAGS = .*" "$B/Makefile" 2>/dev/null | head -1))"
		echo "- runs: $RUNS per figure (medians), $N creates per run ($NURI on BENCH_URI), list/memory/start-up over $NLIST instances"
		echo "- BENCH_URI: ${BENCH_URI:-none}"
		echo
		echo '```'
		summary
		echo '```'
		echo
		echo "All figures (name value unit, medians):"
		echo
		echo '```'
		cat "$tmp/median.txt"
		echo '```'
	} >"$BENCH_MD"
fi
