#!/bin/sh
# make check: tests/check_compute again, against a private libvirtd (the
# plain tests/check_compute entry covers test:///default only): attach and
# detach, disks that are real files (a lost root disk), kill -9 mid-create.
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/with-libvirtd.sh" "${TOP_BUILDDIR:-.}/tests/check_compute"
