#!/bin/sh
# The include firewall of style.md: each foreign library is included by the
# one file that owns it. Prints every violation and exits 1 if any.
cd "${TOP_SRCDIR:-.}" || exit 99
fail=0
check() { # header, allowed files (extended regexp)
	bad=$(grep -l -E "#include[[:space:]]*<$1" lib/*.c lib/*.h daemon/*.c daemon/*.h 2>/dev/null | grep -v -E "^($2)\$")
	for f in $bad; do echo "FAIL: $f includes <$1> (only $2 may)"; fail=1; done
}
check 'sqlite3\.h' 'lib/store\.c'
check 'libvirt/' 'lib/virt\.c'
check 'libxml/' 'lib/xwriter\.c|lib/domaddr\.c'
check 'libisofs' 'lib/configdrive\.c'
check 'uuid/uuid\.h' 'lib/util\.c'
check 'microhttpd\.h' 'daemon/api\.c'
check 'ini\.h' 'lib/cfg\.c'
check 'gnutls/' 'daemon/tls\.c|daemon/api_images\.c'
check 'curl/' 'lib/http\.c'
check 'json-c/' 'lib/jfield\.c|lib/jfield\.h|lib/bdm_json\.c|daemon/api\.c|daemon/api_instances\.c|daemon/api_images\.c|daemon/api_node\.c|lib/store\.c|lib/http\.[ch]|lib/placement\.c'
# No include cycle among lib/'s modules (x.c and x.h are one module x):
# style.md's include graph is a tree. tsort names the modules of a cycle.
pairs=$(for f in lib/*.c lib/*.h; do
	m=$(basename "$f"); m=${m%.*}
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"/]*\)\.h".*/\1/p' "$f" |
		while read -r d; do
			[ "$d" != "$m" ] && [ -f "lib/$d.h" ] && echo "$m $d"
		done
done)
loop=$(printf '%s\n' "$pairs" | tsort 2>&1 >/dev/null)
if [ -n "$loop" ]; then
	echo "FAIL: include cycle among lib/ modules:"
	printf '%s\n' "$loop"
	fail=1
fi
if [ $fail = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
