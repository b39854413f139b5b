"""Buckets, object CRUD with headers and metadata, ranges and conditional requests, copy, batch delete."""

import gzip
from datetime import timedelta

from .common import (
    check,
    empty_bucket,
    expect,
    expect_equal,
    expect_error,
    md5_etag,
    payload,
    rfc2047_decode,
)

# --- buckets ----------------------------------------------------------------------------------------


@check("buckets", "create, head, list, location, delete")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket("lifecycle")
    created = s3.create_bucket(Bucket=bucket)
    expect_equal(created["ResponseMetadata"]["HTTPStatusCode"], 200, "CreateBucket status")
    head = s3.head_bucket(Bucket=bucket)
    expect_equal(head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region"), "us-east-1", "x-amz-bucket-region")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    expect(bucket in names, f"{bucket} missing from ListBuckets: {names}")
    # us-east-1 is reported as a null LocationConstraint, as S3 does.
    expect_equal(s3.get_bucket_location(Bucket=bucket).get("LocationConstraint"), None, "LocationConstraint")
    expect_equal(s3.delete_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"], 204, "DeleteBucket status")
    expect(bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]], "bucket still listed after delete")


@check("buckets", "creating an existing bucket is BucketAlreadyOwnedByYou")
def _(ctx):
    bucket = ctx.bucket("twice")
    ctx.s3.create_bucket(Bucket=bucket)
    expect_error(lambda: ctx.s3.create_bucket(Bucket=bucket), "BucketAlreadyOwnedByYou", 409)
    ctx.s3.delete_bucket(Bucket=bucket)


@check("buckets", "deleting a bucket with an object is BucketNotEmpty and keeps it")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket("notempty")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    expect_error(lambda: s3.delete_bucket(Bucket=bucket), "BucketNotEmpty", 409)
    expect_equal(s3.get_object(Bucket=bucket, Key="keep")["Body"].read(), b"x", "object after BucketNotEmpty")
    s3.delete_object(Bucket=bucket, Key="keep")
    s3.delete_bucket(Bucket=bucket)


@check("buckets", "missing bucket is NoSuchBucket (404) for head, location, list, put, delete")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket("missing")
    expect_error(lambda: s3.head_bucket(Bucket=bucket), "404", 404)
    expect_error(lambda: s3.get_bucket_location(Bucket=bucket), "NoSuchBucket", 404)
    expect_error(lambda: s3.list_objects_v2(Bucket=bucket), "NoSuchBucket", 404)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x"), "NoSuchBucket", 404)
    expect_error(lambda: s3.delete_bucket(Bucket=bucket), "NoSuchBucket", 404)


@check("buckets", "InvalidBucketName for Bad_Name and the reserved names v2 and api")
def _(ctx):
    for name in ("Bad_Name", "v2", "api"):
        response = expect_error(lambda: ctx.s3.create_bucket(Bucket=name), "InvalidBucketName", 400)
        expect(name in response["Error"].get("BucketName", name), f"BucketName of {name}")
    names = [b["Name"] for b in ctx.s3.list_buckets()["Buckets"]]
    expect(not {"Bad_Name", "v2", "api"} & set(names), f"an invalid bucket was created: {names}")


# --- objects ----------------------------------------------------------------------------------------

OBJECTS = "objects"


@check(OBJECTS, "put, get, head, delete with metadata and content headers")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    s3.create_bucket(Bucket=bucket)
    body = gzip.compress(payload(3000, 1))
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/report.json",
        Body=body,
        ContentType="application/json",
        ContentDisposition='attachment; filename="report.json"',
        ContentEncoding="gzip",
        ContentLanguage="en-GB",
        CacheControl="max-age=60, public",
        Metadata={"colour": "blue", "multi-word-key": "a b  c"},
    )
    expect_equal(put["ETag"], md5_etag(body), "PutObject ETag")
    for response in (s3.get_object(Bucket=bucket, Key="docs/report.json"), s3.head_object(Bucket=bucket, Key="docs/report.json")):
        expect_equal(response["ETag"], md5_etag(body), "ETag")
        expect_equal(response["ContentLength"], len(body), "ContentLength")
        expect_equal(response["ContentType"], "application/json", "ContentType")
        expect_equal(response["ContentDisposition"], 'attachment; filename="report.json"', "ContentDisposition")
        expect_equal(response["ContentEncoding"], "gzip", "ContentEncoding")
        expect_equal(response["ContentLanguage"], "en-GB", "ContentLanguage")
        expect_equal(response["CacheControl"], "max-age=60, public", "CacheControl")
        expect_equal(response["Metadata"], {"colour": "blue", "multi-word-key": "a b  c"}, "Metadata")
        expect_equal(response["AcceptRanges"], "bytes", "AcceptRanges")
    # gzip is the stored object's encoding: the bytes come back as stored, not decompressed.
    expect_equal(s3.get_object(Bucket=bucket, Key="docs/report.json")["Body"].read(), body, "body")
    expect_equal(s3.delete_object(Bucket=bucket, Key="docs/report.json")["ResponseMetadata"]["HTTPStatusCode"], 204, "DeleteObject status")
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="docs/report.json"), "404", 404)
    expect_error(lambda: s3.get_object(Bucket=bucket, Key="docs/report.json"), "NoSuchKey", 404)
    # Deleting a missing key succeeds, as in S3.
    expect_equal(s3.delete_object(Bucket=bucket, Key="docs/report.json")["ResponseMetadata"]["HTTPStatusCode"], 204, "second DeleteObject")


