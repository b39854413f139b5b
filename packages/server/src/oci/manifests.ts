import { AstoreError } from '../core/errors.ts';
import { readSmallBody } from '../core/small-body.ts';
import type { Page } from '../core/registry/manifests.ts';
import { mediaTypes } from '../core/registry/manifest-format.ts';
import type { OciCall } from './router.ts';

/** Page size when the client gives no `n`, and the most one page holds. */
const defaultPageSize = 1000;
const maxPageSize = 10000;

export async function getManifest(call: OciCall): Promise<unknown> {
  const { req, reply, options, name, ref } = call;
  const manifest = await options.manifests.get(name, ref);
  const gate = await options.readGate?.(call, manifest);
  if (gate) reply.header('x-astore-verification', gate.verified ? 'verified' : 'unverified');
  reply
    .header('content-type', manifest.mediaType)
    .header('docker-content-digest', manifest.digest)
    .header('etag', `"${manifest.digest}"`)
    .header('content-length', manifest.size);
  return req.method === 'HEAD' ? reply.send() : reply.send(manifest.content);
}

export async function putManifest({ req, reply, options, query, name, ref, signal }: OciCall): Promise<unknown> {
  const maxBytes = options.manifests.maxBytes;
  const content = await readSmallBody(req.raw, maxBytes, () => new AstoreError('ManifestTooLarge', `the manifest exceeds the limit of ${maxBytes} bytes`), signal);
  const result = await options.manifests.put(name, ref, req.headers['content-type'], content, query.getAll('tag'));
  if (query.has('tag')) reply.header('oci-tag', result.tags.join(', '));
  reply
    .code(201)
    .header('location', `/v2/${name}/manifests/${result.digest}`)
    .header('docker-content-digest', result.digest)
    .header('content-length', 0);
  if (result.subject !== undefined) reply.header('oci-subject', result.subject);
  return reply.send();
}

export async function deleteManifest({ reply, options, name, ref }: OciCall): Promise<unknown> {
  await options.manifests.delete(name, ref);
  return reply.code(202).header('content-length', 0).send();
}

export async function listTags(call: OciCall): Promise<unknown> {
  const { n, last } = pageQuery(call);
  const page = await call.options.manifests.tags(call.name, n, last);
  linkNext(call, `/v2/${call.name}/tags/list`, n, page);
  return call.reply.type('application/json').send({ name: call.name, tags: page.items });
}

export async function catalog(call: OciCall): Promise<unknown> {
  const { n, last } = pageQuery(call);
  const page = await call.options.manifests.catalog(n, last);
  linkNext(call, '/v2/_catalog', n, page);
  return call.reply.type('application/json').send({ repositories: page.items });
}

export async function referrers({ reply, options, query, name, ref }: OciCall): Promise<unknown> {
  const artifactType = query.get('artifactType') ?? undefined;
  const { index, filtered } = await options.manifests.referrers(name, ref, artifactType);
  if (filtered) reply.header('oci-filters-applied', 'artifactType');
  return reply.header('content-type', mediaTypes.ociIndex).send(Buffer.from(JSON.stringify(index)));
}

function pageQuery({ query }: OciCall): { n: number; last?: string } {
  const raw = query.get('n');
  let n = defaultPageSize;
  if (raw !== null && raw !== '') {
    if (!/^\d+$/.test(raw)) throw new AstoreError('Unsupported', `n must be a non-negative integer, not ${JSON.stringify(raw)}`);
    n = Math.min(Number(raw), maxPageSize);
  }
  return { n, last: query.get('last') ?? undefined };
}

/** RFC 5988 `Link` to the next page, as the distribution spec pages tags and the catalog. */
function linkNext({ reply }: OciCall, path: string, n: number, page: Page<string>): void {
  if (page.next === undefined) return;
  const next = new URLSearchParams({ n: String(n), last: page.next });
  reply.header('link', `<${path}?${next.toString()}>; rel="next"`);
}
