#!/usr/bin/env bash
# Keycloak for the identity tests, from Maven Central, unpacked and pre-built once per version. Exports
# where it is:
#
#   ASTORE_TEST_KEYCLOAK    <tools>/keycloak-26.5.6  (a Keycloak distribution: bin/kc.sh, lib/, conf/)
#
#   bash scripts/install-keycloak.sh       # install when missing, print ASTORE_TEST_KEYCLOAK=<dir>
#   source scripts/install-keycloak.sh     # install when missing, export ASTORE_TEST_KEYCLOAK
#
# <tools> is ${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}, outside the checkout so a fresh CI clone
# reuses it. Needs java (17 or later) on PATH to run, and mvn and unzip to install: the distribution zip
# comes from Maven Central through `mvn dependency:copy` (Maven also keeps it in ~/.m2), the only source
# used. The zip is unpacked into a temp directory next to the final one, pre-built there, checked, and
# only then renamed to <tools>/keycloak-<version>/, so an interrupted or failed install never leaves a
# half-installed Keycloak. A failure says why (with the tail of the tool's output) and the script exits
# (or returns) non-zero. Progress goes to stderr.
#
# The pre-build is `kc.sh build --db=dev-file` (Quarkus augmentation for the production profile with the
# file-based H2 database). Tests then run `kc.sh start --optimized`, which never re-augments (and refuses
# to start on a distribution that was not built), so the cache is only read and several Keycloaks may
# start from it at once: test/helpers/keycloak.ts points each one's kc.home.dir at a temp directory for
# its data. `start-dev` is not used: it re-augments whenever its build options differ from the persisted
# ones (always on the first start after unzip, 17-30 s), writing lib/quarkus/ of the shared distribution.
#
# Cold cost on a 2-core machine: download 5-60 s (165 MB, depending on the network), unzip about 2 s
# (175 MB), build 25-35 s. A start from the pre-built cache with a fresh data directory takes 17-31 s to
# the first realm answer, depending on the load (the first start-dev from a fresh unzip: 40-70 s); a
# restart on existing data about 11 s. The JVM holds about 0.5 GB and stops on SIGTERM in about 2 s.

# Pinned here, not overridable from the environment: astore refuses unknown ASTORE_* variables, and a bump
# should be a reviewed change (and gets a new cache directory).
_astore_keycloak_version=26.5.6

# Succeeds when $1 is a usable pre-built distribution; otherwise prints why to stderr.
_astore_keycloak_check() {
  local dir="$1" out persisted
  if [ ! -x "$dir/bin/kc.sh" ]; then
    echo "install-keycloak: $dir/bin/kc.sh is missing or not executable" >&2
    return 1
  fi
  # `start --optimized` needs a build for the production profile; a start-dev run in this directory
  # would have replaced it with a dev build.
  if ! persisted=$(unzip -p "$dir/lib/quarkus/generated-bytecode.jar" META-INF/keycloak-persisted.properties 2>&1); then
    echo "install-keycloak: $dir has not been built (no persisted build options in lib/quarkus/generated-bytecode.jar): $persisted" >&2
    return 1
  fi
  local line
  for line in kc.optimized=true kc.profile=prod kc.db=dev-file; do
    if ! printf '%s\n' "$persisted" | grep -qxF "$line"; then
      echo "install-keycloak: $dir is not built for 'start --optimized' with --db=dev-file (no $line); its build options are: $persisted" >&2
      return 1
    fi
  done
  # --version starts the JVM (about 1 s) without touching the distribution.
  if ! out=$(timeout 120 "$dir/bin/kc.sh" --version 2>&1); then
    echo "install-keycloak: '$dir/bin/kc.sh --version' failed: $out" >&2
    return 1
  fi
  case "$out" in
    *"Keycloak $_astore_keycloak_version"*) return 0 ;;
  esac
  echo "install-keycloak: '$dir/bin/kc.sh --version' does not report $_astore_keycloak_version; it printed: $out" >&2
  return 1
}

# Prints the tail of log $1 to stderr, indented.
_astore_keycloak_tail() {
  echo "install-keycloak: last lines of the output:" >&2
  if [ -s "$1" ]; then
    grep -v ' DEBUG ' "$1" | grep -v '^[[:space:]]*$' | tail -n 40 | sed 's/^/    /' >&2
  else
    echo "    (none)" >&2
  fi
}

