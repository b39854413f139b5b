#!/usr/bin/env bash
# Builds the OCI clients the registry tests drive, once per pinned version, and exports where they are:
#
#   ASTORE_TOOLS_DIR        cache root, ${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools} (outside the
#                           checkout, so a fresh CI clone reuses it)
#   ASTORE_TEST_CONFORMANCE <tools>/conformance-<version>/conformance  (OCI distribution-spec conformance)
#   ASTORE_TEST_ORAS        <tools>/oras-v1.3.6/oras
#   ASTORE_TEST_CRANE       <tools>/crane-v0.22.1/crane
#   ASTORE_TEST_REGCTL      <tools>/regctl-v0.11.7/regctl
#   ASTORE_TEST_COSIGN      <tools>/cosign-v2.6.5/cosign
#   ASTORE_TEST_NOTATION    <tools>/notation-v1.3.2/notation
#   ASTORE_TEST_HELM        <tools>/helm-v3.22.0/helm
#   ASTORE_TEST_REGISTRY    <tools>/registry-v3.1.2/registry  (the CNCF Distribution registry, the bench peer)
#
#   bash scripts/install-oci-tools.sh               # build what is missing, print NAME=path lines
#   bash scripts/install-oci-tools.sh oras crane    # only those tools
#   source scripts/install-oci-tools.sh [tool...]   # build what is missing, export the variables
#
# Tool names: conformance oras crane regctl cosign notation helm registry (or `all`, the default). A sourced script sees
# the caller's positional parameters when it is given none, so a script that has arguments of its own must
# name the tools (or `all`) when it sources this one; an unknown name is an error, never ignored.
#
# Each tool is built with `go install <module>@<version>` (GOTOOLCHAIN=local: the installed Go, never a
# downloaded toolchain) into a temporary GOBIN next to its cache directory, checked, and only then renamed
# to <tools>/<name>-<version>/, so an interrupted or failed build never leaves a half-installed tool. A
# cached tool is used when its binary answers its version command with the pinned version; otherwise it is
# rebuilt. Builds run one at a time, each bounded by `timeout 1200`. A failed tool is reported with the
# reason (the tail of the go output) and the others are still built; the script then exits (or returns)
# non-zero. Progress goes to stderr.
#
# Cold cost on a 2-core machine: cosign about 4 min, the others under 1 min each (Go tools share
# dependencies, so later builds reuse earlier downloads). The Go module and build caches are the usual ones
# (`go env GOMODCACHE GOCACHE`) and grow by a few GB.
#
# Quirks:
# - conformance has no version flag (any invocation runs the suite against OCI_REGISTRY, default
#   localhost:5000), so its check reads the module version embedded in the binary with `go version -m`
#   (or, without go on PATH, finds that build-info line in the binary with grep).
# - notation: `go install ...@v1.3.2` fails, because the module proxy refuses the module's version list
#   that go install reads for deprecation notices. It is built instead from the downloaded module: `go mod
#   download`, copy the module directory to a temp dir beside the temp GOBIN, `go build ./cmd/notation`,
#   remove the temp dir.
#   Its version prints as `v1.3.2+unreleased`.
# - Keep the clients' state out of $HOME in tests: REGCTL_CONFIG for regctl, TUF_ROOT for cosign,
#   XDG_CONFIG_HOME for notation, OCI_RESULTS_DIR for conformance (it writes ./results by default).

# Pinned here, not overridable from the environment: astore refuses unknown ASTORE_* variables, and a bump
# should be a reviewed change (and gets a new cache directory).
_astore_oci_tool_names="conformance oras crane regctl cosign notation helm registry"

# Sets _aoci_pkg, _aoci_version, _aoci_bin (binary name) and _aoci_var for tool $1; fails for unknown names.
_astore_oci_tool_info() {
  case "$1" in
    conformance)
      _aoci_pkg=github.com/opencontainers/distribution-spec/conformance
      _aoci_version=v0.0.0-20260831232431-97274622c111
      ;;
    oras)
      _aoci_pkg=oras.land/oras/cmd/oras
      _aoci_version=v1.3.6
      ;;
    crane)
      _aoci_pkg=github.com/google/go-containerregistry/cmd/crane
      _aoci_version=v0.22.1
      ;;
    regctl)
      _aoci_pkg=github.com/regclient/regclient/cmd/regctl
      _aoci_version=v0.11.7
      ;;
    cosign)
      _aoci_pkg=github.com/sigstore/cosign/v2/cmd/cosign
      _aoci_version=v2.6.5
      ;;
    notation)
      _aoci_pkg=github.com/notaryproject/notation/cmd/notation
      _aoci_version=v1.3.2
      ;;
    helm)
      _aoci_pkg=helm.sh/helm/v3/cmd/helm
      _aoci_version=v3.22.0
      ;;
    registry)
      _aoci_pkg=github.com/distribution/distribution/v3/cmd/registry
      _aoci_version=v3.1.2
      ;;
    *) return 1 ;;
  esac
  _aoci_bin="$1"
  _aoci_var="ASTORE_TEST_$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')"
}

