"""Payload modes boto3 sends, S3 checksums end to end, BadDigest, s3transfer and hand-driven multipart."""

import io
import os
import tempfile

from boto3.s3.transfer import TransferConfig

from .common import (
    b64md5,
    check,
    checksum,
    composite_checksum,
    empty_bucket,
    expect,
    expect_equal,
    expect_error,
    make_client,
    md5_etag,
    multipart_etag,
    payload,
)

PAYLOADS = "payloads"
MULTIPART = "multipart"
MiB = 1024 * 1024


def force_trailer_checksum(client):
    """Makes PutObject/UploadPart send aws-chunked with STREAMING-UNSIGNED-PAYLOAD-TRAILER, as boto3 does
    over https; over http botocore puts the checksum in a header and signs the payload."""

    def hook(params, **_):
        algorithm = params.get("context", {}).get("checksum", {}).get("request_algorithm")
        if isinstance(algorithm, dict):
            algorithm["in"] = "trailer"

    client.meta.events.register("before-call.s3.PutObject", hook)
    client.meta.events.register("before-call.s3.UploadPart", hook)


@check(PAYLOADS, "default put_object over http: signed payload with an x-amz-checksum-crc32 header")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PAYLOADS)
    s3.create_bucket(Bucket=bucket)
    sent = ctx.record_requests()
    body = payload(100_000, 10)
    put = s3.put_object(Bucket=bucket, Key="default", Body=body)
    headers = sent[-1]
    expect_equal(headers.get("x-amz-checksum-crc32"), checksum("CRC32", body), "x-amz-checksum-crc32 sent")
    expect(len(headers.get("x-amz-content-sha256", "")) == 64, f"payload not signed: {headers.get('x-amz-content-sha256')}")
    expect_equal((put["ETag"], put.get("ChecksumCRC32"), put.get("ChecksumType")), (md5_etag(body), checksum("CRC32", body), "FULL_OBJECT"), "PutObject result")
    got = s3.get_object(Bucket=bucket, Key="default", ChecksumMode="ENABLED")
    expect_equal((got["Body"].read(), got.get("ChecksumCRC32")), (body, checksum("CRC32", body)), "GetObject with ChecksumMode")
    # botocore asks for checksums on every GET by default; one that does not ask gets none.
    plain = make_client(ctx.endpoint, response_checksum_validation="when_required").get_object(Bucket=bucket, Key="default")
    expect("ChecksumCRC32" not in plain, "checksum returned without ChecksumMode=ENABLED")
    expect_equal(plain["Body"].read(), body, "body")


@check(PAYLOADS, "put_object with a file object: aws-chunked STREAMING-UNSIGNED-PAYLOAD-TRAILER (boto3's https mode)")
def _(ctx):
    s3, bucket = make_client(ctx.endpoint), ctx.bucket(PAYLOADS)  # its own client: the others keep the default mode
    force_trailer_checksum(s3)
    sent = ctx.record_requests(s3)
    body = payload(3 * MiB + 17, 11)
    put = s3.put_object(Bucket=bucket, Key="trailer", Body=io.BytesIO(body), ContentEncoding="gzip")
    headers = sent[-1]
    expect_equal(headers.get("x-amz-content-sha256"), "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "payload mode")
    expect_equal(headers.get("x-amz-trailer"), "x-amz-checksum-crc32", "x-amz-trailer")
    expect_equal(headers.get("content-encoding"), "gzip,aws-chunked", "Content-Encoding sent")
    expect_equal(headers.get("x-amz-decoded-content-length"), str(len(body)), "x-amz-decoded-content-length")
    expect_equal((put["ETag"], put.get("ChecksumCRC32")), (md5_etag(body), checksum("CRC32", body)), "PutObject result")
    got = s3.get_object(Bucket=bucket, Key="trailer", ChecksumMode="ENABLED")
    # aws-chunked is transfer framing: only the object's own encoding is stored.
    expect_equal((got["Body"].read(), got.get("ChecksumCRC32"), got.get("ContentEncoding")), (body, checksum("CRC32", body), "gzip"), "stored object")


@check(PAYLOADS, "explicit checksum algorithms on put, returned by GetObject with ChecksumMode ENABLED")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PAYLOADS)
    sent = ctx.record_requests()
    body = payload(20_000, 12)
    for algorithm in ("CRC32", "CRC32C", "SHA1", "SHA256", "CRC64NVME"):
        key = f"algo/{algorithm}"
        if algorithm in ("CRC32C", "CRC64NVME"):
            # botocore computes these only with awscrt, which this venv does not have: send the value.
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, **{f"Checksum{algorithm}": checksum(algorithm, body)})
        else:
            put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm=algorithm)
        expect_equal(sent[-1].get(f"x-amz-checksum-{algorithm.lower()}"), checksum(algorithm, body), f"{algorithm} header sent")
        expect_equal(put.get(f"Checksum{algorithm}"), checksum(algorithm, body), f"PutObject Checksum{algorithm}")
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        expect_equal((got["Body"].read(), got.get(f"Checksum{algorithm}"), got.get("ChecksumType")), (body, checksum(algorithm, body), "FULL_OBJECT"), f"GetObject {algorithm}")
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        expect_equal(head.get(f"Checksum{algorithm}"), checksum(algorithm, body), f"HeadObject {algorithm}")


