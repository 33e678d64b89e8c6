#!/bin/bash
# Set up a fresh machine and run one of the project's jobs.
#
#   tools/bootstrap.sh releases   emit and strictly verify every diff
#   tools/bootstrap.sh test       the default test command (CI)
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
case "$job" in
    releases)
        run_tox releases "$@"
        exit $?
        ;;
    test)
        rc=0
        run_tox py3 "$@" || rc=1
        "$tox" -e nova-newest || rc=1
        "$tox" -e kilo || rc=1
        if [ $rc = 0 ]; then echo "nova-sio tests: all passed"; else
            echo "nova-sio tests: FAILED"; fi
        exit $rc
        ;;
    *)
        run_tox "$job" "$@"
        exit $?
        ;;
esac
