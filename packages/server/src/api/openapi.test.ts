import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';
import { identityRoutes } from './identity.ts';
import { policyRoutes } from './policies.ts';
import { type ApiRoute, storageRoutes } from './router.ts';
import { supplyChainRoutes } from './supplychain.ts';

interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
}

const methods = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

// The route builders only assemble arrays; their dependencies are used when a handler runs.
const routes: ApiRoute[] = [
  ...identityRoutes({} as never, {} as never),
  ...policyRoutes({} as never, {} as never),
  ...storageRoutes({} as never),
  ...supplyChainRoutes({} as never, {} as never, (async () => true) as never),
];

/** `METHOD /path/{param}`: Fastify's `:param` in OpenAPI's template style. */
const routeKey = (method: string, url: string) => `${method.toUpperCase()} ${url.replace(/:(\w+)/g, '{$1}')}`;

async function loadDocument(): Promise<OpenApiDocument> {
  return parse(await readFile(new URL('../../../../docs/openapi.yaml', import.meta.url), 'utf8')) as OpenApiDocument;
}

/** Every operation of the document by its key (path-level `parameters` and the like are not operations). */
function operations(doc: OpenApiDocument): Map<string, Record<string, unknown>> {
  const found = new Map<string, Record<string, unknown>>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (methods.has(method)) found.set(routeKey(method, path), operation as Record<string, unknown>);
    }
  }
  return found;
}

test('docs/openapi.yaml documents exactly the REST routes the server registers', async () => {
  const doc = await loadDocument();
  assert.match(doc.openapi, /^3\.1\./);
  const registered = routes.map((r) => routeKey(r.method, r.url));
  assert.equal(new Set(registered).size, registered.length, 'a route is registered twice');
  assert.deepEqual([...operations(doc).keys()].sort(), registered.sort());
});

test('each documented operation names the admin action its route is authorized for', async () => {
  const documented = operations(await loadDocument());
  for (const route of routes) {
    const key = routeKey(route.method, route.url);
    assert.equal(documented.get(key)?.['x-astore-action'], route.action, key);
  }
});

test('every $ref in docs/openapi.yaml resolves within the document', async () => {
  const doc = await loadDocument();
  const refs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === '$ref' && typeof value === 'string') refs.push(value);
        else walk(value);
      }
    }
  };
  walk(doc);
  for (const ref of new Set(refs)) {
    assert.match(ref, /^#\//, ref);
    const target = ref
      .slice(2)
      .split('/')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    assert.notEqual(target, undefined, `${ref} does not resolve`);
  }
});