@check(PAYLOADS, "a wrong checksum or Content-MD5 is BadDigest and leaves the previous object byte for byte")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PAYLOADS)
    original = payload(50_000, 13)
    before = s3.put_object(Bucket=bucket, Key="guarded", Body=original)
    other = payload(50_000, 14)
    wrong_crc = checksum("CRC32", b"something else")
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="guarded", Body=other, ChecksumCRC32=wrong_crc), "BadDigest", 400)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="guarded", Body=other, ContentMD5=b64md5(b"something else")), "BadDigest", 400)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="guarded", Body=other, ChecksumSHA256=checksum("SHA256", original)), "BadDigest", 400)
    expect_error(lambda: s3.put_object(Bucket=bucket, Key="fresh", Body=other, ChecksumCRC32=wrong_crc), "BadDigest", 400)
    got = s3.get_object(Bucket=bucket, Key="guarded", ChecksumMode="ENABLED")
    expect_equal((got["Body"].read(), got["ETag"], got.get("ChecksumCRC32")), (original, before["ETag"], before["ChecksumCRC32"]), "object after BadDigest")
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="fresh"), "404", 404)
    # A Content-MD5 that matches is accepted.
    ok = s3.put_object(Bucket=bucket, Key="md5", Body=other, ContentMD5=b64md5(other))
    expect_equal(ok["ETag"], md5_etag(other), "ETag with a correct Content-MD5")


@check(PAYLOADS, "upload_fileobj of 20 MiB: s3transfer multipart with CRC32, composite checksum, download_fileobj")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PAYLOADS)
    body = payload(20 * MiB, 15)
    sent = ctx.record_requests()
    s3.upload_fileobj(io.BytesIO(body), bucket, "transfer/fileobj.bin")  # default: 8 MiB threshold and parts
    parts = [body[i : i + 8 * MiB] for i in range(0, len(body), 8 * MiB)]
    expect_equal(sum(1 for h in sent if "x-amz-checksum-crc32" in h), 3, "parts sent with x-amz-checksum-crc32")
    head = s3.head_object(Bucket=bucket, Key="transfer/fileobj.bin", ChecksumMode="ENABLED")
    expect_equal(head["ContentLength"], len(body), "ContentLength")
    expect_equal(head["ETag"], multipart_etag(parts), "multipart ETag")
    expect_equal((head.get("ChecksumCRC32"), head.get("ChecksumType")), (composite_checksum("CRC32", parts), "COMPOSITE"), "composite CRC32")
    out = io.BytesIO()
    s3.download_fileobj(bucket, "transfer/fileobj.bin", out)
    expect(out.getvalue() == body, "download_fileobj bytes differ")
    part2 = s3.get_object(Bucket=bucket, Key="transfer/fileobj.bin", PartNumber=2)
    expect_equal((part2["Body"].read(), part2.get("PartsCount")), (parts[1], 3), "GetObject PartNumber=2")


