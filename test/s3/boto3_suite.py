#!/usr/bin/env python3
"""boto3 end-to-end checks against a running astore (driven by test/s3/boto3.e2e.test.ts).

Usage: boto3_suite.py ENDPOINT SECTION [SECTION...]    (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
       boto3_suite.py --list                            (prints {"section": ..., "checks": [...]} per section)

Prints one JSON line per check: {"section", "check", "ok", "ms"} plus "error" when it failed. Exits 1 when a
check failed, 2 on a usage error. A section's checks run in order and share its buckets.
"""

import json
import sys
import time
import traceback
import uuid

import boto3

from boto3_checks import errors, listing, objects, payloads  # noqa: F401  (they register their checks)
from boto3_checks.common import REGISTRY, Context, make_client


def main(argv):
    if argv[1:] == ["--list"]:
        for section, checks in REGISTRY.items():
            print(json.dumps({"section": section, "checks": list(checks)}))
        return 0
    if len(argv) < 3 or any(s not in REGISTRY for s in argv[2:]):
        print(f"usage: {argv[0]} ENDPOINT SECTION...; sections: {', '.join(REGISTRY)}", file=sys.stderr)
        return 2
    if boto3.__version__ != "1.44.5":
        print(f"expected boto3 1.44.5, found {boto3.__version__}", file=sys.stderr)
        return 2
    endpoint, failed = argv[1], False
    for section in argv[2:]:
        ctx = Context(endpoint=endpoint, s3=make_client(endpoint), run_id=uuid.uuid4().hex[:8])
        for name, fn in REGISTRY[section].items():
            started = time.monotonic()
            result = {"section": section, "check": name, "ok": True}
            try:
                fn(ctx)
            except Exception as err:  # every failure becomes a reported check, never a crash of the run
                failed = True
                result.update(ok=False, error=f"{type(err).__name__}: {err}", trace=traceback.format_exc(limit=6))
            result["ms"] = round((time.monotonic() - started) * 1000)
            print(json.dumps(result), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
