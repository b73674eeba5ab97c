#!/usr/bin/env bash
# Make sure Fashion-MNIST is available. Quiet when it already is.
# Order: $CNNZOO_DATA, then Debian's /usr/share/datasets/fashion-mnist.
set -u
need=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
has_all() {
  local d=$1 f
  for f in "${need[@]}"; do
    [ -f "$d/$f.gz" ] || [ -f "$d/$f" ] || return 1
  done
}
if [ -n "${CNNZOO_DATA:-}" ]; then
  for d in "$CNNZOO_DATA" "$CNNZOO_DATA/fashion-mnist"; do has_all "$d" && exit 0; done
  echo "CNNZOO_DATA=$CNNZOO_DATA holds no Fashion-MNIST IDX files (expected ${need[*]}, .gz or raw)." >&2
  exit 1
fi
debian=/usr/share/datasets/fashion-mnist
has_all "$debian" && exit 0

echo "Fashion-MNIST is not at $debian; installing Debian's dataset-fashion-mnist..."
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  cat >&2 <<MSG
Fashion-MNIST is missing and this user cannot install packages. Either:
  sudo apt-get install dataset-fashion-mnist        # puts the files in $debian
or point cnnzoo at your own copy of the four IDX files (gzipped or raw):
  export CNNZOO_DATA=/path/to/fashion-mnist           # or pass --data-dir /path/to/fashion-mnist
MSG
  exit 1
fi
if ! $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1
  $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null || {
    echo "apt-get install dataset-fashion-mnist failed; set CNNZOO_DATA to a directory with the Fashion-MNIST IDX files." >&2
    exit 1
  }
fi
has_all "$debian" || { echo "dataset-fashion-mnist installed but $debian is incomplete." >&2; exit 1; }
