#!/usr/bin/env bash
# Install what the tests need (Debian toolchains, the package with its test extra) and run them.
# The README's test command and .ci/run both call this script.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)
command -v wasm-ld >/dev/null || need_apt+=(lld)
command -v wat2wasm >/dev/null || need_apt+=(wabt)
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v jq >/dev/null || need_apt+=(jq)  # docs/pipeline.md reads the upload's id with it
command -v chromium >/dev/null || need_apt+=(chromium chromium-driver)
command -v gcc >/dev/null || need_apt+=(gcc)
command -v make >/dev/null || need_apt+=(make)
# mbed TLS (PSA Crypto) headers and library for the firmware core's host build
echo '#include <psa/crypto.h>' | gcc -E -x c - >/dev/null 2>&1 || need_apt+=(libmbedtls-dev)
command -v curl >/dev/null || need_apt+=(curl)          # the README quick tour test
command -v ip >/dev/null || need_apt+=(iproute2)        # its private loopback namespace
# nginx's UDP stream proxy in front of two server processes (tests/cluster, docs/scale.md)
command -v nginx >/dev/null || need_apt+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need_apt+=(libnginx-mod-stream)
# DTLSSocket (tinydtls for coaps) builds from source with the autotools.
command -v autoreconf >/dev/null || need_apt+=(autoconf automake)
command -v libtoolize >/dev/null || need_apt+=(libtool)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

python3 -m pip install -q -e ".[test]"

# Exit code 5 (no tests collected) is a failure like any other non-zero code: the script exits
# with pytest's own code, after printing the suite's wall time.
SECONDS=0
status=0
python3 -m pytest -q -p no:cacheprovider "$@" || status=$?
echo "suite wall time: ${SECONDS} s"
exit "$status"
