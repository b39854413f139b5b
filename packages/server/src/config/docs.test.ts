import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configSchema } from './schema.ts';
import { z } from 'zod';

/** Every leaf key of the schema, as a dotted path. */
function leafKeys(schema: z.ZodType, prefix = ''): string[] {
  let inner: z.ZodType = schema;
  for (;;) {
    const def = (inner as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } }).def;
    if (def.innerType) inner = def.innerType;
    else if (def.type === 'pipe' && def.in) inner = def.in;
    else break;
  }
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape).flatMap(([k, v]) => leafKeys(v as z.ZodType, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

test('every configuration key is documented in docs/configuration.md', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url)), 'utf8');
  const keys = leafKeys(configSchema);
  assert.ok(keys.length > 20, `found only ${keys.length} keys`);
  const missing = keys.filter((k) => !doc.includes(`| \`${k}\` |`));
  assert.deepEqual(missing, [], `undocumented keys: ${missing.join(', ')}`);
});

test('every storage driver example in docs/configuration.md is a valid configuration', async () => {
  const { parse } = await import('yaml');
  const { parseConfig } = await import('./load.ts');
  const doc = readFileSync(fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url)), 'utf8');
  const section = doc.slice(doc.indexOf('## Storage drivers'));
  const examples = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(examples.length >= 4, `found ${examples.length} examples`);
  const drivers = new Set<string>();
  for (const example of examples) {
    const config = parseConfig(parse(example) as Record<string, unknown>);
    drivers.add(config.storage.blob.driver);
    drivers.add(config.storage.meta.driver);
  }
  for (const driver of ['s3', 'azure', 'gcs', 'postgres']) assert.ok(drivers.has(driver), `an example uses ${driver}`);
});
