"""S3 error documents as boto3 sees them, authentication failures, request limits, presigned URLs."""

import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from datetime import timedelta
from unittest import mock

import botocore.auth

from .common import (
    check,
    empty_bucket,
    expect,
    expect_equal,
    expect_error,
    expect_s3_error_document,
    make_client,
    md5_etag,
)

ERRORS = "errors"
PRESIGNED = "presigned"


@check(ERRORS, "NoSuchKey and NoSuchBucket are S3 error documents with a RequestId")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(ERRORS)
    s3.create_bucket(Bucket=bucket)
    expect_s3_error_document(expect_error(lambda: s3.get_object(Bucket=bucket, Key="absent"), "NoSuchKey", 404), "NoSuchKey")
    expect_s3_error_document(expect_error(lambda: s3.list_objects_v2(Bucket=ctx.bucket("absent")), "NoSuchBucket", 404), "NoSuchBucket")


@check(ERRORS, "a wrong secret key is SignatureDoesNotMatch (403)")
def _(ctx):
    wrong = make_client(ctx.endpoint, secret_key="not-the-secret-key")
    expect_s3_error_document(expect_error(lambda: wrong.list_buckets(), "SignatureDoesNotMatch", 403), "SignatureDoesNotMatch")
    expect_error(lambda: wrong.put_object(Bucket=ctx.bucket(ERRORS), Key="k", Body=b"x"), "SignatureDoesNotMatch", 403)


@check(ERRORS, "an unknown access key is InvalidAccessKeyId (403)")
def _(ctx):
    unknown = make_client(ctx.endpoint, access_key="AKIDUNKNOWN0000")
    expect_s3_error_document(expect_error(lambda: unknown.list_buckets(), "InvalidAccessKeyId", 403), "InvalidAccessKeyId")


@check(ERRORS, "a 1025-byte key is KeyTooLongError; 1024 bytes of UTF-8 are fine")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(ERRORS)
    longest = "é" * 512  # 1024 bytes
    s3.put_object(Bucket=bucket, Key=longest, Body=b"fits")
    expect_equal(s3.get_object(Bucket=bucket, Key=longest)["Body"].read(), b"fits", "1024-byte key")
    for key in ("k" * 1025, longest + "k"):
        expect_s3_error_document(expect_error(lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"x"), "KeyTooLongError", 400), "KeyTooLongError")
    expect_error(lambda: s3.create_multipart_upload(Bucket=bucket, Key="k" * 1025), "KeyTooLongError", 400)


@check(ERRORS, "X-Amz-Date an hour off is RequestTimeTooSkewed (403)")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(ERRORS)
    real = botocore.auth.get_current_datetime
    for offset in (timedelta(hours=1), timedelta(hours=-1)):
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: real() + offset):
            response = expect_error(lambda: s3.list_objects_v2(Bucket=bucket), "RequestTimeTooSkewed", 403)
        expect_s3_error_document(response, "RequestTimeTooSkewed")


@check(ERRORS, "20 KiB of x-amz-meta-* headers is a 400 S3 error, not a 500")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(ERRORS)
    metadata = {f"field-{i:03d}": "v" * 200 for i in range(100)}
    response = expect_error(lambda: s3.put_object(Bucket=bucket, Key="big-headers", Body=b"x", Metadata=metadata), "RequestHeaderSectionTooLarge", 400)
    expect_s3_error_document(response, "RequestHeaderSectionTooLarge")
    # Under the header limit but over S3's 2 KiB of user metadata.
    metadata = {f"field-{i:03d}": "v" * 200 for i in range(12)}
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="big-metadata", Body=b"x", Metadata=metadata), "MetadataTooLarge", 400)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="big-headers"), "404", 404)
    # The server still answers normally afterwards.
    s3.put_object(Bucket=bucket, Key="after", Body=b"ok")


@check(ERRORS, "cleanup")
def _(ctx):
    empty_bucket(ctx.s3, ctx.bucket(ERRORS))
    ctx.s3.delete_bucket(Bucket=ctx.bucket(ERRORS))


# --- presigned URLs fetched with plain HTTP -----------------------------------------------------------


