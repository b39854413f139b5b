import type { LayerRecord, RegistryUploadRecord } from '../storage/meta/types.ts';
import { AstoreError } from '../core/errors.ts';
import { type RangeSpec, parseRangeHeader } from '../core/ranges.ts';
import { authorizeCall, repositoryResource } from './auth.ts';
import type { OciCall } from './router.ts';

/** GET and HEAD of a blob, with a single byte range when asked. */
export async function getBlob({ reply, req, options, name, ref, signal }: OciCall): Promise<unknown> {
  const range = req.method === 'GET' ? blobRange(req.headers.range) : undefined;
  const read = await options.blobs.readBlob(name, ref, range, signal);
  reply.header('docker-content-digest', read.layer.digest);
  // A large blob may be fetched from the backend directly (as Distribution's storage redirects do).
  const redirect = req.method === 'GET' && !range ? await options.blobs.redirectFor(read.layer) : undefined;
  if (redirect !== undefined) return reply.code(307).header('location', redirect).header('content-length', 0).send();
  reply.header('etag', `"${read.layer.digest}"`);
  reply.header('accept-ranges', 'bytes');
  reply.header('cache-control', 'max-age=31536000');
  reply.type('application/octet-stream');
  if (req.method === 'HEAD') return reply.header('content-length', read.layer.size).send();
  if (read.range) {
    reply.code(206);
    reply.header('content-range', `bytes ${read.range.start}-${read.range.end}/${read.layer.size}`);
    reply.header('content-length', read.range.end - read.range.start + 1);
  } else {
    reply.header('content-length', read.layer.size);
  }
  return reply.send(await read.body());
}

export async function deleteBlob({ reply, options, name, ref }: OciCall): Promise<unknown> {
  await options.blobs.deleteBlob(name, ref);
  return reply.code(202).header('content-length', 0).send();
}

/**
 * POST to the uploads endpoint: a cross-repository mount (`mount`, optionally `from`), a whole blob
 * in one request (`digest`), or a new upload session.
 */
export async function startUpload(call: OciCall): Promise<unknown> {
  const { reply, req, options, query, name, signal } = call;
  const mount = query.get('mount');
  if (mount !== null) {
    const from = query.get('from') ?? undefined;
    const fromName = from !== undefined && from !== name ? from : undefined;
    // The source must be one the caller may pull from (named, or found by an automatic mount); when it
    // is not, nothing is mounted and an upload starts instead (202), as the spec asks of a failed mount.
    const mayPullFrom = async (source: string) => mayPull(call, source);
    const allowed = fromName === undefined ? options.autoMount : await mayPullFrom(fromName);
    const layer = allowed ? await options.blobs.mount(name, mount, fromName, mayPullFrom).catch(ignoreUnknown) : null;
    req.raw.resume();
    if (layer) return created(call, layer);
  }
  const digest = query.get('digest');
  if (digest !== null && mount === null) {
    const layer = await options.blobs.putBlob(name, digest, req.raw, contentLength(call), signal);
    return created(call, layer);
  }
  req.raw.resume();
  const upload = await options.blobs.startUpload(name);
  return uploadAccepted(call, upload, 202);
}

/** A chunk: Content-Range `<start>-<end>` (optional for a streamed upload) must continue the upload. */
export async function patchUpload(call: OciCall): Promise<unknown> {
  const { req, options, name, ref, signal } = call;
  const upload = await options.blobs.appendChunk(name, ref, req.raw, chunkExtent(call), signal);
  return uploadAccepted(call, upload, 202);
}

/** Where a chunk says it goes: Content-Range `<start>-<end>` (inclusive) and Content-Length, which must agree. */
function chunkExtent(call: OciCall): { start?: number; length?: number } {
  const range = call.req.headers['content-range'];
  const length = contentLength(call);
  if (range === undefined) return { length };
  const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(range.trim());
  if (!m) throw new AstoreError('RangeNotSatisfiable', `malformed Content-Range ${JSON.stringify(range)}`);
  const start = Number(m[1]);
  const rangeLength = Number(m[2]) - start + 1;
  if (rangeLength < 1) throw new AstoreError('RangeNotSatisfiable', `empty Content-Range ${JSON.stringify(range)}`);
  if (length !== undefined && length !== rangeLength) {
    throw new AstoreError('SizeInvalid', `Content-Length ${length} does not match Content-Range ${range}`);
  }
  return { start, length: rangeLength };
}