# Succeeds when binary $2 of tool $1 runs and reports version $3; otherwise prints why to stderr.
_astore_oci_check() {
  local name="$1" bin="$2" version="$3" out
  if [ ! -x "$bin" ]; then
    echo "install-oci-tools: $name: $bin is missing" >&2
    return 1
  fi
  case "$name" in
    conformance)
      # No version flag: read the embedded build info instead of running the suite. Without go on PATH
      # (a warm cache needs no go), look for the same "mod <module> <version>" line in the binary itself.
      if command -v go >/dev/null 2>&1; then
        if ! out=$(GOTOOLCHAIN=local go version -m "$bin" 2>&1); then
          echo "install-oci-tools: $name: 'go version -m $bin' failed: $out" >&2
          return 1
        fi
        case "$out" in
          *"$_aoci_pkg"*"$version"*) return 0 ;;
        esac
      else
        if LC_ALL=C grep -aqF "$(printf 'mod\t%s\t%s' "$_aoci_pkg" "$version")" "$bin"; then
          return 0
        fi
        out="(its embedded build info does not name $_aoci_pkg $version)"
      fi
      ;;
    *)
      # The registry has a flag, not a subcommand.
      local verb=version
      [ "$name" = registry ] && verb=--version
      if ! out=$(timeout 60 "$bin" "$verb" 2>&1); then
        echo "install-oci-tools: $name: '$bin $verb' failed: $out" >&2
        return 1
      fi
      # oras prints `Version: 1.3.6`, helm `Version:"v3.22.0"`, registry `... v3.1.2`, notation `Version: v1.3.2+unreleased`, crane `v0.22.1`, regctl
      # `VCSTag: v0.11.7`, cosign `GitVersion: v2.6.5`.
      case "$out" in
        *"${version#v}"*) return 0 ;;
      esac
      ;;
  esac
  echo "install-oci-tools: $name: $bin does not report version $version; it printed: $out" >&2
  return 1
}

# Builds tool $1 into temp GOBIN $2 (go output to log $3). Prints nothing on success; returns go's status.
_astore_oci_build() {
  local name="$1" gobin="$2" log="$3" src dir rc
  if [ "$name" = helm ]; then
    # helm's release builds stamp the full version; a plain build says only "v3.22".
    GOBIN="$gobin" GOTOOLCHAIN=local GOWORK=off timeout 1200 \
      go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$_aoci_version" "$_aoci_pkg@$_aoci_version" >"$log" 2>&1
    return
  fi
  if [ "$name" != notation ]; then
    GOBIN="$gobin" GOTOOLCHAIN=local GOWORK=off \
      timeout 1200 go install "$_aoci_pkg@$_aoci_version" >"$log" 2>&1
    return
  fi
  # notation: go install fails (see the header), so build from a copy of the downloaded module.
  src="$gobin.src"
  mkdir "$src" || return 1
  rc=0
  GOTOOLCHAIN=local GOWORK=off timeout 1200 \
    go mod download -json "github.com/notaryproject/notation@$_aoci_version" >"$src.json" 2>>"$log" || rc=$?
  if [ "$rc" -eq 0 ]; then
    dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' "$src.json")
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
      { echo "go mod download printed no module directory:"; cat "$src.json"; } >>"$log"
      rc=1
    fi
  else
    cat "$src.json" >>"$log"
  fi
  if [ "$rc" -eq 0 ]; then
    # The module cache is read-only; the build needs a writable tree of its own.
    { cp -R "$dir/." "$src/" && chmod -R u+w "$src"; } >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    GOTOOLCHAIN=local GOWORK=off timeout 1200 \
      go -C "$src" build -o "$gobin/notation" ./cmd/notation >>"$log" 2>&1 || rc=$?
  fi
  rm -rf "$src" "$src.json"
  return "$rc"
}

