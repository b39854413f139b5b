#!/usr/bin/env bash
# skopeo for the registry end-to-end tests, from Debian's packages (it needs C libraries a Go module
# build does not bring). Exports ASTORE_TEST_SKOPEO.
#
#   source scripts/install-skopeo.sh     # install when missing (needs root and apt-get), export the path
#
# A missing skopeo that cannot be installed is an error: the tests that need it fail loudly.

astore_install_skopeo() {
  if ! command -v skopeo >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "install-skopeo: FAILED: skopeo is not on PATH and cannot be installed here (needs root and apt-get): apt-get install skopeo" >&2
      return 1
    fi
    echo "install-skopeo: installing skopeo from Debian's packages" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends skopeo >/dev/null 2>&1; then
      # The package lists may be missing or stale on a fresh machine.
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends skopeo >&2; then
        echo "install-skopeo: FAILED: apt-get install skopeo" >&2
        return 1
      fi
    fi
  fi
  local version
  if ! version=$(skopeo --version 2>&1); then
    echo "install-skopeo: FAILED: skopeo --version: $version" >&2
    return 1
  fi
  export ASTORE_TEST_SKOPEO
  ASTORE_TEST_SKOPEO="$(command -v skopeo)"
}

if (return 0 2>/dev/null); then
  astore_install_skopeo
else
  set -euo pipefail
  astore_install_skopeo
  echo "ASTORE_TEST_SKOPEO=$ASTORE_TEST_SKOPEO"
fi