astore_install_keycloak() {
  local tools_dir="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
  local version="$_astore_keycloak_version"
  local dest="$tools_dir/keycloak-$version"
  local tmp log start step rc java_version tool

  # Keycloak 26 runs on Java 17 or later; a missing or broken java fails here, not in the first test.
  if ! command -v java >/dev/null 2>&1; then
    echo "install-keycloak: FAILED: 'java' is not on PATH (Keycloak $version needs Java 17 or later)" >&2
    return 1
  fi
  if ! java_version=$(java -version 2>&1); then
    echo "install-keycloak: FAILED: 'java -version' failed: $java_version" >&2
    return 1
  fi

  if [ -e "$dest" ]; then
    if _astore_keycloak_check "$dest" 2>/dev/null; then
      export ASTORE_TEST_KEYCLOAK="$dest"
      export ASTORE_TOOLS_DIR="$tools_dir"
      return 0
    fi
    echo "install-keycloak: cached $dest does not work; reinstalling. Reason:" >&2
    _astore_keycloak_check "$dest" || true
  fi

  for tool in mvn unzip; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "install-keycloak: FAILED: '$tool' is not on PATH (Keycloak is downloaded from Maven Central with mvn and unpacked with unzip)" >&2
      return 1
    fi
  done
  if ! mkdir -p "$tools_dir"; then
    echo "install-keycloak: FAILED: cannot create $tools_dir" >&2
    return 1
  fi
  # Leftovers of installs that were killed (an install is bounded by about 35 minutes, so 2 hours is safe).
  find "$tools_dir" -maxdepth 1 -name '.installing-keycloak-*' -mmin +120 -exec rm -rf {} + 2>/dev/null || true
  # The temp directory sits next to the final one (same filesystem), so the last step is a rename.
  if ! tmp=$(mktemp -d "$tools_dir/.installing-keycloak-$version.XXXXXX"); then
    echo "install-keycloak: FAILED: cannot create a temp directory in $tools_dir" >&2
    return 1
  fi
  chmod 755 "$tmp" # mktemp makes it 0700
  log="$tmp.log"
  : >"$log"
  start=$(date +%s)
  rc=0

  step="download org.keycloak:keycloak-quarkus-dist:$version:zip from Maven Central"
  echo "install-keycloak: ${step} (165 MB)" >&2
  timeout 1200 mvn -B -q dependency:copy \
    "-Dartifact=org.keycloak:keycloak-quarkus-dist:$version:zip" \
    "-DoutputDirectory=$tmp/download" >>"$log" 2>&1 || rc=$?

  if [ "$rc" -eq 0 ]; then
    echo "install-keycloak: downloaded in $(($(date +%s) - start)) s" >&2
    step="unzip keycloak-quarkus-dist-$version.zip"
    { unzip -q "$tmp/download/keycloak-quarkus-dist-$version.zip" -d "$tmp" && rm -rf "$tmp/download"; } >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ] && [ ! -x "$tmp/keycloak-$version/bin/kc.sh" ]; then
    step="unzip keycloak-quarkus-dist-$version.zip"
    echo "the zip has no keycloak-$version/bin/kc.sh" >>"$log"
    rc=1
  fi

  if [ "$rc" -eq 0 ]; then
    step="pre-build (kc.sh build --db=dev-file)"
    echo "install-keycloak: unpacked; ${step}, about 30 s" >&2
    # java.io.tmpdir inside the temp directory: Quarkus leaves a vertx-cache directory behind in it.
    mkdir -p "$tmp/java-tmp"
    JAVA_OPTS_APPEND="-Djava.io.tmpdir=$tmp/java-tmp" timeout 900 \
      "$tmp/keycloak-$version/bin/kc.sh" build --db=dev-file >>"$log" 2>&1 || rc=$?
    rm -rf "$tmp/java-tmp"
  fi

  if [ "$rc" -eq 0 ]; then
    step="check the built distribution"
    _astore_keycloak_check "$tmp/keycloak-$version" 2>>"$log" || rc=$?
  fi

  if [ "$rc" -eq 0 ]; then
    step="move $tmp/keycloak-$version to $dest"
    rm -rf "$dest"
    if ! mv -T "$tmp/keycloak-$version" "$dest" 2>>"$log"; then
      # Another run may have installed it meanwhile; accept that copy if it works.
      _astore_keycloak_check "$dest" 2>>"$log" || rc=1
    fi
  fi

  if [ "$rc" -ne 0 ]; then
    if [ "$rc" -eq 124 ]; then
      echo "install-keycloak: FAILED: $step: hit its time limit (after $(($(date +%s) - start)) s)." >&2
    else
      echo "install-keycloak: FAILED: $step (status $rc, after $(($(date +%s) - start)) s)." >&2
    fi
    _astore_keycloak_tail "$log"
    rm -rf "$tmp" "$log"
    return 1
  fi
  rm -rf "$tmp" "$log"
  echo "install-keycloak: installed in $(($(date +%s) - start)) s: $dest" >&2
  export ASTORE_TEST_KEYCLOAK="$dest"
  export ASTORE_TOOLS_DIR="$tools_dir"
}

_astore_keycloak_cleanup() {
  unset -f astore_install_keycloak _astore_keycloak_check _astore_keycloak_tail _astore_keycloak_cleanup
  unset _astore_keycloak_version
}

# `return` works only when sourced; when run as a script, exit with the same status.
if (return 0 2>/dev/null); then
  astore_install_keycloak || {
    _astore_rc=$?
    _astore_keycloak_cleanup
    return "$_astore_rc"
  }
  _astore_keycloak_cleanup
else
  set -euo pipefail
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
  fi
  # Print only what this run installed or found, not a value inherited from the environment.
  unset ASTORE_TEST_KEYCLOAK
  astore_install_keycloak
  echo "ASTORE_TEST_KEYCLOAK=$ASTORE_TEST_KEYCLOAK"
fi
