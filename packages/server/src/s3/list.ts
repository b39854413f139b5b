import { AstoreError } from '../core/errors.ts';
import type { ObjectSummary } from '../storage/meta/types.ts';
import { intParam, type BucketCall } from './context.ts';
import { toXml } from './xml.ts';

/** encoding-type=url: percent-encode like S3 (RFC 3986 unreserved and '/' kept). */
function urlEncodeKey(value: string): string {
  return encodeURIComponent(value).replace(/%2F/g, '/').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function encoder(query: URLSearchParams): (v: string | undefined) => string | undefined {
  const type = query.get('encoding-type');
  if (type !== null && type !== 'url') throw new AstoreError('InvalidArgument', 'Invalid Encoding Method specified in Request', { ArgumentName: 'encoding-type' });
  return type === 'url' ? (v) => (v === undefined ? v : urlEncodeKey(v)) : (v) => v;
}

function contents(objects: ObjectSummary[], enc: (v: string) => string | undefined, owner?: { ID: string; DisplayName: string }) {
  return objects.map((o) => ({
    Key: enc(o.key),
    LastModified: o.lastModified,
    ETag: o.etag,
    ...(o.checksum ? { ChecksumAlgorithm: o.checksum.algorithm, ChecksumType: o.checksum.type } : {}),
    Size: o.size,
    StorageClass: 'STANDARD',
    Owner: owner,
  }));
}

export async function listObjectsV1(call: BucketCall) {
  const { reply, bucket, target, services } = call;
  const q = target.query;
  const enc = encoder(q);
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const marker = q.get('marker') || undefined;
  const maxKeys = intParam(q, 'max-keys', 1000, 1000);
  const page = await services.objects.list({ bucket, prefix, delimiter, after: marker, maxKeys });
  const objects = services.listFilter ? await services.listFilter(call, page.objects) : page.objects;
  const filtered = objects.length !== page.objects.length;
  const owner = { ID: services.owner.id, DisplayName: services.owner.displayName };
  return reply.type('application/xml').send(
    toXml('ListBucketResult', {
      Name: bucket,
      Prefix: enc(prefix),
      Marker: enc(marker ?? ''),
      // S3 sends NextMarker only with a delimiter; without, clients continue from the last key, so it
      // is sent too when the last key listed is not the page's last (a quarantined key was left out).
      NextMarker: page.truncated && (delimiter || filtered) ? enc(page.last) : undefined,
      MaxKeys: maxKeys,
      Delimiter: enc(delimiter),
      IsTruncated: page.truncated,
      EncodingType: q.get('encoding-type') ?? undefined,
      Contents: contents(objects, enc, owner),
      CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
    }),
  );
}

/** Continuation tokens are opaque to clients: the base64url of where the page ended. */
function decodeToken(token: string): string {
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  if (!token || Buffer.from(decoded, 'utf8').toString('base64url') !== token) {
    throw new AstoreError('InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
  }
  return decoded;
}

export async function listObjectsV2(call: BucketCall) {
  const { reply, bucket, target, services } = call;
  const q = target.query;
  const enc = encoder(q);
  const prefix = q.get('prefix') ?? '';
  const delimiter = q.get('delimiter') || undefined;
  const token = q.get('continuation-token');
  const startAfter = q.get('start-after') || undefined;
  const maxKeys = intParam(q, 'max-keys', 1000, 1000);
  const after = token !== null ? decodeToken(token) : startAfter;
  const page = await services.objects.list({ bucket, prefix, delimiter, after, maxKeys });
  const objects = services.listFilter ? await services.listFilter(call, page.objects) : page.objects;
  const owner = q.get('fetch-owner') === 'true' ? { ID: services.owner.id, DisplayName: services.owner.displayName } : undefined;
  return reply.type('application/xml').send(
    toXml('ListBucketResult', {
      Name: bucket,
      Prefix: enc(prefix),
      KeyCount: objects.length + page.commonPrefixes.length,
      MaxKeys: maxKeys,
      Delimiter: enc(delimiter),
      IsTruncated: page.truncated,
      EncodingType: q.get('encoding-type') ?? undefined,
      ContinuationToken: token ?? undefined,
      NextContinuationToken: page.truncated && page.last !== undefined ? Buffer.from(page.last, 'utf8').toString('base64url') : undefined,
      StartAfter: enc(startAfter),
      Contents: contents(objects, enc, owner),
      CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
    }),
  );
}

export async function listMultipartUploads({ reply, bucket, target, services }: BucketCall) {
  const q = target.query;
  const enc = encoder(q);
  const prefix = q.get('prefix') || undefined;
  const keyMarker = q.get('key-marker') || undefined;
  const uploadIdMarker = keyMarker ? q.get('upload-id-marker') || undefined : undefined;
  const maxUploads = intParam(q, 'max-uploads', 1000, 1000);
  const delimiter = q.get('delimiter') || undefined;
  const { uploads, commonPrefixes, truncated } = await services.multipart.list({ bucket, prefix, delimiter, keyMarker, uploadIdMarker, limit: maxUploads });
  // The page ends at its last entry in key order: an upload or a common prefix.
  const lastUpload = uploads.at(-1);
  const lastPrefix = commonPrefixes.at(-1);
  const endsWithPrefix = lastPrefix !== undefined && (lastUpload === undefined || lastPrefix > lastUpload.key);
  const owner = { ID: services.owner.id, DisplayName: services.owner.displayName };
  return reply.type('application/xml').send(
    toXml('ListMultipartUploadsResult', {
      Bucket: bucket,
      KeyMarker: enc(keyMarker ?? ''),
      UploadIdMarker: uploadIdMarker ?? '',
      NextKeyMarker: truncated ? enc(endsWithPrefix ? lastPrefix : lastUpload?.key) : undefined,
      NextUploadIdMarker: truncated && !endsWithPrefix ? lastUpload?.uploadId : undefined,
      Delimiter: enc(delimiter),
      Prefix: enc(prefix),
      MaxUploads: maxUploads,
      IsTruncated: truncated,
      EncodingType: q.get('encoding-type') ?? undefined,
      Upload: uploads.map((u) => ({
        Key: enc(u.key),
        UploadId: u.uploadId,
        Initiator: owner,
        Owner: owner,
        StorageClass: 'STANDARD',
        Initiated: u.initiated,
        ChecksumAlgorithm: u.checksumAlgorithm,
      })),
      CommonPrefixes: commonPrefixes.map((p) => ({ Prefix: enc(p) })),
    }),
  );
}
