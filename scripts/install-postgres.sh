#!/usr/bin/env bash
# The PostgreSQL server the MetaStore's PostgreSQL tests run against (test/storage/meta-postgres.test.ts):
# initdb, pg_ctl and postgres, taken from Debian's postgresql-15 when no server is installed. Exports
# where they are:
#
#   ASTORE_TEST_POSTGRES    the server's bin directory, e.g. /usr/lib/postgresql/15/bin
#
#   source scripts/install-postgres.sh     # install when missing (needs root and apt-get), export
#   bash scripts/install-postgres.sh       # the same, then print ASTORE_TEST_POSTGRES=<dir>
#
# Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin; the newest major there
# (13 or later: the tests drop databases WITH (FORCE)) is used. Nothing is cached: apt installs once per
# machine, and the image CI runs on already has postgresql-15. The tests start throwaway clusters of
# their own (test/helpers/postgres.ts: initdb in a temp directory, a free loopback port); nothing here
# creates, starts or changes a cluster, and the package's default cluster (15/main) is left alone.
#
# initdb refuses to run as root, so as root the tests run the binaries as the `postgres` user the
# package creates: that user must exist. A server that is missing and cannot be installed is an error
# (with why, on stderr): the tests that need it fail loudly, they never skip.

_astore_postgres_min_major=13

# Prints the newest usable server bin directory; fails (silently) when there is none.
_astore_postgres_find() {
  local dir major best="" best_major=0
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] || continue
    major="${dir#/usr/lib/postgresql/}"
    major="${major%/bin}"
    case "$major" in '' | *[!0-9]*) continue ;; esac
    if [ "$major" -ge "$_astore_postgres_min_major" ] && [ "$major" -gt "$best_major" ]; then
      best="$dir"
      best_major="$major"
    fi
  done
  [ -n "$best" ] && printf '%s\n' "$best"
}

astore_install_postgres() {
  local bin version
  if ! bin=$(_astore_postgres_find); then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "install-postgres: FAILED: no PostgreSQL server (>= $_astore_postgres_min_major) in /usr/lib/postgresql/*/bin, and it cannot be installed here (needs root and apt-get): apt-get install postgresql-15" >&2
      return 1
    fi
    echo "install-postgres: installing postgresql-15 from Debian's packages" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >/dev/null 2>&1; then
      # The package lists may be missing or stale on a fresh machine.
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 || true
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15 >&2; then
        echo "install-postgres: FAILED: apt-get install postgresql-15" >&2
        return 1
      fi
    fi
    if ! bin=$(_astore_postgres_find); then
      echo "install-postgres: FAILED: postgresql-15 is installed but /usr/lib/postgresql/15/bin has no initdb, pg_ctl and postgres" >&2
      return 1
    fi
  fi
  if ! version=$("$bin/postgres" --version 2>&1); then
    echo "install-postgres: FAILED: $bin/postgres --version: $version" >&2
    return 1
  fi
  if [ "$(id -u)" = 0 ] && ! id -u postgres >/dev/null 2>&1; then
    echo "install-postgres: FAILED: running as root, and there is no 'postgres' user to run initdb and the server as (initdb refuses root)" >&2
    return 1
  fi
  if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null 2>&1; then
    echo "install-postgres: FAILED: running as root, and runuser (util-linux) is not on PATH to run the server as 'postgres'" >&2
    return 1
  fi
  export ASTORE_TEST_POSTGRES="$bin"
}

# `return` works only when sourced; when run as a script, exit with the same status.
if (return 0 2>/dev/null); then
  astore_install_postgres || {
    _astore_rc=$?
    unset -f astore_install_postgres _astore_postgres_find
    return "$_astore_rc"
  }
  unset -f astore_install_postgres _astore_postgres_find
else
  set -euo pipefail
  astore_install_postgres
  echo "ASTORE_TEST_POSTGRES=$ASTORE_TEST_POSTGRES"
fi
