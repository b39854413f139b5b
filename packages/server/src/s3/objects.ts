import { pipeline } from 'node:stream/promises';
import { objectResource } from './actions.ts';
import { AstoreError } from '../core/errors.ts';
import { parseRangeHeader } from '../core/ranges.ts';
import type { ObjectRecord } from '../storage/meta/types.ts';
import { partNumberParam, type BucketCall, type ObjectCall } from './context.ts';
import { objectHeadersFrom, parseCopySource, preconditionsFrom, writeObjectHeaders } from './headers.ts';
import { openPayload, readDocument } from './payload.ts';
import { parseXml, toXml } from './xml.ts';
import { ownerAcl } from './buckets.ts';

function writeChecksumHeader(call: ObjectCall, object: ObjectRecord, force = false): void {
  if (!object.checksum) return;
  if (force || String(call.req.headers['x-amz-checksum-mode'] ?? '').toUpperCase() === 'ENABLED') {
    call.reply.header(`x-amz-checksum-${object.checksum.algorithm.toLowerCase()}`, object.checksum.value);
    call.reply.header('x-amz-checksum-type', object.checksum.type);
  }
}

export async function putObject(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const { headers, userMetadata } = objectHeadersFrom(req.headers);
  const payload = openPayload(req.raw, call.auth);
  const conditions = preconditionsFrom(req.headers);
  const object = await services.objects.put({
    bucket,
    key,
    body: payload.body,
    headers,
    userMetadata,
    checksumAlgorithms: payload.algorithms,
    storeChecksum: payload.checksumAlgorithm,
    verify: payload.verify,
    conditions: conditions && { ifMatch: conditions.ifMatch, ifNoneMatch: conditions.ifNoneMatch },
    signal: call.signal,
  });
  reply.header('etag', object.etag);
  writeChecksumHeader(call, object, true);
  return reply.send();
}

async function readObject(call: ObjectCall, withBody: boolean) {
  const { req, reply, bucket, key, target, services } = call;
  const partNumber = partNumberParam(target.query);
  const read = await services.objects.get(bucket, key, {
    range: partNumber === undefined ? parseRangeHeader(req.headers.range) : undefined,
    partNumber,
    conditions: preconditionsFrom(req.headers),
    signal: call.signal,
  });
  const { object, range } = read;
  const gate = await services.readGate?.(call, object);
  const length = range && object.size > 0 ? range.end - range.start + 1 : object.size;
  // Open the bytes before any header is set: a failure is still a clean S3 error.
  const body = withBody && length > 0 ? await read.body() : undefined;
  writeObjectHeaders(reply, object, target.query);
  if (read.partsCount !== undefined) reply.header('x-amz-mp-parts-count', read.partsCount);
  const digest = gate?.digest ?? object.digest;
  if (digest !== undefined) reply.header('x-astore-digest', digest);
  if (gate) reply.header('x-astore-verification', gate.verified ? 'verified' : 'unverified');
  if (!range) writeChecksumHeader(call, object);
  if (range && object.size > 0) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${object.size}`);
  }
  reply.header('content-length', length);
  return reply.send(body);
}

export const getObject = (call: ObjectCall) => readObject(call, true);
export const headObject = (call: ObjectCall) => readObject(call, false);

export async function deleteObject({ reply, bucket, key, services }: ObjectCall) {
  await services.objects.delete(bucket, key);
  return reply.code(204).send();
}

export async function copyObject(call: ObjectCall) {
  const { req, reply, bucket, key, services } = call;
  const source = parseCopySource(String(req.headers['x-amz-copy-source']));
  const directive = String(req.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') throw new AstoreError('InvalidArgument', 'Unknown metadata directive.', { ArgumentName: 'x-amz-metadata-directive' });
  const { headers, userMetadata } = objectHeadersFrom(req.headers);
  await drain(req.raw);
  const object = await services.objects.copy({
    source: { ...source, conditions: preconditionsFrom(req.headers, 'x-amz-copy-source-') },
    bucket,
    key,
    metadataDirective: directive,
    headers,
    userMetadata,
  });
  return reply.type('application/xml').send(
    toXml('CopyObjectResult', {
      ETag: object.etag,
      LastModified: object.lastModified,
      ...(object.checksum ? { [`Checksum${object.checksum.algorithm}`]: object.checksum.value, ChecksumType: object.checksum.type } : {}),
    }),
  );
}

const maxDeleteObjects = 1000;

export async function deleteObjects(call: BucketCall) {
  const { req, reply, bucket, services } = call;
  const doc = parseXml(await readDocument(req.raw, call.auth, 2 * 1024 * 1024, { bodyChecksum: true }), 'Delete');
  const entries = (doc.Object ?? []) as Array<{ Key?: unknown; VersionId?: unknown }>;
  if (entries.length === 0 || entries.length > maxDeleteObjects) throw new AstoreError('MalformedXML', `Delete must name between 1 and ${maxDeleteObjects} objects`);
  const quiet = String(doc.Quiet ?? 'false').trim().toLowerCase() === 'true';
  await services.buckets.get(bucket);
  const deleted: Array<{ Key: string }> = [];
  const errors: Array<{ Key: string; Code: string; Message: string }> = [];
  for (const entry of entries) {
    const key = typeof entry.Key === 'string' ? entry.Key : '';
    try {
      if (key === '') throw new AstoreError('InvalidArgument', 'Object key must not be empty');
      if (!(await call.allowed({ action: 's3:DeleteObject', resource: objectResource(bucket, key) }))) throw new AstoreError('AccessDenied');
      await services.objects.delete(bucket, key);
      if (!quiet) deleted.push({ Key: key });
    } catch (err) {
      if (!(err instanceof AstoreError)) throw err;
      errors.push({ Key: key, Code: err.spec.s3Code, Message: err.message });
    }
  }
  return reply.type('application/xml').send(toXml('DeleteResult', { Deleted: deleted, Error: errors }));
}

/** Requests that carry no payload we use may still send one; consume it so the connection stays usable. */
export async function drain(stream: NodeJS.ReadableStream): Promise<void> {
  await pipeline(stream, async function* (source) {
    for await (const _ of source) {
      // discard
    }
  });
}


export async function getObjectAcl({ reply, bucket, key, services }: ObjectCall) {
  await services.objects.head(bucket, key);
  return reply.type('application/xml').send(ownerAcl(services.owner));
}
