# Shell scaffolding of the benchmarks' run.sh (bench/s3, bench/oci): the run's tmp dir and report path,
# stopping everything the run started at exit (Ctrl-C included), bounded steps, astore built and started
# as deployed, one fresh server per measurement, the report's header and the report itself. Sourced, not
# run; the sourcing script, after `set -euo pipefail`:
#
#   source "$(dirname "$0")/../common/lib.sh"
#   bench_init oci astore,distribution astore-bench-oci   # bench/<name>, default BENCH_TARGETS, tmp prefix
#
# then, for measure, defines start_<server> PORT DATA_DIR LOG for every server but astore (each starts it
# in the background and sets server_pid), the health path of each server in the associative array
# `health`, and `loadgen_timeout`, the time limit of one load generator run in seconds.
#
# Environment read here: BENCH_TARGETS, BENCH_TMPDIR, BENCH_QUICK, BENCH_REVISION (see each run.sh).

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { printf '[bench] %s\n' "$*" >&2; }

# bench_init NAME DEFAULT_TARGETS TMP_PREFIX: from the repository root, a fresh tmp dir ($work, removed
# at exit with every server still running), the report path ($out_dir/$stamp.md), $quick_flags for the
# TypeScript drivers, and this run's credentials.
bench_init() {
  cd "$repo"
  bench_dir="bench/$1"
  targets=",${BENCH_TARGETS:-$2},"
  local base="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
  mkdir -p "$base"
  work="$(mktemp -d "$base/$3.XXXXXX")"
  out_dir="$repo/$bench_dir/out"
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  report="$out_dir/$stamp.md"
  status=0
  started_pids=()
  step_pid=""
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
  mkdir -p "$out_dir"

  quick_flags=()
  if [ "${BENCH_QUICK:-0}" = 1 ]; then quick_flags+=(--quick); fi

  # Credentials for this run only; the servers live on 127.0.0.1 for a few minutes. Passed through the
  # environment (loadgen.ts reads BENCH_ACCESS_KEY / BENCH_SECRET_KEY), not argv, so `ps` does not show
  # them.
  export BENCH_ACCESS_KEY="benchadmin"
  BENCH_SECRET_KEY="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  export BENCH_SECRET_KEY
}

# targeted SERVER: whether BENCH_TARGETS names it.
targeted() { [[ "$targets" == *,"$1",* ]]; }

# Stops one process we started: SIGTERM, up to 10 s, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for 10 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  # Ignore further signals while cleaning up (a second Ctrl-C must not leave the tmp dir behind).
  trap '' INT TERM
  trap - EXIT
  # The running step first (the load generator), then the servers.
  [ -n "$step_pid" ] && stop_pid "$step_pid"
  for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work"
  exit "$rc"
}

free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# wait_http URL SECONDS PID: polls until URL answers 200; fails early if PID died.
wait_http() {
  local url=$1 seconds=$2 pid=$3
  local deadline=$((SECONDS + seconds))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$pid" 2>/dev/null || return 1
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.2
  done
  return 1
}

# step CMD...: runs one measurement. A failure marks the run failed but lets the other steps go on; an
# interrupt stops the run. The command runs in the background and the script `wait`s for it: `wait`
# returns at once when a trapped signal (Ctrl-C, a CI cancel's SIGTERM) arrives, so the trap stops it
# and the servers right away; a foreground command would make bash wait for the whole step first.
step() {
  local rc=0
  "$@" &
  step_pid=$!
  wait "$step_pid" || rc=$?
  step_pid=""
  case "$rc" in
    0) ;;
    130 | 143) log "interrupted"; exit 130 ;;
    *) status=1 ;;
  esac
  return 0
}

# An array, not a function: `timeout` can only run a program. `timeout --foreground` keeps the command
# in the script's process group; its time limit still works (the command has no children to leave).
tsnode=(node --import tsx)

# astore is measured as it is deployed: compiled, run by plain node (bin/astore.js runs dist/).
build_astore() {
  if targeted astore; then
    log "building astore (npm run build)"
    npm run build --silent >&2
  fi
}

