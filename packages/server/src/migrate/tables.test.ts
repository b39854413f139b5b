import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteMetaStore } from '../storage/meta/sqlite.ts';
import { bookkeepingTables, migratedTables } from './tables.ts';

/**
 * The table list is the one place `astore migrate` learns what to copy: a table left out would be
 * silently left behind. These fail as soon as a table is added to the schema without being listed,
 * or listed in an order the foreign keys refuse, or with another key than its primary key.
 */
const listed = migratedTables.map((t) => t.name as string);

let dir: string;
let schema: BetterSqlite3.Database;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'astore-migrate-tables-'));
  // The schema exactly as the migrations create it.
  await (await openSqliteMetaStore({ path: join(dir, 'meta.db') })).close();
  schema = new BetterSqlite3(join(dir, 'meta.db'), { readonly: true });
});
after(async () => {
  schema?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('migratedTables', () => {
  test("lists every table of db.ts's Database, once", async () => {
    const source = await readFile(new URL('../storage/meta/db.ts', import.meta.url), 'utf8');
    const body = /export interface Database \{([^}]*)\}/.exec(source)?.[1];
    assert.ok(body, 'db.ts declares `export interface Database { ... }`');
    const declared = [...body.matchAll(/^\s*([a-z_][a-z0-9_]*)\s*:/gm)].map((m) => m[1]!);
    assert.ok(declared.length > 20, `parsed ${declared.length} tables from db.ts`);
    assert.deepEqual([...listed].sort(), [...declared].sort(), 'migrate/tables.ts must list exactly the tables of Database (db.ts)');
    assert.equal(new Set(listed).size, listed.length, 'no table listed twice');
  });

  test('lists every table the migrations create', () => {
    const created = (schema.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`).all() as { name: string }[])
      .map((row) => row.name)
      .filter((name) => !bookkeepingTables.has(name));
    assert.deepEqual([...listed].sort(), created.sort());
  });

  test('lists parents before children, so every foreign key finds its row', () => {
    for (const [index, { name }] of migratedTables.entries()) {
      const parents = (schema.prepare(`select "table" as parent from pragma_foreign_key_list(?)`).all(name) as { parent: string }[]).map((r) => r.parent);
      for (const parent of parents) {
        if (parent === name) continue;
        assert.ok(listed.indexOf(parent) >= 0 && listed.indexOf(parent) < index, `${name} references ${parent}, which must come before it`);
      }
    }
  });

  test("keys each table by its primary key, in the key's order", () => {
    for (const { name, key } of migratedTables) {
      const columns = schema.prepare(`select name, pk from pragma_table_info(?) where pk > 0 order by pk`).all(name) as { name: string; pk: number }[];
      assert.deepEqual([...key], columns.map((c) => c.name), `primary key of ${name}`);
    }
  });
});