@check(OBJECTS, "an object without Content-Type is binary/octet-stream; empty objects work")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    expect_equal(got["Body"].read(), b"", "empty body")
    expect_equal(got["ETag"], '"d41d8cd98f00b204e9800998ecf8427e"', "ETag of the empty object")
    expect_equal(got["ContentType"], "binary/octet-stream", "default ContentType")


@check(OBJECTS, "non-ASCII metadata values round-trip as RFC 2047 encoded words")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    # botocore refuses non-ASCII Metadata values (raw UTF-8 header bytes fail SigV4 on S3 too), so
    # non-ASCII travels as RFC 2047 encoded words, which S3 documents for metadata.
    sent = {"b-encoded": "=?UTF-8?B?0J/RgNC40LLQtdGC?=", "q-encoded": "=?UTF-8?Q?caf=C3=A9_=E2=9C=93?=", "ascii": "plain"}
    expected = {"b-encoded": "Привет", "q-encoded": "café ✓", "ascii": "plain"}
    s3.put_object(Bucket=bucket, Key="meta", Body=b"m", Metadata=sent)
    for response in (s3.head_object(Bucket=bucket, Key="meta"), s3.get_object(Bucket=bucket, Key="meta")):
        expect_equal({k: rfc2047_decode(v) for k, v in response["Metadata"].items()}, expected, "decoded metadata")


@check(OBJECTS, "response-* query overrides on GET")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    s3.put_object(Bucket=bucket, Key="override", Body=b"override me", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="override",
        ResponseContentType="application/x-override",
        ResponseContentDisposition='inline; filename="o.txt"',
        ResponseContentEncoding="identity",
        ResponseContentLanguage="fr",
        ResponseCacheControl="no-store",
    )
    expect_equal(got["ContentType"], "application/x-override", "ContentType")
    expect_equal(got["ContentDisposition"], 'inline; filename="o.txt"', "ContentDisposition")
    expect_equal(got["ContentEncoding"], "identity", "ContentEncoding")
    expect_equal(got["ContentLanguage"], "fr", "ContentLanguage")
    expect_equal(got["CacheControl"], "no-store", "CacheControl")
    expect_equal(got["Body"].read(), b"override me", "body")
    # The override is per request: the stored headers are unchanged.
    expect_equal(s3.head_object(Bucket=bucket, Key="override")["ContentType"], "text/plain", "stored ContentType")


@check(OBJECTS, "Range requests: first-last, open-ended, suffix, unsatisfiable")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    body = payload(10_000, 2)
    s3.put_object(Bucket=bucket, Key="ranged", Body=body)
    for header, start, end in (("bytes=0-0", 0, 0), ("bytes=100-1099", 100, 1099), ("bytes=9000-", 9000, 9999), ("bytes=-250", 9750, 9999), ("bytes=9990-20000", 9990, 9999)):
        got = s3.get_object(Bucket=bucket, Key="ranged", Range=header)
        expect_equal(got["ResponseMetadata"]["HTTPStatusCode"], 206, f"status of {header}")
        expect_equal(got["ContentRange"], f"bytes {start}-{end}/10000", f"Content-Range of {header}")
        expect_equal(got["ContentLength"], end - start + 1, f"Content-Length of {header}")
        expect_equal(got["Body"].read(), body[start : end + 1], f"bytes of {header}")
    response = expect_error(lambda: s3.get_object(Bucket=bucket, Key="ranged", Range="bytes=10000-"), "InvalidRange", 416)
    expect_equal(response["ResponseMetadata"]["HTTPHeaders"].get("content-range"), "bytes */10000", "Content-Range of a 416")


@check(OBJECTS, "conditional GET and HEAD: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    put = s3.put_object(Bucket=bucket, Key="cond", Body=b"conditional")
    etag = put["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="cond")["LastModified"]
    before, after = modified - timedelta(days=1), modified + timedelta(days=1)

    def get(**conditions):
        return s3.get_object(Bucket=bucket, Key="cond", **conditions)

    expect_equal(get(IfMatch=etag)["Body"].read(), b"conditional", "If-Match (matching)")
    expect_equal(get(IfNoneMatch='"0123456789abcdef0123456789abcdef"')["ETag"], etag, "If-None-Match (other)")
    expect_equal(get(IfModifiedSince=before)["ETag"], etag, "If-Modified-Since (earlier)")
    expect_equal(get(IfUnmodifiedSince=after)["ETag"], etag, "If-Unmodified-Since (later)")
    expect_error(lambda: get(IfMatch='"0123456789abcdef0123456789abcdef"'), "PreconditionFailed", 412)
    expect_error(lambda: get(IfUnmodifiedSince=before), "PreconditionFailed", 412)
    expect_error(lambda: get(IfNoneMatch=etag), "304", 304)
    expect_error(lambda: get(IfModifiedSince=after), "304", 304)
    # A true If-Match wins over a false If-Unmodified-Since; If-None-Match wins over If-Modified-Since.
    expect_equal(get(IfMatch=etag, IfUnmodifiedSince=before)["ETag"], etag, "If-Match + If-Unmodified-Since")
    expect_error(lambda: get(IfNoneMatch=etag, IfModifiedSince=before), "304", 304)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="cond", IfMatch='"00"'), "412", 412)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="cond", IfNoneMatch=etag), "304", 304)