# astore's revision for the report: BENCH_REVISION, or HEAD's short hash and whether the tree differs.
# Plumbing only: porcelain `git diff` may rewrite .git/index, which can collide with a commit in progress.
astore_revision() {
  local revision="${BENCH_REVISION:-}"
  if [ -z "$revision" ]; then
    revision="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    GIT_OPTIONAL_LOCKS=0 git diff-index --quiet HEAD -- 2>/dev/null || revision+=" + uncommitted changes"
  fi
  echo "$revision"
}

# machine_description TITLE COMPARED [PROFILE_DETAIL]: the report's header, in $work/machine.md; COMPARED
# names the server astore is compared with and its version, PROFILE_DETAIL ends the profile line.
machine_description() {
  local title=$1 compared=$2 detail=${3:-} profile=full
  if [ "${BENCH_QUICK:-0}" = 1 ]; then profile="quick (BENCH_QUICK=1: small counts, figures not meaningful)"; fi
  {
    echo "## $title benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo
    echo "- machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/{printf "%.1f GiB", $2/1024}') RAM, kernel $(uname -r)"
    echo "- disk of the data dirs: $(df -h "$work" | awk 'NR==2{print $1 ", " $2 " total, " $4 " free"}') ($(findmnt -no FSTYPE -T "$work" 2>/dev/null || echo '?'))"
    echo "- node $(node --version); astore $(astore_revision); $compared"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- profile: $profile$detail"
  } > "$work/machine.md"
}

# start_astore PORT DATA_DIR LOG: the compiled server in the background, this run's root credentials.
start_astore() {
  env ASTORE_DATA_DIR="$2" ASTORE_SERVER__HOST=127.0.0.1 ASTORE_SERVER__PORT="$1" \
    ASTORE_AUTH__ROOT_ACCESS_KEY="$BENCH_ACCESS_KEY" ASTORE_AUTH__ROOT_SECRET_KEY="$BENCH_SECRET_KEY" \
    ASTORE_LOG__LEVEL=warn node packages/server/bin/astore.js serve > "$3" 2>&1 &
  server_pid=$!
}

# measure SERVER RESULT [loadgen flags...]: a fresh SERVER on a fresh data dir and a free port, the load
# generator ($bench_dir/loadgen.ts) against it (results in $work/RESULT.json), then the server stopped
# and its data removed.
measure() {
  local server=$1 result=$2
  shift 2
  local port data="$work/$result-data" server_log="$work/$result.log"
  port="$(free_port)"
  mkdir -p "$data"
  if [ "$result" = "$server" ]; then log "$server on 127.0.0.1:$port"; else log "$result: $server on 127.0.0.1:$port"; fi
  "start_$server" "$port" "$data" "$server_log"
  started_pids+=("$server_pid")
  # prepare_<server> PORT (optional) runs once the server answers, and may set loadgen_env (VAR=value
  # words) for the load generator, e.g. other credentials.
  loadgen_env=()
  if wait_http "http://127.0.0.1:$port${health[$server]}" 60 "$server_pid" &&
    { ! declare -F "prepare_$server" >/dev/null || "prepare_$server" "$port"; }; then
    step env "${loadgen_env[@]}" timeout --foreground "$loadgen_timeout" "${tsnode[@]}" "$bench_dir/loadgen.ts" --target "$result" \
      --endpoint "http://127.0.0.1:$port" --server-pid "$server_pid" --out "$work/$result.json" "$@"
  else
    log "$server did not answer GET ${health[$server]} with 200 within 60 s, or its preparation failed; its log:"
    tail -30 "$server_log" >&2
    status=1
  fi
  stop_pid "$server_pid"
  # astore's log (level warn) is kept next to the report when it has anything to say. The others' are
  # not: Distribution, for one, logs every 404 to a HEAD before a push (each new blob) at level error.
  if [[ "$server" = astore* ]] && [ -s "$server_log" ]; then cp "$server_log" "$out_dir/$stamp-$result.log"; fi
  rm -rf "$data"
}

# finish: the load average at the end, then the report ($bench_dir/report.ts) printed and written to
# $report; exits with the run's status.
finish() {
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.md"
  "${tsnode[@]}" "$bench_dir/report.ts" --dir "$work" --out "$report"
  log "report written to ${report#"$repo"/}"
  exit "$status"
}
