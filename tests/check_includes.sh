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
check 'libxml/' 'lib/xwriter\.c'
check 'uuid/uuid\.h' 'lib/util\.c'
check 'microhttpd\.h' 'daemon/api\.c'
check 'ini\.h' 'lib/cfg\.c'
check 'gnutls/' 'daemon/tls\.c|daemon/api_images\.c'
check 'json-c/' 'lib/jfield\.c|lib/jfield\.h|lib/bdm_json\.c|daemon/api\.c|daemon/api_instances\.c|daemon/api_images\.c|lib/store\.c'
if [ $fail = 0 ]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
exit $fail
