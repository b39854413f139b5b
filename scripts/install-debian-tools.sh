#!/usr/bin/env bash
# The registry clients the tests take from Debian's packages: skopeo and podman (they need C libraries
# a Go module build does not bring). Exports ASTORE_TEST_SKOPEO and ASTORE_TEST_PODMAN.
#
#   source scripts/install-debian-tools.sh     # install what is missing (needs root and apt-get), export
#
# A client that is missing and cannot be installed is an error: the tests that need it fail loudly.

astore_install_debian_tools() {
  local missing=() tool version
  for tool in skopeo podman; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "install-debian-tools: FAILED: ${missing[*]} not on PATH and cannot be installed here (needs root and apt-get): apt-get install ${missing[*]}" >&2
      return 1
    fi
    echo "install-debian-tools: installing ${missing[*]} from Debian's packages" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
      # The package lists may be missing or stale on a fresh machine.
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        echo "install-debian-tools: FAILED: apt-get install ${missing[*]}" >&2
        return 1
      fi
    fi
  fi
  for tool in skopeo podman; do
    if ! version=$("$tool" --version 2>&1); then
      echo "install-debian-tools: FAILED: $tool --version: $version" >&2
      return 1
    fi
  done
  export ASTORE_TEST_SKOPEO ASTORE_TEST_PODMAN
  ASTORE_TEST_SKOPEO="$(command -v skopeo)"
  ASTORE_TEST_PODMAN="$(command -v podman)"
}

if (return 0 2>/dev/null); then
  astore_install_debian_tools
else
  set -euo pipefail
  astore_install_debian_tools
  echo "ASTORE_TEST_SKOPEO=$ASTORE_TEST_SKOPEO"
  echo "ASTORE_TEST_PODMAN=$ASTORE_TEST_PODMAN"
fi