# Installs (if needed) and exports the tools named in "$@" (default: all). Returns non-zero if any failed.
astore_install_oci_tools() {
  local tools_dir="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
  local names=() failed=() name dest bin tmp log rc start why
  local _aoci_pkg _aoci_version _aoci_bin _aoci_var

  for name in "$@"; do
    if [ "$name" = all ]; then
      # shellcheck disable=SC2206 # word splitting of the fixed name list is intended
      names+=($_astore_oci_tool_names)
    elif _astore_oci_tool_info "$name"; then
      names+=("$name")
    else
      echo "install-oci-tools: unknown tool '$name' (known: $_astore_oci_tool_names, or all)" >&2
      return 2
    fi
  done
  if [ ${#names[@]} -eq 0 ]; then
    # shellcheck disable=SC2206
    names=($_astore_oci_tool_names)
  fi

  for name in "${names[@]}"; do
    _astore_oci_tool_info "$name"
    dest="$tools_dir/$name-$_aoci_version"
    bin="$dest/$_aoci_bin"

    if [ -e "$dest" ]; then
      if _astore_oci_check "$name" "$bin" "$_aoci_version" 2>/dev/null; then
        export "$_aoci_var=$bin"
        continue
      fi
      echo "install-oci-tools: $name: cached $dest does not work; rebuilding. Reason:" >&2
      _astore_oci_check "$name" "$bin" "$_aoci_version" || true
    fi

    if ! command -v go >/dev/null 2>&1; then
      echo "install-oci-tools: FAILED: $name: 'go' is not on PATH; the OCI tools are built from source" >&2
      failed+=("$name")
      continue
    fi
    if ! mkdir -p "$tools_dir"; then
      echo "install-oci-tools: FAILED: $name: cannot create $tools_dir" >&2
      failed+=("$name")
      continue
    fi
    # Leftovers of builds that were killed (a build is bounded by 20 minutes, so 2 hours is safe).
    find "$tools_dir" -maxdepth 1 -name '.building-*' -mmin +120 -exec rm -rf {} + 2>/dev/null || true
    # The temp GOBIN sits next to the final directory (same filesystem), so the final step is a rename.
    if ! tmp=$(mktemp -d "$tools_dir/.building-$name-$_aoci_version.XXXXXX"); then
      echo "install-oci-tools: FAILED: $name: cannot create a temp directory in $tools_dir" >&2
      failed+=("$name")
      continue
    fi
    chmod 755 "$tmp" # mktemp makes it 0700
    log="$tmp.log"
    : >"$log"
    echo "install-oci-tools: building $_aoci_pkg@$_aoci_version with $(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null || echo 'go')" >&2
    start=$(date +%s)
    rc=0
    _astore_oci_build "$name" "$tmp" "$log" || rc=$?
    why=""
    if [ "$rc" -eq 124 ]; then
      why="the build hit its 1200 s time limit"
    elif [ "$rc" -ne 0 ]; then
      why="the build exited with status $rc"
    elif ! _astore_oci_check "$name" "$tmp/$_aoci_bin" "$_aoci_version" 2>>"$log"; then
      why="the built binary does not answer its version command"
    else
      rm -rf "$dest"
      if ! mv -T "$tmp" "$dest" 2>>"$log"; then
        # Another run may have installed it meanwhile; accept that copy if it works.
        if _astore_oci_check "$name" "$bin" "$_aoci_version" 2>/dev/null; then
          rm -rf "$tmp"
        else
          why="cannot move $tmp to $dest"
        fi
      fi
    fi
    if [ -n "$why" ]; then
      echo "install-oci-tools: FAILED: $name ($_aoci_pkg@$_aoci_version): $why (after $(( $(date +%s) - start )) s)." >&2
      echo "install-oci-tools: last lines of the output (without 'go: downloading'):" >&2
      if grep -qv '^go: downloading ' "$log"; then
        grep -v '^go: downloading ' "$log" | tail -n 40 | sed 's/^/    /' >&2
      else
        echo "    (none)" >&2
      fi
      rm -rf "$tmp" "$log"
      failed+=("$name")
      continue
    fi
    rm -f "$log"
    echo "install-oci-tools: $name built in $(( $(date +%s) - start )) s: $bin" >&2
    export "$_aoci_var=$bin"
  done

  export ASTORE_TOOLS_DIR="$tools_dir"
  if [ ${#failed[@]} -ne 0 ]; then
    echo "install-oci-tools: FAILED: ${failed[*]} (see above)" >&2
    return 1
  fi
}

_astore_oci_cleanup() {
  unset -f astore_install_oci_tools _astore_oci_tool_info _astore_oci_check _astore_oci_build \
    _astore_oci_cleanup
  unset _astore_oci_tool_names
}

# `return` works only when sourced; when run as a script, exit with the same status.
if (return 0 2>/dev/null); then
  astore_install_oci_tools "$@" || {
    _astore_rc=$?
    _astore_oci_cleanup
    return "$_astore_rc"
  }
  _astore_oci_cleanup
else
  set -euo pipefail
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
    exit 0
  fi
  # Print only what this run installed or found, not values inherited from the environment.
  for _name in ${_astore_oci_tool_names}; do
    unset "ASTORE_TEST_$(printf '%s' "$_name" | tr '[:lower:]' '[:upper:]')"
  done
  _rc=0
  astore_install_oci_tools "$@" || _rc=$?
  for _name in ${_astore_oci_tool_names}; do
    _var="ASTORE_TEST_$(printf '%s' "$_name" | tr '[:lower:]' '[:upper:]')"
    if [ -n "${!_var:-}" ]; then
      echo "$_var=${!_var}"
    fi
  done
  exit "$_rc"
fi
