#!/bin/sh
# The real hyperletd binary as an operator meets it: --help, --version,
# usage errors, --check-config on every golden case of tests/conf (output
# compared with the .ok file byte for byte, exit 0 or 1), command-line
# overrides, the `db` commands on a temporary state directory (version,
# sync, online-migrate, a newer database refused), and the life cycle:
# start on 127.0.0.1 port 0 (the port is read from the log), wait for
# /v1/health with curl, reconciliation of rows a crash left, SIGHUP keeps
# it serving and re-reads the level, SIGTERM ends it with status 0 within
# drain_timeout plus a margin, the token file reaching the API, the
# background online migration, and sd_notify against a fake NOTIFY_SOCKET.
set -u
top=${TOP_SRCDIR:-.}
bin=${HYPERLETD:-daemon/hyperletd}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
tmp=$(mktemp -d) || exit 99
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
pass=0
fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
no() { echo "FAIL: $*"; fail=$((fail + 1)); }
check() { # description, then the test as arguments
	d=$1
	shift
	if "$@"; then ok "$d"; else no "$d"; fi
}
# STORE_SCHEMA_VERSION (lib/store.h)
schema=11
# run: exit status in $rc, stdout+stderr in $tmp/out
run() {
	"$@" >"$tmp/out" 2>&1
	rc=$?
}
has() { grep -q -e "$1" "$tmp/out"; }

# --- options ----------------------------------------------------------------
run "$bin" --help
check "--help exits 0" [ "$rc" = 0 ]
for o in --config --listen --state-dir --libvirt-uri --virt-type \
    --foreground --check-config --max-count --help --version; do
	check "--help mentions $o" has "$o"
done
check "--help shows the db commands" has "db online-migrate"

run "$bin" --version
check "--version exits 0" [ "$rc" = 0 ]
check "--version prints the name and version" \
    grep -qE '^hyperletd [0-9]+\.[0-9]+\.[0-9]+ ' "$tmp/out"

run "$bin" --no-such-option
check "an unknown option exits 2" [ "$rc" = 2 ]
run "$bin" frobnicate
check "an unknown command exits 2" [ "$rc" = 2 ]
run "$bin" --max-count 2 db version
check "--max-count outside online-migrate exits 2" [ "$rc" = 2 ]
run "$bin" db online-migrate --max-count zero
check "--max-count must be a positive integer" [ "$rc" = 2 ]

# --- --check-config ---------------------------------------------------------
n=0
for conf in "$top"/tests/conf/pass-*.conf "$top"/tests/conf/fail-*.conf; do
	name=$(basename "$conf" .conf)
	n=$((n + 1))
	(cd "$top/tests/conf" && "$bin" --check-config --config "$name.conf") \
	    >"$tmp/out" 2>&1
	rc=$?
	case $name in pass-*) want=0 ;; *) want=1 ;; esac
	if [ "$rc" != "$want" ]; then
		no "--check-config $name.conf exits $rc, expected $want"
	elif ! cmp -s "$tmp/out" "$top/tests/conf/$name.ok"; then
		no "--check-config $name.conf: output differs from $name.ok:"
		diff "$top/tests/conf/$name.ok" "$tmp/out" | sed 's/^/  /'
	else
		ok "--check-config $name.conf matches $name.ok"
	fi
done
check "golden config cases were found" [ "$n" -ge 20 ]

run "$bin" --check-config
check "the embedded defaults are a valid configuration" [ "$rc" = 0 ]
check "--check-config prints 'configuration OK'" \
    [ "$(cat "$tmp/out")" = "configuration OK" ]
run "$bin" --check-config --config "$top/conf/hyperlet.conf"
check "the shipped conf/hyperlet.conf is valid" [ "$rc" = 0 ]
run "$bin" --check-config --config "$tmp/missing.conf"
check "a missing --config file is an error" [ "$rc" = 1 ]
check "a missing file is named" has "missing.conf: No such file"
run "$bin" --check-config --listen nowhere
check "a bad --listen is refused" [ "$rc" = 1 ]
check "a bad --listen names the flag" \
    [ "$(cat "$tmp/out")" = "--listen: listen: expected ADDR:PORT or [ADDR]:PORT, got 'nowhere'" ]
