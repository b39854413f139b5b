import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { parse } from 'yaml';

/** The OpenAPI document names every REST route the server registers, and nothing else. */
test('docs/openapi.yaml documents the REST routes', async () => {
  const doc = parse(await readFile(new URL('../../../../docs/openapi.yaml', import.meta.url), 'utf8')) as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
  };
  assert.match(doc.openapi, /^3\.1\./);
  const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`));
  const source = await readFile(new URL('./router.ts', import.meta.url), 'utf8');
  const registered = [...source.matchAll(/app\.(get|post|put|delete|patch)\(\s*'([^']+)'/g)].map(
    ([, method, path]) => `${method!.toUpperCase()} ${path!.replace(/:(\w+)/g, '{$1}')}`,
  );
  assert.deepEqual(documented.sort(), registered.sort());
});
