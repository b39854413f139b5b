"""ListObjects v1 and v2 paginators over ~2500 keys, with and without delimiter, and encoding-type=url.

The keys are written beforehand by test/s3/sdk-listing.e2e.test.ts (writing 2500 objects costs far more than
listing them, so both SDKs list one bucket): ASTORE_LISTING_BUCKET names the bucket and
ASTORE_LISTING_KEYS a JSON file with every key in it.
"""

import functools
import json
import os
from urllib.parse import unquote_plus

from .common import check, expect, expect_equal

LISTING = "listing"


def utf8_order(keys):
    """S3 lists keys in UTF-8 byte order (not UTF-16 code unit order)."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


@functools.cache
def all_keys():
    with open(os.environ["ASTORE_LISTING_KEYS"], encoding="utf-8") as f:
        keys = utf8_order(json.load(f))
    expect(len(keys) >= 2500 and len(set(keys)) == len(keys), f"expected at least 2500 distinct keys, got {len(keys)}")
    return tuple(keys)


def listing_bucket():
    return os.environ["ASTORE_LISTING_BUCKET"]


def rolled_up(keys, delimiter="/"):
    contents = [k for k in keys if delimiter not in k]
    prefixes = utf8_order({k[: k.index(delimiter) + 1] for k in keys if delimiter in k})
    return contents, prefixes


def collect(pages):
    """Every key and common prefix in page order, and the number of pages."""
    keys, prefixes, count = [], [], 0
    for page in pages:
        count += 1
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes, count


@check(LISTING, "list_objects_v2 paginator without delimiter: every key once, in order")
def _(ctx):
    s3, bucket, expected = ctx.s3, listing_bucket(), list(all_keys())
    for page_size in (1000, 377):
        keys, prefixes, pages = collect(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}))
        expect_equal(pages, -(-len(expected) // page_size), f"pages of {page_size}")
        expect(keys == expected, f"v2 keys (page size {page_size}) differ: first difference at {first_difference(keys, expected)}")
        expect_equal(prefixes, [], "common prefixes without delimiter")


@check(LISTING, "list_objects (v1) paginator without delimiter: every key once, in order")
def _(ctx):
    s3, bucket, expected = ctx.s3, listing_bucket(), list(all_keys())
    for page_size in (1000, 401):
        keys, _, pages = collect(s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": page_size}))
        expect_equal(pages, -(-len(expected) // page_size), f"pages of {page_size}")
        expect(keys == expected, f"v1 keys (page size {page_size}) differ: first difference at {first_difference(keys, expected)}")


@check(LISTING, "v1 and v2 paginators with delimiter '/': keys and common prefixes once each, in order")
def _(ctx):
    s3, bucket = ctx.s3, listing_bucket()
    contents, prefixes = rolled_up(all_keys())
    for operation in ("list_objects_v2", "list_objects"):
        for page_size in (1000, 7):
            got_keys, got_prefixes, _ = collect(s3.get_paginator(operation).paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": page_size}))
            expect(got_keys == contents, f"{operation}/{page_size} keys differ: {first_difference(got_keys, contents)}")
            expect_equal(got_prefixes, prefixes, f"{operation}/{page_size} common prefixes")


@check(LISTING, "prefix and delimiter inside a directory, including a prefix with a space")
def _(ctx):
    s3, bucket, keys = ctx.s3, listing_bucket(), list(all_keys())
    for prefix in ("dir-05/", "with space/", "unicode/", "dir-1"):
        expected_contents, expected_prefixes = rolled_up([k[len(prefix) :] for k in keys if k.startswith(prefix)])
        for operation in ("list_objects_v2", "list_objects"):
            got_keys, got_prefixes, _ = collect(s3.get_paginator(operation).paginate(Bucket=bucket, Prefix=prefix, Delimiter="/", PaginationConfig={"PageSize": 40}))
            expect_equal(got_keys, [prefix + k for k in expected_contents], f"{operation} keys under {prefix!r}")
            expect_equal(got_prefixes, [prefix + p for p in expected_prefixes], f"{operation} prefixes under {prefix!r}")


@check(LISTING, "StartAfter and MaxKeys on list_objects_v2")
def _(ctx):
    s3, bucket, keys = ctx.s3, listing_bucket(), list(all_keys())
    page = s3.list_objects_v2(Bucket=bucket, StartAfter="percent%", MaxKeys=3)
    start = keys.index("percent%") + 1
    expect_equal([o["Key"] for o in page["Contents"]], keys[start : start + 3], "keys after StartAfter")
    expect_equal((page["KeyCount"], page["IsTruncated"]), (3, True), "KeyCount / IsTruncated")


@check(LISTING, "encoding-type=url: keys and prefixes come back percent-encoded")
def _(ctx):
    s3, bucket = ctx.s3, listing_bucket()
    # EncodingType given explicitly: botocore leaves the values as the server sent them.
    for operation in (s3.list_objects_v2, s3.list_objects):
        raw = operation(Bucket=bucket, Prefix="", EncodingType="url", MaxKeys=1000)
        expect_equal(raw.get("EncodingType"), "url", "EncodingType echoed")
        encoded = [o["Key"] for o in raw["Contents"]]
        expect(all(k.isascii() and " " not in k and "\t" not in k for k in encoded), f"a key is not encoded: {[k for k in encoded if not k.isascii() or ' ' in k][:3]}")
        expect_equal([unquote_plus(k) for k in encoded], list(all_keys()[:1000]), "decoded keys")
        spaced = operation(Bucket=bucket, Prefix="with space/", Delimiter="/", EncodingType="url")
        expect_equal(spaced.get("Prefix"), "with%20space/", "Prefix (encoded)")
        expect_equal([unquote_plus(o["Key"]) for o in spaced["Contents"]], ["with space/inner file"], "keys under an encoded prefix")
    special = s3.list_objects_v2(Bucket=bucket, Prefix="plus+", EncodingType="url")
    expect_equal([o["Key"] for o in special["Contents"]], ["plus%2Bsign"], "'+' is encoded as %2B")
    percent = s3.list_objects_v2(Bucket=bucket, Prefix="percent%", EncodingType="url")
    expect_equal([o["Key"] for o in percent["Contents"]], ["percent%25", "percent%2525literal"], "'%' is encoded as %25")


def first_difference(actual, expected):
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a != e:
            return f"index {i}: {a!r} != {e!r}"
    return f"lengths {len(actual)} != {len(expected)}"