run "$bin" --check-config --listen 0.0.0.0:8080
check "--listen on a non-loopback address needs a token" [ "$rc" = 1 ]
check "... and says so" has "not a loopback address: set auth_token_file"
run "$bin" --check-config --virt-type xen
check "a bad --virt-type is refused" [ "$rc" = 1 ]
(cd "$top/tests/conf" && "$bin" --check-config --config pass-all-keys.conf \
    --listen 127.0.0.1:1 --virt-type kvm) >"$tmp/out" 2>&1
check "flags override the file" [ $? = 0 ]

# --- db commands --------------------------------------------------------------
st=$tmp/state
run "$bin" --state-dir "$st" db version
check "db version of no database prints 0" [ "$(cat "$tmp/out")" = 0 ]
check "db version creates nothing" [ ! -e "$st/hyperlet.db" ]
run "$bin" --state-dir "$st" db online-migrate
check "db online-migrate without a database fails with 2" [ "$rc" = 2 ]
run "$bin" --state-dir "$st" db sync
check "db sync exits 0" [ "$rc" = 0 ]
check "db sync reaches schema version $schema" has "^schema version $schema\$"
check "db sync made the state directory 0750" \
    [ "$(stat -c %a "$st")" = 750 ]
run "$bin" --state-dir "$st" db version
check "db version after sync prints $schema" [ "$(cat "$tmp/out")" = "$schema" ]
run "$bin" --state-dir "$st" db online-migrate --max-count 2
check "db online-migrate --max-count 2 exits 0 when nothing is left" \
    [ "$rc" = 0 ]
check "db online-migrate prints found/done" \
    [ "$(cat "$tmp/out")" = "found 0, done 0" ]
run "$bin" --state-dir "$st" db sync
check "db sync is idempotent" [ "$rc" = 0 ]

