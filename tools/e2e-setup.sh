#!/bin/bash
# Install what the end-to-end harness (tools/nova_sio/e2e) needs on a
# Debian machine, then check the machine.
#
#   tools/e2e-setup.sh          install the packages, fetch the guest
#                               kernel package, run the capability check
#
# Installs QEMU (TCG is enough), libvirt, XFS tools, busybox and cpio
# for the guest image, and downloads (not installs) Debian's kernel
# package into the nova-sio cache: the guest builder extracts its kernel
# and virtio modules from it, so the host's own kernel and boot loader
# are left alone. Needs root and access to Debian's package archive.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tools/e2e-setup.sh must run as root (apt-get, loop devices)" >&2
    exit 2
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    echo "tools/e2e-setup.sh needs a Debian-based system (apt-get, dpkg)" >&2
    exit 2
fi

pkgs=(qemu-system-x86 qemu-utils seabios libvirt-daemon-system
      libvirt-daemon-driver-qemu libvirt-clients busybox-static cpio
      xfsprogs util-linux mount iproute2 iptables kmod xz-utils zstd
      mariadb-server mariadb-client rabbitmq-server libvirt-dev pkg-config gcc
      rsync e2fsprogs lvm2)
need=()
for pkg in "${pkgs[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#need[@]} -gt 0 ]; then
    # The harness runs its own MariaDB and RabbitMQ: packages must not
    # start theirs (policy-rc.d is Debian's switch for that).
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    apt-get -qq update
    apt-get -qq install -y --no-install-recommends "${need[@]}"
    if [ -n "$made_policy" ]; then rm -f "$policy"; fi
fi

# The guest kernel: the newest linux-image-<abi>-amd64 that
# linux-image-amd64 depends on, downloaded as a .deb.
cache="${NOVA_SIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-sio}/e2e/debs"
mkdir -p "$cache"
kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kpkg" ]; then
    apt-get -qq update
    kpkg="$(apt-cache depends linux-image-amd64 |
            awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
if [ -z "$kpkg" ]; then
    echo "cannot tell which kernel package linux-image-amd64 depends on" >&2
    exit 2
fi
if ! ls "$cache/${kpkg}_"*.deb >/dev/null 2>&1; then
    (cd "$cache" && apt-get download "$kpkg")
fi
echo "guest kernel package: $(ls "$cache/${kpkg}_"*.deb)"

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x .tox/py3/bin/python ]; then python=.tox/py3/bin/python
    else python=python3; fi
fi
PYTHONPATH=tools${PYTHONPATH:+:$PYTHONPATH} "$python" -m nova_sio.e2e check
