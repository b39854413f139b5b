"""Shared plumbing of the boto3 end-to-end checks: the check registry, clients, error expectations and
checksum functions computed independently of the server (pure Python where botocore needs awscrt)."""

import base64
import email.header
import hashlib
import os
import random
import struct
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# section -> ordered {check name -> function(ctx)}
REGISTRY: "OrderedDict[str, OrderedDict]" = OrderedDict()


def check(section, name):
    """Registers `fn(ctx)` as check `name` of `section`; checks of a section run in declaration order."""

    def register(fn):
        REGISTRY.setdefault(section, OrderedDict())[name] = fn
        return fn

    return register


class CheckFailed(AssertionError):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def make_client(endpoint, access_key=None, secret_key=None, **config):
    """A path-style S3 client that never retries, so a 5xx or a wrong answer shows up as it is."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=access_key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_key or os.environ["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            **{
                "s3": {"addressing_style": "path"},
                "retries": {"total_max_attempts": 1, "mode": "standard"},
                "max_pool_connections": 32,
                # botocore's defaults, stated so that AWS_* variables of the environment cannot change them
                "request_checksum_calculation": "when_supported",
                "response_checksum_validation": "when_supported",
                **config,
            }
        ),
    )


@dataclass
class Context:
    endpoint: str
    s3: object
    run_id: str
    sent: list = field(default_factory=list)

    def bucket(self, name):
        """A bucket name unique to this run (the server is shared by the sections of one test file)."""
        return f"{name}-{self.run_id}"

    def record_requests(self, client=None):
        """Records the headers of every request the client sends (to assert which payload mode it used)."""
        sent = []

        def hook(request, **_):
            sent.append({k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()})

        (client or self.s3).meta.events.register("before-send.s3.*", hook)
        return sent


def expect_error(fn, code, status):
    """Runs fn, which must fail with S3 error `code` and HTTP `status`; returns the ClientError response."""
    try:
        fn()
    except ClientError as err:
        response = err.response
        expect_equal(response["Error"].get("Code"), code, "error code")
        expect_equal(response["ResponseMetadata"]["HTTPStatusCode"], status, f"HTTP status of {code}")
        return response
    raise CheckFailed(f"expected {code} ({status}), but the call succeeded")


def expect_s3_error_document(response, code):
    """An S3 XML error: Code, a Message, and a RequestId equal to the x-amz-request-id header."""
    expect_equal(response["Error"].get("Code"), code, "error code")
    expect(response["Error"].get("Message"), f"{code} has an empty Message")
    header_id = response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
    expect(header_id, f"{code} has no x-amz-request-id header")
    expect_equal(response["ResponseMetadata"].get("RequestId"), header_id, "RequestId in the XML body vs x-amz-request-id")


def payload(size, seed):
    return random.Random(seed).randbytes(size)


def empty_bucket(s3, bucket):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def rfc2047_decode(value):
    """S3 returns non-ASCII metadata RFC 2047 encoded (=?UTF-8?B?...?=); plain ASCII passes through."""
    return str(email.header.make_header(email.header.decode_header(value)))


# --- checksums, as S3 encodes them: base64 of the big-endian digest ---------------------------------


def _reflected_table(poly):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _reflected_table(0x82F63B78)
_CRC64NVME = _reflected_table(0x9A6C9329AC4BC9B5)


def _crc(table, data, mask):
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def raw_checksum(algorithm, data):
    if algorithm == "CRC32":
        return struct.pack(">I", zlib.crc32(data))
    if algorithm == "CRC32C":
        return struct.pack(">I", _crc(_CRC32C, data, 0xFFFFFFFF))
    if algorithm == "CRC64NVME":
        return struct.pack(">Q", _crc(_CRC64NVME, data, 0xFFFFFFFFFFFFFFFF))
    if algorithm == "SHA1":
        return hashlib.sha1(data).digest()
    if algorithm == "SHA256":
        return hashlib.sha256(data).digest()
    raise ValueError(algorithm)


def checksum(algorithm, data):
    return base64.b64encode(raw_checksum(algorithm, data)).decode()


def composite_checksum(algorithm, parts):
    """S3 COMPOSITE checksum: checksum of the concatenated raw part checksums, then -N."""
    joined = b"".join(raw_checksum(algorithm, p) for p in parts)
    return f"{checksum(algorithm, joined)}-{len(parts)}"


def md5_etag(data):
    return f'"{hashlib.md5(data).hexdigest()}"'


def multipart_etag(parts):
    """S3 ETag of a multipart object: md5 of the concatenated binary part MD5s, then -N."""
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def b64md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()
