#!/usr/bin/env bash
# Make sure Debian's chromium and chromium-driver are installed: the report's tests drive a real
# headless browser (tests/report/test_browser.py). Quiet when they already are.
set -u
has_all() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
has_all && exit 0

echo "chromium or chromium-driver is missing; installing Debian's chromium and chromium-driver..."
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  cat >&2 <<MSG
The report's browser tests need chromium and chromium-driver, and this user cannot install packages:
  sudo apt-get install chromium chromium-driver
MSG
  exit 1
fi
if ! $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null || {
    echo "apt-get install chromium chromium-driver failed; install them by hand to run the browser tests." >&2
    exit 1
  }
fi
has_all || { echo "chromium-driver installed but chromium or chromedriver is not on PATH." >&2; exit 1; }
