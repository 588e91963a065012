#!/bin/sh
# hyperletd against the real OpenStack Placement (Debian's python3-placement,
# started and stopped by tests/placement_proof.py on a free loopback port);
# skips (77) where placement-api is not installed.
here=$(cd "$(dirname "$0")" && pwd)
: "${HYPERLETD:?HYPERLETD is not set (run under make check)}"
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
command -v placement-api >/dev/null ||
    { echo "SKIP: no placement-api (python3-placement)"; exit 77; }
exec python3 "$here/placement_proof.py"
