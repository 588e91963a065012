#!/bin/sh
# make check: tests/check_virt again, this time against a private libvirtd
# (the plain tests/check_virt entry covers test:///default only).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/with-libvirtd.sh" "${TOP_BUILDDIR:-.}/tests/check_virt"
