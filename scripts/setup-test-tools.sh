#!/usr/bin/env bash
# Installs the S3 clients the end-to-end tests drive (aws-cli v1 and boto3) into a cached Python venv
# and exports where they are:
#
#   ASTORE_TOOLS_DIR    cache root, ${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools} (outside the checkout,
#                       so a fresh CI clone reuses it)
#   ASTORE_TEST_AWS     <venv>/bin/aws      (awscli 1.46.3; it bundles botocore 1.43.x)
#   ASTORE_TEST_PYTHON  <venv>/bin/python   (boto3 1.44.5 with botocore 1.44.5)
#
# Sourced by scripts/test.sh under `set -euo pipefail`; it can also be run on its own to warm the cache
# (`bash scripts/setup-test-tools.sh`). On failure it prints why and returns (or exits) non-zero, so the
# test run stops: a missing client must fail loudly, never make the tests skip.
#
# The venv is keyed by the pinned versions and considered complete only when the marker file
# `.astore-installed` exists; it is written after the install and the smoke checks pass, so a half-done
# install (interrupted pip, network error) is wiped and redone on the next run. A cold install takes about
# 1-2 minutes.
#
# Environment quirks on the CI machines: AWS_CA_BUNDLE, REQUESTS_CA_BUNDLE, SSL_CERT_FILE and PIP_CERT are
# set globally. pip needs them to reach the package index, so they are left alone here. The tests talk
# plain http to 127.0.0.1, where aws-cli and boto3 ignore the CA bundle; a client that insists on loading
# it (rclone 1.60 does) must be run with `env -u AWS_CA_BUNDLE`. The image's global Python also has an
# older awscli/boto3: always use ASTORE_TEST_AWS / ASTORE_TEST_PYTHON, never `aws` from PATH.

astore_setup_test_tools() {
  local awscli_version=1.46.3
  local boto3_version=1.44.5
  local tools_dir="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
  local venv="$tools_dir/venv-awscli-$awscli_version-boto3-$boto3_version"
  local marker="$venv/.astore-installed"

  if [ ! -f "$marker" ]; then
    if ! command -v python3 >/dev/null 2>&1; then
      echo "setup-test-tools: python3 is not on PATH; it is needed for the aws-cli/boto3 venv" >&2
      return 1
    fi
    echo "setup-test-tools: installing awscli==$awscli_version boto3==$boto3_version into $venv" >&2
    mkdir -p "$tools_dir" || return 1
    rm -rf "$venv"
    if ! python3 -m venv "$venv"; then
      echo "setup-test-tools: FAILED: python3 -m venv $venv (is the python3-venv package installed?)" >&2
      rm -rf "$venv"
      return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet "awscli==$awscli_version" "boto3==$boto3_version"; then
      echo "setup-test-tools: FAILED: pip install awscli==$awscli_version boto3==$boto3_version" >&2
      rm -rf "$venv"
      return 1
    fi
  fi

  # Smoke checks, also on a cached venv: a venv whose base Python was upgraded or removed breaks silently.
  local aws_version
  if ! aws_version=$("$venv/bin/aws" --version 2>&1); then
    echo "setup-test-tools: FAILED: $venv/bin/aws --version: $aws_version" >&2
    echo "setup-test-tools: remove $venv to force a reinstall" >&2
    rm -f "$marker"
    return 1
  fi
  case "$aws_version" in
    "aws-cli/$awscli_version "*) ;;
    *)
      echo "setup-test-tools: FAILED: expected aws-cli/$awscli_version, got: $aws_version" >&2
      rm -f "$marker"
      return 1
      ;;
  esac
  if ! "$venv/bin/python" -c 'import boto3, sys; sys.exit(0 if boto3.__version__ == sys.argv[1] else 1)' \
    "$boto3_version"; then
    echo "setup-test-tools: FAILED: $venv/bin/python cannot import boto3 $boto3_version" >&2
    rm -f "$marker"
    return 1
  fi
  touch "$marker" || return 1

  export ASTORE_TOOLS_DIR="$tools_dir"
  export ASTORE_TEST_AWS="$venv/bin/aws"
  export ASTORE_TEST_PYTHON="$venv/bin/python"
}

# `return` works only when sourced; when run as a script, exit with the same status.
if (return 0 2>/dev/null); then
  astore_setup_test_tools || {
    _astore_rc=$?
    unset -f astore_setup_test_tools
    return "$_astore_rc"
  }
  unset -f astore_setup_test_tools
else
  set -euo pipefail
  astore_setup_test_tools
  echo "ASTORE_TEST_AWS=$ASTORE_TEST_AWS"
  echo "ASTORE_TEST_PYTHON=$ASTORE_TEST_PYTHON"
fi