# A version-1 database (schema 1 as released, as in check_store.c: no BDM
# uuids) with one instance and five BDMs, written with the sqlite3 shell.
make_v1() { # dir
	mkdir -p "$1"
	sqlite3 "$1/hyperlet.db" <<'SQL'
CREATE TABLE instances (
 id INTEGER PRIMARY KEY,
 uuid TEXT NOT NULL UNIQUE
  CHECK (length(uuid) = 36 AND uuid NOT GLOB '*[^0-9a-f-]*'),
 name TEXT NOT NULL, vcpus INTEGER NOT NULL, memory_mb INTEGER NOT NULL,
 root_gb INTEGER NOT NULL, ephemeral_gb INTEGER NOT NULL,
 swap_mb INTEGER NOT NULL, image_ref TEXT, hw_disk_bus TEXT,
 hw_cdrom_bus TEXT, hw_scsi_model TEXT, hw_machine_type TEXT,
 metadata TEXT NOT NULL DEFAULT '{}',
 config_drive INTEGER NOT NULL DEFAULT 0,
 state TEXT NOT NULL CHECK (state IN
  ('building', 'running', 'stopped', 'error', 'deleting')),
 request_digest TEXT, generation INTEGER NOT NULL DEFAULT 1,
 created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX instances_image_ref ON instances (image_ref);
CREATE TABLE block_device_mappings (
 id INTEGER PRIMARY KEY,
 instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
 source_type TEXT NOT NULL, destination_type TEXT NOT NULL,
 guest_format TEXT, boot_index INTEGER, device_type TEXT, disk_bus TEXT,
 device_name TEXT, volume_size INTEGER, image_id TEXT, volume_id TEXT,
 snapshot_id TEXT, tag TEXT,
 delete_on_termination INTEGER NOT NULL DEFAULT 0, connection_info TEXT);
CREATE INDEX block_device_mappings_instance
 ON block_device_mappings (instance_id, id);
CREATE INDEX block_device_mappings_image ON block_device_mappings (image_id);
CREATE TABLE images (
 id TEXT PRIMARY KEY CHECK (length(id) = 36 AND id NOT GLOB '*[^0-9a-f-]*'),
 format TEXT NOT NULL, virtual_size INTEGER NOT NULL,
 file_size INTEGER NOT NULL, checksum TEXT,
 properties TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL);
INSERT INTO instances (uuid, name, vcpus, memory_mb, root_gb, ephemeral_gb,
 swap_mb, image_ref, state, created_at, updated_at)
 VALUES ('0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11', 'old', 1, 512, 1, 0, 0,
 '5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b', 'stopped', 1000, 1000);
INSERT INTO block_device_mappings (instance_id, source_type,
 destination_type, boot_index, device_type, disk_bus, device_name, image_id,
 delete_on_termination)
 VALUES (1, 'image', 'local', 0, 'disk', 'virtio', '/dev/vda',
 '5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b', 1);
INSERT INTO block_device_mappings (instance_id, source_type,
 destination_type, device_type, disk_bus, device_name, volume_size,
 volume_id, connection_info) VALUES
 (1, 'volume', 'volume', 'disk', 'virtio', '/dev/vdb', 1,
  '7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f61', '{"driver_volume_type":"file"}'),
 (1, 'volume', 'volume', 'disk', 'virtio', '/dev/vdc', 1,
  '7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f62', '{"driver_volume_type":"file"}'),
 (1, 'volume', 'volume', 'disk', 'virtio', '/dev/vdd', 1,
  '7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f63', '{"driver_volume_type":"file"}'),
 (1, 'volume', 'volume', 'disk', 'virtio', '/dev/vde', 1,
  '7d1e2f3a-4b5c-4d6e-9f0a-1b2c3d4e5f64', '{"driver_volume_type":"file"}');
PRAGMA user_version = 1;
SQL
}
q() { sqlite3 "$1/hyperlet.db" "$2"; }

if command -v sqlite3 >/dev/null; then
	old=$tmp/old
	make_v1 "$old"
	run "$bin" --state-dir "$old" db version
	check "db version of a version-1 database prints 1" \
	    [ "$(cat "$tmp/out")" = 1 ]
	run "$bin" --state-dir "$old" db online-migrate
	check "online-migrate before db sync fails with 2" [ "$rc" = 2 ]
	check "... saying to run db sync" has "db sync"
	run "$bin" --state-dir "$old" db sync
	check "db sync stops at 2 while rows lack a uuid" \
	    has "^schema version 2$"
	check "... and says how many rows are left" \
	    has "^5 block device mappings still need a uuid"
	run "$bin" --state-dir "$old" db online-migrate --max-count 2
	check "online-migrate --max-count 2 exits 1 while rows remain" \
	    [ "$rc" = 1 ]
	check "... printing 'found 2, done 2'" has "^found 2, done 2$"
	check "... and '3 left'" has "^3 left$"
	check "... leaving 3 rows without a uuid" \
	    [ "$(q "$old" 'SELECT count(*) FROM block_device_mappings WHERE uuid IS NULL')" = 3 ]
	run "$bin" --state-dir "$old" db online-migrate --max-count 2
	check "a second batch of 2: found 2, done 2" has "^found 2, done 2$"
	run "$bin" --state-dir "$old" db online-migrate
	check "online-migrate without --max-count finishes (exit 0)" \
	    [ "$rc" = 0 ]
	check "... printing 'found 1, done 1'" \
	    [ "$(cat "$tmp/out")" = "found 1, done 1" ]
	check "every BDM has a distinct uuid" \
	    [ "$(q "$old" 'SELECT count(DISTINCT uuid) FROM block_device_mappings')" = 5 ]
	run "$bin" --state-dir "$old" db version
	check "the last batch moved the schema to $schema" \
	    [ "$(cat "$tmp/out")" = "$schema" ]
	run "$bin" --state-dir "$old" db online-migrate --max-count 2
	check "online-migrate again is a no-op" \
	    [ "$rc" = 0 ] && [ "$(cat "$tmp/out")" = "found 0, done 0" ]

	newer=$tmp/newer
	mkdir -p "$newer"
	cp "$st/hyperlet.db" "$newer/hyperlet.db"
	sqlite3 "$newer/hyperlet.db" 'PRAGMA user_version = 99;'
	run "$bin" --state-dir "$newer" db sync
	check "db sync refuses a newer database" [ "$rc" = 1 ]
	check "... saying it is newer" has "newer"
	run "$bin" --state-dir "$newer" --listen 127.0.0.1:0
	check "the daemon refuses to start on a newer database" [ "$rc" = 1 ]
	check "... and logs why" has "newer"
	check "... leaving it untouched" \
	    [ "$(sqlite3 "$newer/hyperlet.db" 'PRAGMA user_version;')" = 99 ]
else
	echo "note: sqlite3 not installed; newer-database checks skipped"
fi

# --- life cycle ---------------------------------------------------------------
# wait_for: polls (up to $2 tenths of a second) until "$1" succeeds
wait_for() {
	i=0
	while ! eval "$1"; do
		i=$((i + 1))
		[ "$i" -ge "$2" ] && return 1
		sleep 0.1
	done
}
alive() { kill -0 "$pid" 2>/dev/null; }

run_daemon() {
	log=$tmp/daemon.log
	: >"$log"
	"$bin" "$@" 2>"$log" &
	pid=$!
}

cfg=$tmp/hyperlet.conf
printf '[log]\nlevel = info\n[api]\ndrain_timeout = 3\n' >"$cfg"
life=$tmp/life
if ! command -v curl >/dev/null; then
	echo "note: curl not installed; life-cycle checks skipped"
else
	run_daemon --config "$cfg" --state-dir "$life" --listen 127.0.0.1:0 \
	    --virt-type qemu --foreground
	wait_for 'grep -q "serving on" "$log" || ! alive' 100
	port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
	check "the daemon logs the port it serves on" [ -n "$port" ]
	check "the daemon is running" alive
	health() {
		curl -s --noproxy '*' -o "$tmp/health" -w '%{http_code}' \
		    "http://127.0.0.1:$port/v1/health" 2>/dev/null
	}
	wait_for '[ "$(health)" = 200 ]' 50
	check "GET /v1/health answers 200" [ "$(health)" = 200 ]
	check "the state directory was created" [ -d "$life/instances" ]
	check "the database was created" [ -f "$life/hyperlet.db" ]
	check "log lines carry a timestamp and a level" \
	    grep -qE '^[0-9-]+T[0-9:.]+Z info: ' "$log"

	printf '[log]\nlevel = debug\n[api]\ndrain_timeout = 3\n' >"$cfg"
	kill -HUP "$pid"
	wait_for 'grep -q "SIGHUP" "$log"' 50
	check "SIGHUP is logged" grep -q "SIGHUP: log level debug" "$log"
	check "SIGHUP keeps the daemon running" alive
	check "... and serving" [ "$(health)" = 200 ]
	printf '[log]\nlevel = loud\n' >"$cfg"
	kill -HUP "$pid"
	wait_for 'grep -q "keeping the current" "$log"' 50
	check "a SIGHUP with a broken file keeps the daemon running" alive
	check "... and says why" grep -q "conf:2: level: expected one of" "$log"

	kill -TERM "$pid"
	t0=$(date +%s)
	wait "$pid"
	rc=$?
	t1=$(date +%s)
	pid=
	check "SIGTERM: exit status 0 (got $rc)" [ "$rc" = 0 ]
	check "SIGTERM: gone within drain_timeout + 5 s" [ $((t1 - t0)) -le 8 ]
	check "SIGTERM: 'stopped' is logged" grep -q "stopped$" "$log"

	# a second start on the same state directory finds everything in place
	run_daemon --state-dir "$life" --listen 127.0.0.1:0 --virt-type qemu
	wait_for 'grep -q "serving on" "$log" || ! alive' 100
	check "a restart on the same state directory serves" alive
	kill -INT "$pid"
	wait "$pid"
	rc=$?
	pid=
	check "SIGINT: exit status 0" [ "$rc" = 0 ]

	# SIGTERM drains: an upload in flight (256 KiB at 128 KiB/s) still
	# completes; one that would outlast drain_timeout (3 s) is cut off
	upload() { # bytes, rate, image id, output file
		head -c "$1" /dev/urandom >"$tmp/up.$3"
		curl -s --noproxy '*' --limit-rate "$2" -o /dev/null \
		    -w '%{http_code}' -X PUT \
		    -H 'Content-Type: application/octet-stream' \
		    --data-binary @"$tmp/up.$3" \
		    "http://127.0.0.1:$port/v1/images/$3" >"$4" 2>/dev/null
	}
	printf '[api]\ndrain_timeout = 3\n' >"$tmp/drain.conf"
	for slow in no yes; do
		run_daemon --config "$tmp/drain.conf" --state-dir "$life" \
		    --listen 127.0.0.1:0 --virt-type qemu
		wait_for 'grep -q "serving on" "$log" || ! alive' 100
		port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
		if [ $slow = no ]; then
			upload 262144 128k 6a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b \
			    "$tmp/code" &
		else
			upload 2097152 64k 7a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b \
			    "$tmp/code" &
		fi
		cpid=$!
		# SIGTERM once the upload is in flight (/metrics counts it
		# and itself); a fixed sleep let a loaded machine send it
		# before curl had connected
		wait_for 'curl -s --noproxy "*" "http://127.0.0.1:$port/metrics" |
		    grep -q "^hyperlet_http_requests_in_flight [2-9]"' 300
		t0=$(date +%s)
		kill -TERM "$pid"
		wait "$pid"
		rc=$?
		t1=$(date +%s)
		pid=
		wait "$cpid"
		if [ $slow = no ]; then
			check "SIGTERM lets an upload in flight finish (201)" \
			    [ "$(cat "$tmp/code")" = 201 ]
			check "... then exits 0" [ "$rc" = 0 ]
		else
			check "SIGTERM cuts an upload that outlasts drain_timeout" \
			    [ "$(cat "$tmp/code")" != 201 ]
			# (the upload alone would take 32 s; the margin is
			# for teardown and an ASan leak check on a busy host)
			check "... and exits 0 within drain_timeout + 7 s" \
			    sh -c "[ $rc = 0 ] && [ $((t1 - t0)) -le 10 ]"
		fi
	done

	# a real instance across a restart: test:///default forgets domains
	# when the process ends, so the next start must redefine and restart
	# it from its row
	inst=$tmp/inst
	run_daemon --state-dir "$inst" --listen 127.0.0.1:0 --virt-type qemu
	wait_for 'grep -q "serving on" "$log" || ! alive' 100
	port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
	img=5a7c1f0e-2b3d-4e5f-8a9b-0c1d2e3f4a5b
	head -c 1048576 /dev/zero >"$tmp/img.raw"
	api() { # method, path, [curl args...]: body in $tmp/body, code out
		m=$1 path=$2
		shift 2
		curl -s --noproxy '*' -o "$tmp/body" -w '%{http_code}' \
		    -X "$m" "$@" "http://127.0.0.1:$port$path" 2>/dev/null
	}
	check "an image is uploaded" [ "$(api PUT /v1/images/$img \
	    -H 'Content-Type: application/octet-stream' \
	    --data-binary @"$tmp/img.raw")" = 201 ]
	check "an instance is created" [ "$(api POST /v1/instances \
	    -H 'Content-Type: application/json' \
	    -d '{"name": "survivor", "imageRef": "'$img'", "flavor":
	        {"vcpus": 1, "memory_mb": 256, "root_gb": 1,
	         "ephemeral_gb": 0, "swap": 0}}')" = 201 ]
	uuid=$(sed -n 's/^{"uuid":"\([0-9a-f-]*\)".*/\1/p' "$tmp/body")
	check "... with a uuid" [ -n "$uuid" ]
	kill -TERM "$pid"
	wait "$pid"
	pid=
	run_daemon --state-dir "$inst" --listen 127.0.0.1:0 --virt-type qemu
	wait_for 'grep -q "serving on" "$log" || ! alive' 100
	port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
	check "after a restart reconciliation redefines and restarts it" \
	    grep -q "1 instances, 1 redefined (1 restarted)" "$log"
	check "... and the API shows it running" \
	    [ "$(api GET /v1/instances/$uuid)" = 200 ]
	check "... (state running)" grep -q '"state":"running"' "$tmp/body"
	check "... with its domain defined" \
	    [ "$(api GET /v1/instances/$uuid/domain)" = 200 ]
	kill -TERM "$pid"
	wait "$pid"
	pid=

	# a token file from the config reaches the API
	printf 'tok-123\n' >"$tmp/token"
	printf '[api]\nauth_token_file = %s\n' "$tmp/token" >"$tmp/auth.conf"
	run_daemon --config "$tmp/auth.conf" --state-dir "$life" \
	    --listen 0.0.0.0:0 --virt-type qemu
	wait_for 'grep -q "serving on" "$log" || ! alive' 100
	port=$(sed -n 's/.*serving on .* (port \([0-9]*\),.*/\1/p' "$log")
	check "with auth_token_file, a non-loopback address is served" alive
	code() { # token or "", path
		curl -s --noproxy '*' -o /dev/null -w '%{http_code}' \
		    ${1:+-H "Authorization: Bearer $1"} \
		    "http://127.0.0.1:$port$2" 2>/dev/null
	}
	check "/v1/health needs no token" [ "$(code "" /v1/health)" = 200 ]
	check "/v1/instances without the token is 401" \
	    [ "$(code "" /v1/instances)" = 401 ]
	check "/v1/instances with a wrong token is 401" \
	    [ "$(code wrong /v1/instances)" = 401 ]
	check "/v1/instances with the token is 200" \
	    [ "$(code tok-123 /v1/instances)" = 200 ]
	check "the token never reaches the log" sh -c "! grep -q tok-123 '$log'"
	kill -TERM "$pid"
	wait "$pid"
	pid=

	# reconciliation runs before the API serves: a delete and a create
	# that a crash interrupted (rows only, no domain) are finished and
	# rolled back
	if command -v sqlite3 >/dev/null; then
		rec=$tmp/rec
		"$bin" --state-dir "$rec" db sync >/dev/null
		q "$rec" "INSERT INTO instances (uuid, name, vcpus, memory_mb,
		    root_gb, ephemeral_gb, swap_mb, state, created_at,
		    updated_at) VALUES
		    ('0c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11', 'gone', 1, 256, 1,
		     0, 0, 'deleting', 1, 1),
		    ('1c3a9d52-7f1e-4b2a-9d3c-5b1f0e2a7c11', 'half', 1, 256, 1,
		     0, 0, 'building', 1, 1)"
		run_daemon --state-dir "$rec" --listen 127.0.0.1:0 \
		    --virt-type qemu
		wait_for 'grep -q "serving on" "$log" || ! alive' 100
		check "reconciliation is logged before serving" \
		    sh -c "grep -n -e 'reconciliation:' -e 'serving on' '$log' |
		    head -1 | grep -q reconciliation"
		check "... finishing the delete and rolling back the build" \
		    grep -q "2 instances, .* 1 rolled back, 1 deletes finished" \
		    "$log"
		check "... leaving no row" \
		    [ "$(q "$rec" 'SELECT count(*) FROM instances')" = 0 ]
		kill -TERM "$pid"
		wait "$pid"
		pid=
	fi

	if command -v sqlite3 >/dev/null; then
		bg=$tmp/bg
		make_v1 "$bg"
		run_daemon --state-dir "$bg" --listen 127.0.0.1:0 \
		    --virt-type qemu
		wait_for 'grep -q "online migration complete" "$log" || ! alive' 100
		# (reconciliation, which loads every instance, may have given
		# the rows their uuids first: found is 0..5)
		check "the daemon completes the online migration" \
		    grep -q "online migration complete: found [0-5], done" "$log"
		kill -TERM "$pid"
		wait "$pid"
		pid=
		check "... reaching schema version $schema" \
		    [ "$(q "$bg" 'PRAGMA user_version')" = "$schema" ]
		check "... with a uuid on every BDM" \
		    [ "$(q "$bg" 'SELECT count(*) FROM block_device_mappings WHERE uuid IS NULL')" = 0 ]
	fi
