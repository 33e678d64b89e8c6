#!/bin/bash
# Set up a fresh machine and run one of the project's jobs.
#
#   tools/bootstrap.sh releases   emit and strictly verify every diff
#   tools/bootstrap.sh test       the default test command (CI)
#   tools/bootstrap.sh e2e [VERSION]   the real-cloud scenario (root)
#   tools/bootstrap.sh e2e-distro   its short slice on Debian's packaged Nova
#   tools/bootstrap.sh tempest [VERSION] [REGEX]   Tempest on that cloud
#   tools/bootstrap.sh e2e-bench [VERSION]   image backends side by side
#   tools/bootstrap.sh <toxenv>   any tox environment
#
# System packages (GNU patch, git, qemu-img) are installed with apt-get
# when missing and we are root; tox is installed into a private venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v patch >/dev/null || need+=(patch)
command -v git >/dev/null || need+=(git)
command -v qemu-img >/dev/null || need+=(qemu-utils)
if command -v dpkg >/dev/null; then
    # Nova's own unit tests of old series build C extensions from source
    # (lxml, Pillow, psycopg2, python-pcre, ...) and run genisoimage.
    for pkg in build-essential pkg-config libxml2-dev libxslt1-dev \
            libpq-dev zlib1g-dev libjpeg-dev libffi-dev libssl-dev \
            libpcre3-dev genisoimage e2fsprogs dosfstools xfsprogs; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get -qq update
        DEBIAN_FRONTEND=noninteractive apt-get -qq install -y "${need[@]}"
    else
        echo "please install: ${need[*]}" >&2
        exit 2
    fi
fi

cache="${NOVA_SIO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nova-sio}"
mkdir -p "$cache"
py=""
for cand in python3.12 python3.11 python3.13 python3.10 python3; do
    if "$cand" -c 'import sys; assert sys.version_info >= (3, 9)' \
            >/dev/null 2>&1; then py="$cand"; break; fi
done
if [ -z "$py" ]; then
    echo "Python 3.9 or newer is required" >&2
    exit 2
fi
if [ ! -x "$cache/tox-venv/bin/tox" ]; then
    rm -rf "$cache/tox-venv"
    "$py" -m venv "$cache/tox-venv"
    "$cache/tox-venv/bin/pip" install -q 'tox>=4,<5'
fi
tox="$cache/tox-venv/bin/tox"

job="${1:-test}"
shift || true
# Pass "--" only with arguments: an empty one would replace the defaults
# of {posargs:...} in tox.ini.
run_tox() {
    local env="$1"
    shift
    if [ $# -gt 0 ]; then "$tox" -e "$env" -- "$@"; else "$tox" -e "$env"; fi
}
# The real-cloud jobs: the py3 tox env first, because the set-up's last
# check runs the harness in it (a machine's own python3 may lack pbr and
# the project's requirements), then the machine's packages.
e2e_setup() {
    "$tox" run -q -e py3 --notest
    PYTHON=.tox/py3/bin/python tools/e2e-setup.sh
}
case "$job" in
    releases)
        run_tox releases "$@"
        exit $?
        ;;
    test)
        # Each step prints failures, summaries and progress lines; the
        # closing lines sum what ran and name every skip.
        logs="$(mktemp -d)"
        trap 'rm -rf "$logs"' EXIT
        rc=0
        step() {
            local name="$1"
            shift
            echo "== $name"
            if ! "$@" 2>&1 | tee "$logs/$name.log"; then
                echo "FAILED step $name" | tee -a "$logs/$name.log"
                rc=1
            fi
        }
        # The verify table lists every release: show only the ones that
        # are not ok, and the totals.
        verify_all() {
            "$tox" -e verify -- --quiet |
                awk '$2 == "ok" && NF >= 3 { next } { print }'
        }
        # The short slice of the real-cloud scenario (boot, live
        # migration, delete on two hosts) where the machine allows it:
        # root, loop devices, network namespaces (KVM is not needed).
        e2e_short() {
            local why=""
            if [ "$(id -u)" != 0 ]; then why="not root"
            elif [ ! -e /dev/loop-control ]; then why="no loop devices"
            elif ! command -v unshare >/dev/null ||
                    ! unshare --net true 2>/dev/null; then
                why="no network namespaces"
            elif ! command -v apt-get >/dev/null; then
                why="not a Debian system (apt-get)"
            fi
            if [ -n "$why" ]; then
                echo "SKIPPED e2e-short: the real-cloud scenario needs" \
                    "root, loop devices and network namespaces: $why"
                return 0
            fi
            if ! tools/e2e-setup.sh >"$logs/e2e-setup.out" 2>&1; then
                cat "$logs/e2e-setup.out"
                return 1
            fi
            "$tox" exec -q -e py3 -- python -m nova_sio.e2e run --slice short
        }
        step py3 run_tox py3 "$@"
        step verify verify_all
        step nova-newest "$tox" -e nova-newest
        # Kilo comes only from git: without access the summary lists it.
        step kilo "$tox" -e kilo
        step e2e-short e2e_short
        "$py" - "$logs" <<'PYEOF' || rc=1
