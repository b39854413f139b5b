// The loopback limit for the OCI benchmark: a trivial node:http registry on 127.0.0.1 that speaks just
// the requests loadgen.ts sends. It checks no credentials and hashes nothing; it keeps small blobs and
// manifests in memory, drains large blob uploads without storing them, and serves a large blob by
// streaming the generated layer file with that digest (images.json; page cache, as the servers read
// theirs). What is left is HTTP on loopback plus the load generator's own cost (sha256 of every pulled
// byte), so it bounds what any registry can reach with this client on this machine.
//
//   node --import tsx bench/oci/sink.ts --images images.json [--port 0]   # prints `listening <port>`

import { createReadStream } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { serveLoopback } from '../common/sink.ts';
import { loadImages, MANIFEST_MEDIA_TYPE, type LayerFile } from './image.ts';

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '0' }, images: { type: 'string' } },
  strict: true,
});
if (args.images === undefined) {
  process.stderr.write('sink: --images is required\n');
  process.exit(2);
}

/** Blobs above this size are not kept; their bytes must be one of the generated layer files. */
const KEEP_LIMIT = 1024 * 1024;
const layerFiles = new Map(Object.values(loadImages(args.images).sets).flat().map((l) => [l.digest, l]));
/** `<repo>@<digest>` -> bytes (small blobs) or the generated layer file (large ones). */
const blobs = new Map<string, Buffer | LayerFile>();
/** `<repo>:<tag>` -> manifest bytes. */
const manifests = new Map<string, Buffer>();
let nextUpload = 0;

const UPLOADS = /^\/v2\/(.+)\/blobs\/uploads\/$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads\/([0-9]+)$/;
const BLOB = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;
const MANIFEST = /^\/v2\/(.+)\/manifests\/([A-Za-z0-9_][A-Za-z0-9._-]{0,127})$/;

function reply(res: http.ServerResponse, status: number, headers: Record<string, string> = {}, body?: Buffer): void {
  res.writeHead(status, { 'content-length': String(body?.length ?? 0), ...headers }).end(body);
}

/** Reads a request body; keeps it only up to KEEP_LIMIT bytes (undefined beyond). */
async function drain(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= KEEP_LIMIT) chunks.push(chunk);
  }
  return size <= KEEP_LIMIT ? Buffer.concat(chunks) : undefined;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sink');
  const path = url.pathname;
  let m: RegExpExecArray | null;
  if (req.method === 'GET' && (path === '/v2/' || path === '/healthz')) return reply(res, 200);
  if (req.method === 'POST' && (m = UPLOADS.exec(path))) {
    await drain(req);
    return reply(res, 202, { location: `/v2/${m[1]}/blobs/uploads/${nextUpload++}` });
  }
  if (req.method === 'PUT' && (m = UPLOAD.exec(path))) {
    const digest = url.searchParams.get('digest') ?? '';
    const body = await drain(req);
    const stored = body ?? layerFiles.get(digest);
    if (stored === undefined) {
      const error = `{"errors":[{"code":"SINK","message":"large blob ${digest} is not a generated layer"}]}`;
      return reply(res, 400, {}, Buffer.from(error));
    }
    blobs.set(`${m[1]}@${digest}`, stored);
    return reply(res, 201, { location: `/v2/${m[1]}/blobs/${digest}`, 'docker-content-digest': digest });
  }
  if ((req.method === 'GET' || req.method === 'HEAD') && (m = BLOB.exec(path))) {
    const blob = blobs.get(`${m[1]}@${m[2]}`);
    if (blob === undefined) return reply(res, 404);
    const size = Buffer.isBuffer(blob) ? blob.length : blob.size;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    if (req.method === 'HEAD') return void res.end();
    if (Buffer.isBuffer(blob)) return void res.end(blob);
    // 256 KiB reads: on the 2-core test machine, 1.5-2x faster pulls than 64 KiB or 1-4 MiB.
    await pipeline(createReadStream(blob.path, { highWaterMark: 256 * 1024 }), res);
    return;
  }
  if (req.method === 'PUT' && (m = MANIFEST.exec(path))) {
    const body = await drain(req);
    if (body === undefined) return reply(res, 413);
    manifests.set(`${m[1]}:${m[2]}`, body);
    return reply(res, 201, { location: path });
  }
  if (req.method === 'GET' && (m = MANIFEST.exec(path))) {
    const manifest = manifests.get(`${m[1]}:${m[2]}`);
    if (manifest === undefined) return reply(res, 404);
    return reply(res, 200, { 'content-type': MANIFEST_MEDIA_TYPE }, manifest);
  }
  reply(res, 405);
}

serveLoopback(Number(args.port), (req, res) => {
  handle(req, res).catch(() => res.destroy());
});
