#!/usr/bin/env bash
# Sourced by scripts/test.sh. Placeholder until the S3 client venv lands.
export ASTORE_TOOLS_DIR="${ASTORE_TOOLS_DIR:-$HOME/.cache/astore/tools}"