import os
import re
import sys

total = {'passed': 0, 'failed': 0, 'skipped': 0}
skips = []
bad = []
for name in ('py3', 'verify', 'nova-newest', 'kilo', 'e2e-short'):
    path = os.path.join(sys.argv[1], name + '.log')
    text = open(path, errors='replace').read() if os.path.exists(path) \
        else ''
    found = False
    if name == 'py3':
        for key, label in (('passed', 'Passed'), ('failed', 'Failed'),
                           ('skipped', 'Skipped')):
            m = re.search(r'^ - %s: (\d+)' % label, text, re.M)
            if m:
                total[key] += int(m.group(1))
                found = True
    elif name == 'e2e-short':
        m = re.search(r'^(\d+) passed, (\d+) failed$', text, re.M)
        if m:
            total['passed'] += int(m.group(1))
            total['failed'] += int(m.group(2))
            found = True
        elif re.search(r'^SKIPPED e2e-short: ', text, re.M):
            total['skipped'] += 1
            found = True
    elif name == 'verify':
        m = re.search(r'^(\d+) ok, (\d+) failed, (\d+) skipped$', text,
                      re.M)
        if m:
            for key, value in zip(('passed', 'failed', 'skipped'),
                                  m.groups()):
                total[key] += int(value)
            found = True
    else:
        for m in re.finditer(r'^nova-sio test: (\d+) passed, (\d+) '
                             r'failed, (\d+) skipped; releases: \d+ '
                             r'passed, (\d+) failed, (\d+) skipped$',
                             text, re.M):
            total['passed'] += int(m.group(1))
            total['failed'] += int(m.group(2)) + int(m.group(4))
            total['skipped'] += int(m.group(3)) + int(m.group(5))
            found = True
    skips += [ln for ln in text.splitlines() if ln.startswith('SKIPPED ')]
    bad += [ln for ln in text.splitlines()
            if ln.startswith('FAILED ') or ln.startswith('FAILED step')]
    if not found:
        bad.append('FAILED step %s: it printed no totals' % name)
print('== summary')
for line in sorted(set(skips)) + sorted(set(bad), key=bad.index):
    print(line)
print('%(passed)d passed, %(failed)d failed, %(skipped)d skipped' % total)
sys.exit(1 if total['failed'] or bad else 0)
PYEOF
        if [ $rc = 0 ]; then echo "nova-sio tests: all passed"; else
            echo "nova-sio tests: FAILED"; fi
        exit $rc
        ;;
    e2e)
        # The real-cloud scenario (root): two compute hosts with their
        # own libvirt, the control plane of Nova VERSION (default: the
        # newest release) patched with nova-sio install, the gateway
        # emulator on loop devices; every step through Nova's API, a
        # table of steps and "N passed, N failed".
        e2e_setup
        version="${1:-}"
        shift || true
        "$tox" exec -q -e py3 -- python -m nova_sio.e2e run \
            ${version:+--version "$version"} --slice full "$@"
        exit $?
        ;;
    e2e-distro)
        # The short slice of the real-cloud scenario (boot, live
        # migration, delete) on Debian bookworm's own packaged Nova,
        # Placement, Glance and Keystone (root, on bookworm): apt-get
        # installs them into the system Python, nova-sio install patches
        # /usr/lib/python3/dist-packages/nova, nova-sio revert restores it
        # byte-exact at the end (dpkg --verify python3-nova).
        e2e_setup
        "$tox" exec -q -e py3 -- python -m nova_sio.e2e run \
            --distro bookworm --slice short "$@"
        exit $?
        ;;
    e2e-bench)
        # The image backends side by side on the real cloud (root): boots
        # of a small and a 1 GiB image with sio (full copy and zero-copy),
        # qcow2, raw and lvm, and their live migration; the median of 3
        # runs as a table, every figure in the cache's e2e-bench.json.
        e2e_setup
        version="${1:-}"
        shift || true
        "$tox" exec -q -e py3 -- python -m nova_sio.e2e bench \
            ${version:+--version "$version"} --json "$cache/e2e-bench.json" "$@"
        exit $?
        ;;
    tempest)
        # Tempest's compute API tests on the real cloud (root): by default
        # ^tempest\.api\.compute less the exclusions of Nova's nova-lvm
        # job and what the cloud lacks, then the live-migration and
        # migration tests on both hosts; REGEX runs one pass instead.
        # Prints Tempest's summary and a table of failures and skips.
        e2e_setup
        version="${1:-}"
        shift || true
        regex="${1:-}"
        shift || true
        "$tox" exec -q -e py3 -- python -m nova_sio.e2e tempest \
            ${version:+--version "$version"} ${regex:+--regex "$regex"} "$@"
        exit $?
        ;;
    *)
        run_tox "$job" "$@"
        exit $?
        ;;
esac
