#!/usr/bin/env bash
# Builds fake-gcs-server (a Google Cloud Storage emulator) from the Go module proxy, once per version,
# and prints the binary's path.
#
#   bash scripts/install-fake-gcs.sh                          # -> <tools>/fake-gcs-server-<version>/fake-gcs-server
#   ASTORE_TEST_FAKE_GCS=$(bash scripts/install-fake-gcs.sh)  # progress goes to stderr, only the path to stdout
#
# Cache: ${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}/fake-gcs-server-<version>/, outside the checkout so
# a fresh CI clone reuses it. A cold build takes 3-6 minutes on 2 cores (it pulls cloud.google.com/go/storage,
# grpc and genproto); the binary is about 50 MB.
#
# The build goes into a temporary GOBIN next to the cache directory and is renamed into place only after it
# succeeded, so an interrupted or failed build never leaves a half-installed tool; `.installed` marks a
# complete install. The binary has no version flag, so a cached copy is not re-checked (the directory name
# is the version key).
#
# Quirks: the server's defaults are `-scheme https -host 0.0.0.0`; always start it with
# `-scheme http -host 127.0.0.1` (test/helpers/fake-gcs.ts does).
set -euo pipefail

# Pinned here, not overridable from the environment: astore refuses unknown ASTORE_* variables, and a
# bump should be a reviewed change (and a new cache directory).
FAKE_GCS_VERSION=v1.56.1
FAKE_GCS_MODULE=github.com/fsouza/fake-gcs-server
tools_dir="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
dest="$tools_dir/fake-gcs-server-$FAKE_GCS_VERSION"
bin="$dest/fake-gcs-server"

if [ -x "$bin" ] && [ -f "$dest/.installed" ]; then
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-fake-gcs: 'go' is not on PATH; fake-gcs-server is built from source with go install" >&2
  exit 1
fi

mkdir -p "$tools_dir"
# Leftovers of builds that were killed (a build is bounded by 20 minutes, so 2 hours is safe).
find "$tools_dir" -maxdepth 1 -name '.building-fake-gcs-server-*' -mmin +120 -exec rm -rf {} + 2>/dev/null || true
tmp=$(mktemp -d "$tools_dir/.building-fake-gcs-server-$FAKE_GCS_VERSION.XXXXXX")
chmod 755 "$tmp" # mktemp makes it 0700
trap 'rm -rf "$tmp"' EXIT

echo "install-fake-gcs: building $FAKE_GCS_MODULE@$FAKE_GCS_VERSION into $dest (3-6 min cold)" >&2
start=$(date +%s)
# GOTOOLCHAIN=local: use the installed Go, never download a toolchain. GOWORK=off: ignore any workspace.
rc=0
GOBIN="$tmp" GOTOOLCHAIN=local GOWORK=off timeout 1200 \
  go install "$FAKE_GCS_MODULE@$FAKE_GCS_VERSION" >&2 || rc=$?
if [ "$rc" -eq 124 ]; then
  echo "install-fake-gcs: FAILED to build $FAKE_GCS_MODULE@$FAKE_GCS_VERSION: the build hit its 1200 s limit" >&2
  exit 1
elif [ "$rc" -ne 0 ]; then
  echo "install-fake-gcs: FAILED to build $FAKE_GCS_MODULE@$FAKE_GCS_VERSION (go install exited $rc)" >&2
  exit 1
fi
if [ ! -x "$tmp/fake-gcs-server" ]; then
  echo "install-fake-gcs: go install succeeded but $tmp/fake-gcs-server is missing" >&2
  exit 1
fi
# The embedded build info must name the pinned module version.
if info=$(GOTOOLCHAIN=local go version -m "$tmp/fake-gcs-server" 2>&1); then
  case "$info" in
    *"$FAKE_GCS_MODULE"*"$FAKE_GCS_VERSION"*) ;;
    *)
      echo "install-fake-gcs: the built binary does not report $FAKE_GCS_MODULE $FAKE_GCS_VERSION:" >&2
      echo "$info" >&2
      exit 1
      ;;
  esac
else
  echo "install-fake-gcs: 'go version -m' on the built binary failed: $info" >&2
  exit 1
fi
touch "$tmp/.installed"
rm -rf "$dest"
if ! mv -T "$tmp" "$dest"; then
  # Another run may have installed it meanwhile; accept that copy if it is complete.
  if [ ! -x "$bin" ] || [ ! -f "$dest/.installed" ]; then
    echo "install-fake-gcs: cannot move $tmp to $dest" >&2
    exit 1
  fi
fi
echo "install-fake-gcs: built in $(( $(date +%s) - start )) s" >&2
echo "$bin"
