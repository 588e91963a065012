#!/bin/sh
# `make fuzz`: builds lib/ with clang and -fsanitize=fuzzer-no-link,address,
# undefined in its own out-of-tree configure (FUZZ_BUILDDIR), links each
# libFuzzer target of tests/fuzz/ and runs it for FUZZ_SECONDS (default 60)
# on a corpus seeded from the tests. A crash stops the run: the input is
# kept under $FUZZ_BUILDDIR/artifacts/; copy it to
# tests/fuzz/regressions/<target>/ and make check replays it from then on.
#
#   FUZZ_SECONDS=60       time per target
#   FUZZ_TARGETS="request xml cfg qcow2"
#   FUZZ_LIBVIRT=shapes   fuzz_xml defines each domain of a shape not seen
#                         before on test:///default with
#                         VIR_DOMAIN_DEFINE_VALIDATE (the default; 1:
#                         every domain, much slower; 0: none)
#   FUZZ_BUILDDIR=DIR     where the clang build lives (kept between runs,
#                         with the grown corpora)
set -eu
S=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
B=${FUZZ_BUILDDIR:-${BUILDDIR:-$(pwd)}/fuzz-build}
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-request xml cfg qcow2}
CC=${FUZZ_CC:-clang}

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link $SAN"

command -v "$CC" >/dev/null ||
    { echo "fuzz: $CC not found (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
[ -x "$S/configure" ] || (cd "$S" && autoreconf -fi)
mkdir -p "$B"
if [ ! -f "$B/Makefile" ]; then
	echo "fuzz: configuring $B with $CC"
	(cd "$B" && "$S/configure" -q CC="$CC" CFLAGS="$CFLAGS" LDFLAGS="$SAN")
fi
make -s -C "$B" -j2 lib/libhyperlet.a

# The same flags the project links with.
LIBS="$(pkg-config --libs libvirt uuid json-c libmicrohttpd sqlite3 \
    libxml-2.0 inih libsystemd) -lpthread -lm"
INCS="-include $B/config.h -I$S/lib $(pkg-config --cflags libvirt json-c libxml-2.0)"

seeds() { # target corpus_dir
	mkdir -p "$2"
	case $1 in
	request | xml)
		cp "$S"/tests/fuzz/seeds/request/* "$2"/ 2>/dev/null || true
		for f in "$S"/tests/data/golden/*.json "$S"/tests/data/domxml/*.json; do
			[ -f "$f" ] && cp "$f" "$2/seed-$(basename "$f")"
		done
		;;
	cfg)
		cp "$S"/tests/fuzz/seeds/cfg/* "$2"/ 2>/dev/null || true
		for f in "$S"/tests/conf/*.conf "$S"/conf/hyperlet.conf; do
			[ -f "$f" ] && cp "$f" "$2/seed-$(basename "$f")"
		done
		;;
	qcow2)
		cp "$S"/tests/fuzz/seeds/qcow2/* "$2"/ 2>/dev/null || true
		;;
	esac
	cp "$S"/tests/fuzz/regressions/"$1"/* "$2"/ 2>/dev/null || true
}

mkdir -p "$B/artifacts"
status=0
for t in $TARGETS; do
	echo "fuzz: building fuzz_$t"
	# shellcheck disable=SC2086
	"$CC" $CFLAGS -fsanitize=fuzzer $INCS -o "$B/fuzz_$t" \
	    "$S/tests/fuzz/fuzz_$t.c" "$B/lib/libhyperlet.a" $LIBS
	seeds "$t" "$B/corpus/$t"
	dict=""
	[ -f "$S/tests/fuzz/$t.dict" ] && dict="-dict=$S/tests/fuzz/$t.dict"
	echo "fuzz: running fuzz_$t for ${SECONDS_EACH}s"
	# shellcheck disable=SC2086
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len=65536 \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$B/artifacts/$t-" $dict "$B/corpus/$t" \
	    >"$B/fuzz_$t.log" 2>&1; then
		echo "fuzz: fuzz_$t FOUND A CRASH; last lines of $B/fuzz_$t.log:" >&2
		grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$B/fuzz_$t.log" |
		    head -20 >&2
		echo "fuzz: keep it: cp $B/artifacts/$t-* $S/tests/fuzz/regressions/$t/" >&2
		status=1
	else
		grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' \
		    "$B/fuzz_$t.log" | sed "s/^/fuzz_$t /"
		grep -E '^fuzz_xml: libvirt validated' "$B/fuzz_$t.log" || true
		echo "fuzz: fuzz_$t: no crash in ${SECONDS_EACH}s, corpus $(ls "$B/corpus/$t" | wc -l) inputs"
	fi
done
exit $status
