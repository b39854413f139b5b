// The loopback HTTP limit: a trivial node:http server on 127.0.0.1 that drains PUT bodies (remembering
// each object's size and first bytes) and answers GET with the same bytes regenerated from the shared
// pattern. No auth check, no disk, no hashing: what is left is the cost of HTTP on loopback plus the load
// generator's own, so it bounds what any S3 server can reach with this client on this machine.
//
//   node --import tsx bench/s3/sink.ts [--port 0]   # prints `listening <port>` on stdout when ready

import { parseArgs } from 'node:util';
import { serveLoopback } from '../common/sink.ts';
import { STAMP_LEN, writeBody } from './body.ts';

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } });

/** path -> size and stamp (first bytes) of the last PUT there. */
const objects = new Map<string, { size: number; stamp: Buffer }>();

serveLoopback(Number(args.port), (req, res) => {
  const path = req.url ?? '/';
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200, { 'content-length': '0' }).end();
    return;
  }
  if (req.method === 'PUT') {
    let size = 0;
    const head: Buffer[] = [];
    let headLen = 0;
    req.on('data', (chunk: Buffer) => {
      if (headLen < STAMP_LEN) {
        head.push(chunk.subarray(0, STAMP_LEN - headLen));
        headLen += Math.min(chunk.length, STAMP_LEN - headLen);
      }
      size += chunk.length;
    });
    req.once('end', () => {
      const stamp = Buffer.alloc(STAMP_LEN);
      Buffer.concat(head).copy(stamp);
      objects.set(path, { size, stamp });
      res.writeHead(200, { etag: '"0"', 'content-length': '0' }).end();
    });
    return;
  }
  if (req.method === 'GET') {
    const object = objects.get(path);
    if (object === undefined) {
      const body = '<Error><Code>NoSuchKey</Code></Error>';
      res.writeHead(404, { 'content-type': 'application/xml', 'content-length': String(body.length) }).end(body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(object.size) });
    writeBody(res, object.size, object.stamp).catch(() => res.destroy());
    return;
  }
  res.writeHead(405, { 'content-length': '0' }).end();
});

