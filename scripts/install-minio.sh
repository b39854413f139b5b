#!/usr/bin/env bash
# Builds the MinIO server from the Go module proxy, once per version, and prints the binary's path.
#
#   bash scripts/install-minio.sh            # -> <tools>/minio-<version>/minio
#   MINIO=$(bash scripts/install-minio.sh)   # progress goes to stderr, only the path to stdout
#
# Cache: ${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}/minio-<version>/, outside the checkout so a
# fresh CI clone reuses it. A cold build takes 5-10 minutes on 2 cores (about 1 minute with a warm Go
# build cache); the binary is about 150 MB.
#
# Quirks: MinIO tags are `RELEASE.*` and not semver, so the version is a pseudo-version. The binary's
# `--version` prints `DEVELOPMENT.GOGET`, so the cache key is the directory name, not `--version`.
set -euo pipefail

# Pinned here, not overridable from the environment: astore refuses unknown ASTORE_* variables, and a
# bump should be a reviewed change (and a new cache directory).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
tools_dir="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
dest="$tools_dir/minio-$MINIO_VERSION"
bin="$dest/minio"

if [ -x "$bin" ] && [ -f "$dest/.installed" ]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-minio: 'go' is not on PATH; MinIO is built from source with go install" >&2
  exit 1
fi

mkdir -p "$dest"
rm -f "$dest/.installed"
echo "install-minio: building github.com/minio/minio@$MINIO_VERSION into $dest (5-10 min cold)" >&2
start=$(date +%s)
# GOTOOLCHAIN=local: use the installed Go, never download a toolchain. -mod=mod: resolve from the
# module's own go.mod (go install of a module@version ignores any enclosing workspace anyway).
if ! GOBIN="$dest" GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
  go install "github.com/minio/minio@$MINIO_VERSION" >&2; then
  echo "install-minio: FAILED to build github.com/minio/minio@$MINIO_VERSION" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  echo "install-minio: go install succeeded but $bin is missing" >&2
  exit 1
fi
touch "$dest/.installed"
echo "install-minio: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