/**
 * A blob GET's Range: one `bytes=` range. A range whose end precedes its start is invalid and
 * answered 416 (RFC 9110 §14.2); other forms S3 would ignore are ignored too.
 */
function blobRange(header: string | undefined): RangeSpec | undefined {
  const m = header === undefined ? null : /^bytes=(\d+)-(\d+)$/.exec(header.trim());
  if (m && Number(m[2]) < Number(m[1])) throw new AstoreError('InvalidRange', `invalid range ${header}`);
  return parseRangeHeader(header);
}

export async function uploadStatus(call: OciCall): Promise<unknown> {
  const upload = await call.options.blobs.getUpload(call.name, call.ref);
  return uploadAccepted(call, upload, 204);
}

/** PUT `?digest=`: completes the upload, with an optional last chunk in the body. */
export async function finishUpload(call: OciCall): Promise<unknown> {
  const { req, options, query, name, ref, signal } = call;
  const digest = query.get('digest');
  if (digest === null) throw new AstoreError('DigestInvalid', 'the digest query parameter is required to complete an upload');
  const extent = chunkExtent(call);
  const hasBody = (extent.length !== undefined && extent.length > 0) || (extent.length === undefined && req.headers['transfer-encoding'] !== undefined);
  if (!hasBody) req.raw.resume();
  const layer = await options.blobs.finishUpload(name, ref, digest, hasBody ? { body: req.raw, ...extent } : undefined, signal);
  return created(call, layer);
}

export async function cancelUpload({ reply, options, name, ref }: OciCall): Promise<unknown> {
  await options.blobs.cancelUpload(name, ref);
  return reply.code(204).send();
}

function created({ reply, name }: OciCall, layer: LayerRecord): unknown {
  return reply
    .code(201)
    .header('location', `/v2/${name}/blobs/${layer.digest}`)
    .header('docker-content-digest', layer.digest)
    .header('content-length', 0)
    .send();
}

function uploadAccepted({ reply, name }: OciCall, upload: RegistryUploadRecord, status: number): unknown {
  return reply
    .code(status)
    .header('location', `/v2/${name}/blobs/uploads/${upload.uploadId}`)
    .header('range', `0-${Math.max(0, upload.size - 1)}`)
    .header('docker-upload-uuid', upload.uploadId)
    .header('content-length', 0)
    .send();
}

function contentLength({ req }: OciCall): number | undefined {
  const header = req.headers['content-length'];
  if (header === undefined) return undefined;
  if (!/^\d+$/.test(header)) throw new AstoreError('SizeInvalid', `invalid Content-Length ${JSON.stringify(header)}`);
  return Number(header);
}

/** A mount source that is not a valid repository or digest simply does not mount. */
function ignoreUnknown(err: unknown): null {
  if (err instanceof AstoreError && ['DigestInvalid', 'NameInvalid', 'BlobUnknown'].includes(err.code)) return null;
  throw err;
}

/**
 * Whether the caller may pull from a mount source, by the policy engine. A registry token's grants are
 * not consulted here: clients rarely ask a token for the source's scope, and the principal's own
 * permission is what protects the source.
 */
async function mayPull(call: OciCall, repository: string): Promise<boolean> {
  try {
    const { grants: _grants, ...principalOnly } = call.caller;
    await authorizeCall(principalOnly, 'oci:pull', repositoryResource(repository), call.req, call.options.auth);
    return true;
  } catch (err) {
    if (err instanceof AstoreError && (err.code === 'Unauthorized' || err.code === 'AccessDenied')) return false;
    throw err;
  }
}
