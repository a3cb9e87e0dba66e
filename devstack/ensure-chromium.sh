#!/bin/sh
# `make test`'s first step. The browser tests drive Debian's chromium, and a missing browser must fail
# the run, never skip it: so install it when we can (root with apt-get), else stop at once and say how.
# OSSDIRECT_CHROMIUM names another browser binary (the browser tests read the same variable).
# Also wabt's wat2wasm: a test checks web/crc64.js's embedded WebAssembly is built from web/crc64.wat.
set -eu
CHROMIUM="${OSSDIRECT_CHROMIUM:-/usr/bin/chromium}"
INSTALL="apt-get install -y chromium wabt"

if { [ -x "$CHROMIUM" ] || command -v "$CHROMIUM" >/dev/null 2>&1; } && command -v wat2wasm >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  {
    echo "make test: the browser tests need Debian's chromium ($CHROMIUM) and wabt (wat2wasm); one is missing. Run this as root, then make test again:"
    echo
    echo "    $INSTALL"
    echo
    echo "(or set OSSDIRECT_CHROMIUM to a chromium binary you already have)"
  } >&2
  exit 1
fi

echo "make test: installing Debian's chromium and wabt for the browser tests ($INSTALL)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium wabt >/dev/null
if ! [ -x "$CHROMIUM" ] && ! command -v "$CHROMIUM" >/dev/null 2>&1; then
  echo "make test: apt-get installed chromium but $CHROMIUM is still missing" >&2
  exit 1
fi