@check(OBJECTS, "conditional PUT: If-None-Match * on an existing key is 412 and keeps the object")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    first = s3.put_object(Bucket=bucket, Key="create-only", Body=b"first", IfNoneMatch="*")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="create-only", Body=b"second", IfNoneMatch="*"), "PreconditionFailed", 412)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="create-only", Body=b"third", IfMatch='"0123456789abcdef0123456789abcdef"'), "PreconditionFailed", 412)
    got = s3.get_object(Bucket=bucket, Key="create-only")
    expect_equal((got["Body"].read(), got["ETag"]), (b"first", first["ETag"]), "object after refused conditional PUTs")
    replaced = s3.put_object(Bucket=bucket, Key="create-only", Body=b"fourth", IfMatch=first["ETag"])
    expect_equal(replaced["ETag"], md5_etag(b"fourth"), "ETag after If-Match PUT")


@check(OBJECTS, "copy_object with COPY and REPLACE directives, across keys with special characters")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(OBJECTS)
    body = payload(70_000, 3)
    source = "src dir/ä+b%c.bin"
    put = s3.put_object(Bucket=bucket, Key=source, Body=body, ContentType="application/x-src", Metadata={"origin": "source"})
    copied = s3.copy_object(Bucket=bucket, Key="copy/kept", CopySource={"Bucket": bucket, "Key": source})
    expect_equal(copied["CopyObjectResult"]["ETag"], put["ETag"], "CopyObjectResult ETag")
    kept = s3.get_object(Bucket=bucket, Key="copy/kept")
    expect_equal((kept["Body"].read(), kept["ContentType"], kept["Metadata"]), (body, "application/x-src", {"origin": "source"}), "COPY result")
    s3.copy_object(
        Bucket=bucket,
        Key="copy/replaced",
        CopySource={"Bucket": bucket, "Key": source},
        MetadataDirective="REPLACE",
        ContentType="text/x-new",
        Metadata={"origin": "replaced"},
    )
    replaced = s3.get_object(Bucket=bucket, Key="copy/replaced")
    expect_equal((replaced["Body"].read(), replaced["ContentType"], replaced["Metadata"]), (body, "text/x-new", {"origin": "replaced"}), "REPLACE result")
    # Copying an object onto itself needs REPLACE (S3 refuses a no-op copy).
    expect_error(lambda: s3.copy_object(Bucket=bucket, Key=source, CopySource={"Bucket": bucket, "Key": source}), "InvalidRequest", 400)
    s3.copy_object(Bucket=bucket, Key=source, CopySource={"Bucket": bucket, "Key": source}, MetadataDirective="REPLACE", Metadata={"origin": "self"})
    expect_equal(s3.head_object(Bucket=bucket, Key=source)["Metadata"], {"origin": "self"}, "metadata after self-copy")
    expect_error(lambda: s3.copy_object(Bucket=bucket, Key="copy/none", CopySource={"Bucket": bucket, "Key": "no such key"}), "NoSuchKey", 404)
    expect_error(
        lambda: s3.copy_object(Bucket=bucket, Key="copy/none", CopySource={"Bucket": bucket, "Key": source}, CopySourceIfMatch='"00"'),
        "PreconditionFailed",
        412,
    )


@check(OBJECTS, "delete_objects, non-quiet and quiet")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket("batch")
    s3.create_bucket(Bucket=bucket)
    keys = [f"batch/{i}" for i in range(5)] + ["batch/with space+plus", "batch/ünï"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    loud = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[:4] + ["batch/never-existed"]]})
    expect_equal(sorted(d["Key"] for d in loud.get("Deleted", [])), sorted(keys[:4] + ["batch/never-existed"]), "Deleted")
    expect_equal(loud.get("Errors", []), [], "Errors")
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[4:]], "Quiet": True})
    expect_equal((quiet.get("Deleted", []), quiet.get("Errors", [])), ([], []), "quiet DeleteObjects result")
    expect_equal(s3.list_objects_v2(Bucket=bucket).get("KeyCount"), 0, "objects left")
    s3.delete_bucket(Bucket=bucket)


@check(OBJECTS, "cleanup")
def _(ctx):
    empty_bucket(ctx.s3, ctx.bucket(OBJECTS))
    ctx.s3.delete_bucket(Bucket=ctx.bucket(OBJECTS))
