import { checksumAlgorithms, type ChecksumAlgorithm } from '../core/checksums.ts';
import { AstoreError } from '../core/errors.ts';
import { parseRangeHeader } from '../core/ranges.ts';
import { intParam, partNumberParam, type ObjectCall } from './context.ts';
import { objectHeadersFrom, parseCopySource, preconditionsFrom } from './headers.ts';
import { drain } from './objects.ts';
import { openPayload, readDocument } from './payload.ts';
import { parseXml, toXml } from './xml.ts';

/** UploadPart and UploadPartCopy require the parameter. */
function partNumberOf(call: ObjectCall): number {
  const n = partNumberParam(call.target.query);
  if (n === undefined) throw new AstoreError('InvalidArgument', 'partNumber is required', { ArgumentName: 'partNumber' });
  return n;
}

function uploadIdOf(call: ObjectCall): string {
  return call.target.query.get('uploadId') ?? '';
}

export async function createMultipartUpload(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const { headers, userMetadata } = objectHeadersFrom(req.headers);
  const algorithmHeader = req.headers['x-amz-checksum-algorithm'];
  let checksumAlgorithm: ChecksumAlgorithm | undefined;
  if (typeof algorithmHeader === 'string') {
    checksumAlgorithm = algorithmHeader.toUpperCase() as ChecksumAlgorithm;
    if (!checksumAlgorithms.includes(checksumAlgorithm)) throw new AstoreError('InvalidRequest', `Checksum algorithm ${algorithmHeader} is not supported`);
  }
  const typeHeader = String(req.headers['x-amz-checksum-type'] ?? 'COMPOSITE').toUpperCase();
  if (typeHeader !== 'COMPOSITE' && typeHeader !== 'FULL_OBJECT') throw new AstoreError('InvalidRequest', `Checksum type ${typeHeader} is not supported`);
  await drain(req.raw);
  const upload = await services.multipart.create({ bucket, key, headers, userMetadata, checksumAlgorithm, checksumType: typeHeader });
  if (upload.checksumAlgorithm) {
    reply.header('x-amz-checksum-algorithm', upload.checksumAlgorithm).header('x-amz-checksum-type', upload.checksumType);
  }
  return reply.type('application/xml').send(toXml('InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: upload.uploadId }));
}

export async function uploadPart(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const partNumber = partNumberOf(call);
  const payload = openPayload(req.raw, call.auth);
  const { part, upload } = await services.multipart.uploadPart({
    bucket,
    key,
    uploadId: uploadIdOf(call),
    partNumber,
    body: payload.body,
    checksumAlgorithms: payload.algorithms,
    verify: payload.verify,
    signal: call.signal,
  });
  reply.header('etag', part.etag);
  if (part.checksum && upload.checksumAlgorithm) reply.header(`x-amz-checksum-${upload.checksumAlgorithm.toLowerCase()}`, part.checksum);
  return reply.send();
}

export async function uploadPartCopy(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const partNumber = partNumberOf(call);
  const source = parseCopySource(String(req.headers['x-amz-copy-source']));
  const rangeHeader = req.headers['x-amz-copy-source-range'];
  const range = rangeHeader === undefined ? undefined : parseRangeHeader(String(rangeHeader));
  if (rangeHeader !== undefined && (!range || 'suffix' in range || range.end === undefined)) {
    throw new AstoreError('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy', { ArgumentName: 'x-amz-copy-source-range' });
  }
  await drain(req.raw);
  const { part } = await services.multipart.uploadPartCopy({
    bucket,
    key,
    uploadId: uploadIdOf(call),
    partNumber,
    source: { ...source, range, conditions: preconditionsFrom(req.headers, 'x-amz-copy-source-') },
    signal: call.signal,
  });
  return reply.type('application/xml').send(toXml('CopyPartResult', { ETag: part.etag, LastModified: part.lastModified }));
}

export async function completeMultipartUpload(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const doc = parseXml(await readDocument(req.raw, call.auth, 4 * 1024 * 1024), 'CompleteMultipartUpload');
  const parts = ((doc.Part ?? []) as Array<Record<string, unknown>>).map((p) => {
    const partNumber = Number(p.PartNumber);
    if (!Number.isInteger(partNumber) || typeof p.ETag !== 'string') throw new AstoreError('MalformedXML');
    const checksumField = Object.keys(p).find((k) => k.startsWith('Checksum') && k !== 'ChecksumType');
    return { partNumber, etag: p.ETag, checksum: checksumField ? String(p[checksumField]) : undefined };
  });
  const expected = checksumAlgorithms.map((a) => req.headers[`x-amz-checksum-${a.toLowerCase()}`]).find((v) => typeof v === 'string');
  const object = await services.multipart.complete(bucket, key, uploadIdOf(call), parts, expected as string | undefined);
  return reply.type('application/xml').send(
    toXml('CompleteMultipartUploadResult', {
      Location: `/${bucket}/${encodeURI(key)}`,
      Bucket: bucket,
      Key: key,
      ETag: object.etag,
      ...(object.checksum ? { [`Checksum${object.checksum.algorithm}`]: object.checksum.value, ChecksumType: object.checksum.type } : {}),
    }),
  );
}

export async function abortMultipartUpload(call: ObjectCall) {
  await call.services.multipart.abort(call.bucket, call.key, uploadIdOf(call));
  return call.reply.code(204).send();
}

export async function listParts(call: ObjectCall) {
  const { reply, bucket, key, target, services } = call;
  const marker = intParam(target.query, 'part-number-marker', 0, 10000);
  const maxParts = intParam(target.query, 'max-parts', 1000, 1000);
  const { upload, parts, truncated } = await services.multipart.listParts(bucket, key, uploadIdOf(call), marker, maxParts);
  const owner = { ID: services.owner.id, DisplayName: services.owner.displayName };
  return reply.type('application/xml').send(
    toXml('ListPartsResult', {
      Bucket: bucket,
      Key: key,
      UploadId: upload.uploadId,
      Initiator: owner,
      Owner: owner,
      StorageClass: 'STANDARD',
      PartNumberMarker: marker,
      NextPartNumberMarker: parts.at(-1)?.partNumber ?? marker,
      MaxParts: maxParts,
      IsTruncated: truncated,
      ChecksumAlgorithm: upload.checksumAlgorithm,
      ChecksumType: upload.checksumType,
      Part: parts.map((p) => ({
        PartNumber: p.partNumber,
        LastModified: p.lastModified,
        ETag: p.etag,
        Size: p.size,
        ...(p.checksum && upload.checksumAlgorithm ? { [`Checksum${upload.checksumAlgorithm}`]: p.checksum } : {}),
      })),
    }),
  );
}