@check(PAYLOADS, "upload_file of 21 MiB in 5 MiB parts and download_file")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(PAYLOADS)
    body = payload(21 * MiB, 16)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4)
    with tempfile.TemporaryDirectory() as tmp:
        source, target = os.path.join(tmp, "up.bin"), os.path.join(tmp, "down.bin")
        with open(source, "wb") as f:
            f.write(body)
        s3.upload_file(source, bucket, "transfer/file.bin", Config=config, ExtraArgs={"ContentType": "application/x-big", "Metadata": {"k": "v"}})
        s3.download_file(bucket, "transfer/file.bin", target, Config=config)
        with open(target, "rb") as f:
            expect(f.read() == body, "download_file bytes differ")
    parts = [body[i : i + 5 * MiB] for i in range(0, len(body), 5 * MiB)]
    head = s3.head_object(Bucket=bucket, Key="transfer/file.bin")
    expect_equal((head["ETag"], head["ContentType"], head["Metadata"]), (multipart_etag(parts), "application/x-big", {"k": "v"}), "HeadObject")


@check(PAYLOADS, "cleanup")
def _(ctx):
    empty_bucket(ctx.s3, ctx.bucket(PAYLOADS))
    ctx.s3.delete_bucket(Bucket=ctx.bucket(PAYLOADS))


# --- multipart by hand ------------------------------------------------------------------------------


def upload_parts(s3, bucket, key, upload_id, parts, **extra):
    return [
        {"PartNumber": n, "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=p, **extra)["ETag"]}
        for n, p in enumerate(parts, start=1)
    ]


@check(MULTIPART, "create, upload parts, UploadPartCopy with range, ListParts, ListMultipartUploads, complete")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(MULTIPART)
    s3.create_bucket(Bucket=bucket)
    source = payload(12 * MiB, 20)
    s3.put_object(Bucket=bucket, Key="source", Body=source)
    key = "assembled/ob ject+1"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/x-assembled", Metadata={"m": "1"})["UploadId"]
    first = payload(5 * MiB, 21)
    etag1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=first)["ETag"]
    expect_equal(etag1, md5_etag(first), "UploadPart ETag")
    copy_range = (1 * MiB, 7 * MiB - 1)
    copied = s3.upload_part_copy(
        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=2, CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange=f"bytes={copy_range[0]}-{copy_range[1]}"
    )
    second = source[copy_range[0] : copy_range[1] + 1]
    expect_equal(copied["CopyPartResult"]["ETag"], md5_etag(second), "UploadPartCopy ETag")
    third = b"tail"
    etag3 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=3, Body=third)["ETag"]

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    expect_equal([(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]], [(1, etag1, len(first)), (2, md5_etag(second), len(second)), (3, etag3, 4)], "ListParts")
    paged = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=2)
    expect_equal((paged["IsTruncated"], paged["NextPartNumberMarker"]), (True, 2), "ListParts page 1")
    rest = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, PartNumberMarker=2)
    expect_equal([p["PartNumber"] for p in rest["Parts"]], [3], "ListParts page 2")
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    expect_equal([(u["Key"], u["UploadId"]) for u in uploads], [(key, upload_id)], "ListMultipartUploads")

    parts = [{"PartNumber": 1, "ETag": etag1}, {"PartNumber": 2, "ETag": copied["CopyPartResult"]["ETag"]}, {"PartNumber": 3, "ETag": etag3}]
    done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    expect_equal((done["Key"], done["ETag"]), (key, multipart_etag([first, second, third])), "CompleteMultipartUpload")
    got = s3.get_object(Bucket=bucket, Key=key)
    expect_equal((got["ContentType"], got["Metadata"], got["ContentLength"]), ("application/x-assembled", {"m": "1"}, len(first) + len(second) + 4), "completed object")
    expect(got["Body"].read() == first + second + third, "completed object bytes differ")
    expect_equal(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []), [], "uploads after complete")
    expect_error(lambda: s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id), "NoSuchUpload", 404)


