#!/usr/bin/env bash
# Installs what the tests need (npm dependencies, the S3 and registry clients) and runs every test:
# unit tests beside the code, integration and end-to-end tests under test/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# aws-cli and boto3 in a cached venv; exports ASTORE_TEST_AWS and ASTORE_TEST_PYTHON.
source scripts/setup-test-tools.sh
# The OCI conformance suite and the registry clients, built once into the tools cache (ASTORE_TEST_*).
source scripts/install-oci-tools.sh conformance oras crane regctl helm cosign notation
# skopeo and podman from Debian's packages; exports ASTORE_TEST_SKOPEO and ASTORE_TEST_PODMAN.
source scripts/install-debian-tools.sh
# Keycloak for the identity tests, unpacked and pre-built once into the tools cache; exports
# ASTORE_TEST_KEYCLOAK (each test file that needs it starts its own from there).
source scripts/install-keycloak.sh
# The storage backends the blob drivers are tested against: MinIO and fake-gcs-server built once into
# the tools cache, Azurite from the npm devDependencies.
export ASTORE_TEST_MINIO="$(bash scripts/install-minio.sh)"
export ASTORE_TEST_FAKE_GCS="$(bash scripts/install-fake-gcs.sh)"
export ASTORE_TEST_AZURITE="$PWD/node_modules/.bin/azurite-blob"
# PostgreSQL server binaries (Debian's postgresql-15 when missing); exports ASTORE_TEST_POSTGRES. Each
# test file that needs one starts a throwaway cluster of its own.
source scripts/install-postgres.sh

npm run typecheck

mapfile -t files < <(find packages/*/src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "no test files found" >&2
  exit 1
fi
node --import tsx --test --test-concurrency="${ASTORE_TEST_CONCURRENCY:-2}" "${files[@]}"

# The S3, registry and supply-chain end-to-end suites once more on the S3 blob driver (MinIO) and the
# PostgreSQL MetaStore (test/helpers/backend.ts): the same clients, the same assertions.
mapfile -t e2e < <(find test/s3 test/oci test/supplychain -name '*.test.ts' | sort)
echo "# again on s3-postgres: ${#e2e[@]} files"
ASTORE_TEST_BACKEND=s3-postgres exec node --import tsx --test --test-concurrency="${ASTORE_TEST_CONCURRENCY:-2}" "${e2e[@]}"