def http(method, url, body=None, headers=None):
    """(status, headers, body) of a plain urllib request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def error_code(status, headers, body):
    document = ET.fromstring(body)
    expect_equal(document.findtext("RequestId"), headers.get("x-amz-request-id"), "RequestId vs x-amz-request-id")
    expect(document.findtext("Message"), "error Message is empty")
    return status, document.findtext("Code")


def presigner(ctx):
    """boto3 presigns S3 URLs with Signature V2 unless told otherwise; this client presigns with SigV4."""
    return make_client(ctx.endpoint, signature_version="s3v4")


@check(PRESIGNED, "presigned GET (SigV4 and boto3's default SigV2), with response-* overrides")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PRESIGNED)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/file name+1.txt", Body=b"presigned bytes", ContentType="text/plain")
    params = {"Bucket": bucket, "Key": "dir/file name+1.txt"}
    url = presigner(ctx).generate_presigned_url("get_object", Params=params, ExpiresIn=300)
    expect("X-Amz-Signature=" in url, f"not a SigV4 URL: {url}")
    status, headers, body = http("GET", url)
    expect_equal((status, body, headers.get("etag")), (200, b"presigned bytes", md5_etag(b"presigned bytes")), "presigned GET")
    url = presigner(ctx).generate_presigned_url("get_object", Params={**params, "ResponseContentDisposition": 'attachment; filename="x.txt"'}, ExpiresIn=300)
    status, headers, _ = http("GET", url)
    expect_equal((status, headers.get("content-disposition")), (200, 'attachment; filename="x.txt"'), "presigned GET with an override")
    # Out of the box boto3 presigns S3 URLs with Signature V2, which astore accepts for legacy clients.
    legacy = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=300)
    expect("AWSAccessKeyId=" in legacy and "X-Amz-Signature" not in legacy, f"boto3's default presigned URL is no longer SigV2: {legacy}")
    status, _, body = http("GET", legacy)
    expect_equal((status, body), (200, b"presigned bytes"), "SigV2 presigned GET")


@check(PRESIGNED, "presigned PUT, with a signed Content-Type")
def _(ctx):
    s3, bucket, signer = ctx.s3, ctx.bucket(PRESIGNED), presigner(ctx)
    url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded/ü.bin"}, ExpiresIn=300)
    status, headers, _ = http("PUT", url, b"uploaded via presigned PUT")
    expect_equal((status, headers.get("etag")), (200, md5_etag(b"uploaded via presigned PUT")), "presigned PUT")
    expect_equal(s3.get_object(Bucket=bucket, Key="uploaded/ü.bin")["Body"].read(), b"uploaded via presigned PUT", "uploaded bytes")
    url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "typed", "ContentType": "application/x-typed"}, ExpiresIn=300)
    expect_equal(http("PUT", url, b"typed", {"Content-Type": "application/x-typed"})[0], 200, "presigned PUT with its Content-Type")
    expect_equal(s3.head_object(Bucket=bucket, Key="typed")["ContentType"], "application/x-typed", "stored Content-Type")
    expect_equal(error_code(*http("PUT", url, b"typed", {"Content-Type": "text/plain"})), (403, "SignatureDoesNotMatch"), "PUT with another Content-Type")


@check(PRESIGNED, "tampered and expired presigned URLs are refused")
def _(ctx):
    bucket, signer = ctx.bucket(PRESIGNED), presigner(ctx)
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "typed"}, ExpiresIn=300)
    expect_equal(error_code(*http("GET", url.replace("/typed?", "/uploaded/%C3%BC.bin?"))), (403, "SignatureDoesNotMatch"), "other key")
    expect_equal(error_code(*http("GET", url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000"))), (403, "SignatureDoesNotMatch"), "longer expiry")
    real = botocore.auth.get_current_datetime
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: real() - timedelta(hours=2)):
        expired = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "typed"}, ExpiresIn=3600)
    expect_equal(error_code(*http("GET", expired)), (403, "AccessDenied"), "expired URL")


@check(PRESIGNED, "cleanup")
def _(ctx):
    empty_bucket(ctx.s3, ctx.bucket(PRESIGNED))
    ctx.s3.delete_bucket(Bucket=ctx.bucket(PRESIGNED))