@check(MULTIPART, "abort: the upload and its parts are gone")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(MULTIPART)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    upload_parts(s3, bucket, "aborted", upload_id, [b"part one"])
    expect_equal(s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=upload_id)["ResponseMetadata"]["HTTPStatusCode"], 204, "Abort status")
    expect_error(lambda: s3.list_parts(Bucket=bucket, Key="aborted", UploadId=upload_id), "NoSuchUpload", 404)
    expect_error(lambda: s3.upload_part(Bucket=bucket, Key="aborted", UploadId=upload_id, PartNumber=2, Body=b"x"), "NoSuchUpload", 404)
    expect_error(lambda: s3.head_object(Bucket=bucket, Key="aborted"), "404", 404)
    expect(all(u["UploadId"] != upload_id for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])), "aborted upload listed")


@check(MULTIPART, "complete errors: InvalidPart, InvalidPartOrder, EntityTooSmall; the upload survives them")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(MULTIPART)
    key = "errors"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    small = upload_parts(s3, bucket, key, upload_id, [b"small one", b"small two"])

    def complete(parts):
        return s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})

    expect_error(lambda: complete([{"PartNumber": 1, "ETag": '"0123456789abcdef0123456789abcdef"'}]), "InvalidPart", 400)
    expect_error(lambda: complete([{"PartNumber": 7, "ETag": small[0]["ETag"]}]), "InvalidPart", 400)
    expect_error(lambda: complete([small[1], small[0]]), "InvalidPartOrder", 400)
    expect_error(lambda: complete(small), "EntityTooSmall", 400)
    # None of those consumed the upload: completing with the last part alone still works.
    done = complete([small[1]])
    expect_equal(done["ETag"], multipart_etag([b"small two"]), "ETag after the refused completes")
    expect_equal(s3.get_object(Bucket=bucket, Key=key)["Body"].read(), b"small two", "object bytes")


@check(MULTIPART, "multipart with ChecksumAlgorithm: per-part checksums and a composite -N checksum")
def _(ctx):
    s3, bucket = ctx.s3, ctx.bucket(MULTIPART)
    parts = [payload(5 * MiB, 22), payload(5 * MiB, 23), payload(1000, 24)]
    for algorithm in ("SHA256", "CRC32"):
        key = f"checksummed/{algorithm}"
        created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=algorithm)
        expect_equal(created.get("ChecksumAlgorithm"), algorithm, "CreateMultipartUpload ChecksumAlgorithm")
        upload_id = created["UploadId"]
        completed = []
        for n, part in enumerate(parts, start=1):
            response = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, Body=part, ChecksumAlgorithm=algorithm)
            expect_equal(response.get(f"Checksum{algorithm}"), checksum(algorithm, part), f"UploadPart {n} checksum")
            completed.append({"PartNumber": n, "ETag": response["ETag"], f"Checksum{algorithm}": response[f"Checksum{algorithm}"]})
        listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
        expect_equal([p.get(f"Checksum{algorithm}") for p in listed["Parts"]], [checksum(algorithm, p) for p in parts], "ListParts checksums")
        done = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": completed})
        expected = composite_checksum(algorithm, parts)
        expect_equal((done.get(f"Checksum{algorithm}"), done.get("ChecksumType")), (expected, "COMPOSITE"), "CompleteMultipartUpload checksum")
        got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        expect_equal(got.get(f"Checksum{algorithm}"), expected, "GetObject composite checksum")
        expect(got["Body"].read() == b"".join(parts), "bytes differ")
    # A part whose checksum does not match what the client declared is refused.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="checksummed/bad", ChecksumAlgorithm="SHA256")["UploadId"]
    expect_error(
        lambda: s3.upload_part(Bucket=bucket, Key="checksummed/bad", UploadId=upload_id, PartNumber=1, Body=b"data", ChecksumSHA256=checksum("SHA256", b"other")),
        "BadDigest",
        400,
    )
    s3.abort_multipart_upload(Bucket=bucket, Key="checksummed/bad", UploadId=upload_id)


@check(MULTIPART, "cleanup")
def _(ctx):
    empty_bucket(ctx.s3, ctx.bucket(MULTIPART))
    ctx.s3.delete_bucket(Bucket=ctx.bucket(MULTIPART))
