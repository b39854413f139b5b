import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.ts';
import { signRequest, type RawRequest } from '../helpers/sign.ts';

/** Virtual-host style: with s3.domain set, <bucket>.<domain> addresses the bucket and the path is the key. */
let server: TestServer;
const domain = 's3.astore.test';

before(async () => {
  server = await startServer({ s3: { domain } });
});
after(async () => server?.stop());

async function send(host: string, req: RawRequest) {
  const headers = await signRequest(host, req);
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const qs = new URLSearchParams(req.query ?? {}).toString();
    const r = request({ host: '127.0.0.1', port: server.port, method: req.method, path: qs ? `${req.path}?${qs}` : req.path, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

test('bucket in the Host name: create, put, get, list; path-style still works', async () => {
  const vhost = `photos.${domain}:${server.port}`;
  assert.equal((await send(vhost, { method: 'PUT', path: '/' })).status, 200);
  assert.equal((await send(vhost, { method: 'PUT', path: '/2026/cat.jpg', body: 'meow' })).status, 200);
  const got = await send(vhost, { method: 'GET', path: '/2026/cat.jpg' });
  assert.deepEqual([got.status, got.body], [200, 'meow']);
  const listed = await send(vhost, { method: 'GET', path: '/', query: { 'list-type': '2' } });
  assert.match(listed.body, /<Key>2026\/cat\.jpg<\/Key>/);
  const pathStyle = await send(`127.0.0.1:${server.port}`, { method: 'GET', path: '/photos/2026/cat.jpg' });
  assert.deepEqual([pathStyle.status, pathStyle.body], [200, 'meow']);
});
