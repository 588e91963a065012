#!/usr/bin/python3
"""Nova's own config drive builder on the files hyperlet's drive holds.

Usage: bench_configdrive_nova.py DIR [iterations]

DIR is a tree of the drive's files (bench_configdrive --dump DIR writes
it). Each iteration gives them to nova.virt.configdrive.ConfigDriveBuilder
(Debian's python3-nova) and has it make the drive, as Nova's libvirt
driver does: the files written to a temporary directory, then
genisoimage. Prints "configdrive_nova_genisoimage <median> ms" and its
p99, as tests/bench/run.sh reads figures. Exits 77 when python3-nova or
genisoimage is not installed.
"""

import os
import shutil
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    src = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    try:
        import nova.conf
        from nova.virt import configdrive
    except ImportError as e:
        print(f"bench_configdrive_nova: {e}", file=sys.stderr)
        return 77
    # no nova.conf: the defaults (mkisofs_cmd = genisoimage, iso9660)
    nova.conf.CONF([], project="nova", default_config_files=[],
                   default_config_dirs=[])
    if shutil.which(nova.conf.CONF.mkisofs_cmd) is None:
        print("bench_configdrive_nova: no genisoimage", file=sys.stderr)
        return 77
    files = []
    for root, _dirs, names in os.walk(src):
        for name in names:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                files.append((os.path.relpath(p, src), f.read()))
    lat = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "disk.config")
        for _ in range(n):
            t0 = time.perf_counter()
            with configdrive.ConfigDriveBuilder() as b:
                b.mdfiles = list(files)
                b.make_drive(out)
            lat.append((time.perf_counter() - t0) * 1000.0)
            os.unlink(out)
    lat.sort()
    print(f"configdrive_nova_genisoimage {lat[len(lat) // 2]:.3f} ms")
    print(f"configdrive_nova_genisoimage_p99 {lat[int(len(lat) * 0.99)]:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
