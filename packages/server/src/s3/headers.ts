import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Preconditions } from '../core/conditions.ts';
import { AstoreError } from '../core/errors.ts';
import type { ObjectHeaders, ObjectRecord } from '../storage/meta/types.ts';

const maxUserMetadataBytes = 2048;

const standardHeaders: [keyof ObjectHeaders, string][] = [
  ['contentType', 'content-type'],
  ['contentEncoding', 'content-encoding'],
  ['contentDisposition', 'content-disposition'],
  ['contentLanguage', 'content-language'],
  ['cacheControl', 'cache-control'],
  ['expires', 'expires'],
];

/** Node decodes header bytes as latin1; S3 clients send UTF-8. Recover it when the bytes are UTF-8. */
function utf8Header(value: string): string {
  if (/^[\x00-\x7f]*$/.test(value)) return value;
  const bytes = Buffer.from(value, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : value;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

/** Content-* headers and x-amz-meta-* of a write request (PUT, POST ?uploads, COPY with REPLACE). */
export function objectHeadersFrom(h: IncomingHttpHeaders): { headers: ObjectHeaders; userMetadata: Record<string, string> } {
  const headers: ObjectHeaders = {};
  for (const [field, name] of standardHeaders) {
    const value = first(h[name]);
    if (value !== undefined) headers[field] = utf8Header(value);
  }
  // aws-chunked is a transfer framing, not the object's encoding.
  if (headers.contentEncoding) {
    const encodings = headers.contentEncoding.split(',').map((s) => s.trim()).filter((s) => s && s !== 'aws-chunked');
    headers.contentEncoding = encodings.length ? encodings.join(',') : undefined;
    if (!headers.contentEncoding) delete headers.contentEncoding;
  }
  const userMetadata: Record<string, string> = {};
  let size = 0;
  for (const [name, value] of Object.entries(h)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const key = name.slice('x-amz-meta-'.length);
    const text = utf8Header(first(value)!);
    size += Buffer.byteLength(key) + Buffer.byteLength(text);
    userMetadata[key] = text;
  }
  if (size > maxUserMetadataBytes) {
    throw new AstoreError('MetadataTooLarge', undefined, { Size: size, MaxSizeAllowed: maxUserMetadataBytes });
  }
  return { headers, userMetadata };
}

/** Non-ASCII header values go out RFC 2047 encoded, as S3 does. */
function asHeaderValue(value: string): string {
  return /^[\x20-\x7e\t]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

export function httpDate(d: Date): string {
  return d.toUTCString();
}

/** The response headers GET and HEAD share; response-* query overrides win. */
export function writeObjectHeaders(reply: FastifyReply, object: ObjectRecord, query: URLSearchParams): void {
  reply.header('etag', object.etag);
  reply.header('last-modified', httpDate(object.lastModified));
  reply.header('accept-ranges', 'bytes');
  reply.header('content-type', object.headers.contentType ?? 'binary/octet-stream');
  for (const [field, name] of standardHeaders) {
    const value = object.headers[field];
    if (value !== undefined && name !== 'content-type') reply.header(name, asHeaderValue(value));
  }
  for (const [key, value] of Object.entries(object.userMetadata)) reply.header(`x-amz-meta-${key}`, asHeaderValue(value));
  for (const [, name] of standardHeaders) {
    const override = query.get(`response-${name}`);
    if (override !== null) reply.header(name, asHeaderValue(override));
  }
}

function parseHttpDate(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** If-* headers, or x-amz-copy-source-if-* with prefix 'x-amz-copy-source-'. */
export function preconditionsFrom(h: IncomingHttpHeaders, prefix = ''): Preconditions | undefined {
  const p: Preconditions = {
    ifMatch: first(h[`${prefix}if-match`]),
    ifNoneMatch: first(h[`${prefix}if-none-match`]),
    ifModifiedSince: parseHttpDate(first(h[`${prefix}if-modified-since`])),
    ifUnmodifiedSince: parseHttpDate(first(h[`${prefix}if-unmodified-since`])),
  };
  return Object.values(p).some((v) => v !== undefined) ? p : undefined;
}

/** x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded, optionally "?versionId=". */
export function parseCopySource(value: string): { bucket: string; key: string } {
  let raw = value.startsWith('/') ? value.slice(1) : value;
  const q = raw.indexOf('?');
  if (q >= 0) {
    const versionId = new URLSearchParams(raw.slice(q + 1)).get('versionId');
    if (versionId && versionId !== 'null') throw new AstoreError('NotImplemented', 'Versioning is not supported');
    raw = raw.slice(0, q);
  }
  const slash = raw.indexOf('/');
  if (slash <= 0 || slash === raw.length - 1) throw new AstoreError('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', { ArgumentName: 'x-amz-copy-source' });
  try {
    return { bucket: decodeURIComponent(raw.slice(0, slash)), key: decodeURIComponent(raw.slice(slash + 1)) };
  } catch {
    throw new AstoreError('InvalidArgument', 'x-amz-copy-source is not valid percent-encoding', { ArgumentName: 'x-amz-copy-source' });
  }
}