fi

# sd_notify: a datagram socket standing in for systemd records READY=1,
# WATCHDOG=1 every half period and STOPPING=1
if command -v python3 >/dev/null; then
	ns=$tmp/notify.sock
	python3 - "$ns" "$tmp/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
with open(sys.argv[2], "w") as f:
    try:
        while True:
            m = s.recv(4096).decode()
            f.write(m.replace("\n", " ") + "\n")
            f.flush()
            if "STOPPING=1" in m:
                break
    except socket.timeout:
        pass
PY
	lpid=$!
	wait_for '[ -S "$ns" ]' 50
	NOTIFY_SOCKET=$ns WATCHDOG_USEC=400000 run_daemon --state-dir "$life" \
	    --listen 127.0.0.1:0
	wait_for 'grep -q "READY=1" "$tmp/notify.log" 2>/dev/null || ! alive' 100
	check "READY=1 is sent to NOTIFY_SOCKET" grep -q "READY=1" "$tmp/notify.log"
	check "STATUS= names the start-up steps before READY=1" \
	    sh -c "grep -n -e STATUS=reconciling -e READY=1 '$tmp/notify.log' |
	    head -1 | grep -q STATUS=reconciling"
	sleep 1
	n=$(grep -c "^WATCHDOG=1" "$tmp/notify.log")
	check "WATCHDOG=1 every half period ($n in ~1 s at 400 ms)" [ "$n" -ge 3 ]
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	pid=
	wait "$lpid"
	check "STOPPING=1 is sent on SIGTERM" grep -q "STOPPING=1" "$tmp/notify.log"
	check "... and the status is 0" [ "$rc" = 0 ]
else
	echo "note: python3 not installed; sd_notify checks skipped"
fi

run_daemon --state-dir "$life" --listen 0.0.0.0:0
wait "$pid"
rc=$?
pid=
check "a non-loopback --listen without a token does not start" [ "$rc" = 1 ]

# [node]: a reserved amount beyond what libvirt reports (test:///default
# has 3072 MiB) is refused at start-up, naming the file and line
bad=$tmp/reserved.conf
printf '[node]\nreserved_host_memory_mb = 4096\n' >"$bad"
run "$bin" --config "$bad" --state-dir "$tmp/reserved" --listen 127.0.0.1:0
check "a reserved amount beyond the node's total does not start" [ "$rc" = 1 ]
check "... naming file:line and the key" \
    has "reserved.conf:2: reserved_host_memory_mb: more MEMORY_MB reserved"

if [ "$fail" != 0 ] && [ -f "$tmp/daemon.log" ]; then
	echo "--- last daemon log:"
	sed 's/^/  /' "$tmp/daemon.log"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
