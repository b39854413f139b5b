import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEntry, AuditQuery } from '../types.ts';
import {
  type StoreRef,
  T0,
  allAuditEntries,
  auditEntry,
  identityChanges,
  identityNonChanges,
  identityNonChangesSetup,
  rejectsWith,
  userRecord,
} from './fixtures.ts';

/** AuditMeta, and the entries IdentityMeta writes in the transactions of its changes. */
export function auditTests(store: StoreRef): void {
  const audit = () => store().audit;
  /** The entries as appended, without the ids the store assigned. */
  const withoutIds = (entries: AuditEntry[]): AuditEntry[] => entries.map(({ id: _id, ...entry }) => entry);
  const actionsOf = (entries: AuditEntry[]): string[] => entries.map((entry) => entry.action);
  const query = async (fields: Omit<AuditQuery, 'limit'>, limit = 1000): Promise<string[]> => actionsOf(await audit().query({ ...fields, limit }));

  // ------------------------------------------------------------ append and query

  test('append stores every field; query returns entries in append order with increasing ids', async () => {
    const full = auditEntry('s3:PutObject', 's3:bucket/key', {
      at: new Date(T0 + 1),
      principal: 'user:alice',
      accessKeyId: 'AKALICE',
      outcome: 'allowed',
      sourceIp: '2001:db8::1',
      requestId: 'req-1',
      detail: { matched: { policy: 'p', sid: 's1' }, reason: 'allow', count: 2, list: ['a', null, true] },
    });
    const bare = auditEntry('admin:CreateUser', 'api:users/bob');
    await audit().append([full, bare]);
    await audit().append([auditEntry('oci:pull', 'oci:team/app', { outcome: 'denied', principal: 'anonymous' })]);

    const entries = await allAuditEntries(store());
    assert.deepEqual(withoutIds(entries), [full, bare, auditEntry('oci:pull', 'oci:team/app', { outcome: 'denied', principal: 'anonymous' })]);
    const ids = entries.map((entry) => entry.id);
    for (const id of ids) assert.ok(Number.isSafeInteger(id), `id ${id}`);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `ids increase: ${ids.join(', ')}`);
    assert.ok(!('accessKeyId' in entries[1]!) && !('detail' in entries[1]!) && !('sourceIp' in entries[1]!), 'unset fields are absent');
  });

  test('append of no entries changes nothing; an id given to append is not kept', async () => {
    await audit().append([]);
    assert.deepEqual(await allAuditEntries(store()), []);
    await audit().append([{ ...auditEntry('s3:GetObject', 's3:b/k'), id: 1_000_000 }]);
    const [entry] = await allAuditEntries(store());
    assert.notEqual(entry?.id, 1_000_000);
  });

  test('principal and outcome select exactly', async () => {
    await audit().append([
      auditEntry('a1', 'r', { principal: 'user:al', outcome: 'allowed' }),
      auditEntry('a2', 'r', { principal: 'user:alice', outcome: 'denied' }),
      auditEntry('a3', 'r', { principal: 'user:al', outcome: 'denied' }),
      auditEntry('a4', 'r', { principal: 'root', outcome: 'success' }),
    ]);
    assert.deepEqual(await query({ principal: 'user:al' }), ['a1', 'a3']);
    assert.deepEqual(await query({ principal: 'user:a' }), [], 'not a prefix');
    assert.deepEqual(await query({ outcome: 'denied' }), ['a2', 'a3']);
    assert.deepEqual(await query({ principal: 'user:al', outcome: 'denied' }), ['a3']);
    assert.deepEqual(await query({ outcome: 'failure' }), []);
  });

  test('action is exact, or a prefix when it ends in *', async () => {
    const actions = ['s3:GetObject', 's3:GetObjectAcl', 's3:PutObject', 's3', 's3x:Get', 's4:Get', 'S3:GetObject', 'oci:pull', 's3:GetObject*'];
    await audit().append(actions.map((action) => auditEntry(action, 'r')));
    assert.deepEqual(await query({ action: 's3:GetObject' }), ['s3:GetObject']);
    assert.deepEqual(await query({ action: 's3:*' }), ['s3:GetObject', 's3:GetObjectAcl', 's3:PutObject', 's3:GetObject*']);
    assert.deepEqual(await query({ action: 's3:Get*' }), ['s3:GetObject', 's3:GetObjectAcl', 's3:GetObject*']);
    assert.deepEqual(await query({ action: 's3*' }), ['s3:GetObject', 's3:GetObjectAcl', 's3:PutObject', 's3', 's3x:Get', 's3:GetObject*']);
    assert.deepEqual(await query({ action: '*' }), actions);
    assert.deepEqual(await query({ action: 's3' }), ['s3']);
    assert.deepEqual(await query({ action: 'oci:*' }), ['oci:pull']);
  });

  test('resource is a prefix, in byte order, with % and _ taken literally', async () => {
    const resources = ['s3:b/a%c', 's3:b/abc', 's3:b/a_c', 's3:b/aXc', 's3:b', 's3:bb/x', 's3:b/é', 's3:b/😀', 's3:b/\u{10ffff}', 'oci:b/x'];
    await audit().append(resources.map((resource, i) => auditEntry(`a${i}`, resource)));
    const matching = async (resource: string) => (await audit().query({ resource, limit: 100 })).map((entry) => entry.resource);
    assert.deepEqual(await matching('s3:b/a%'), ['s3:b/a%c']);
    assert.deepEqual(await matching('s3:b/a_'), ['s3:b/a_c']);
    assert.deepEqual(await matching('s3:b/'), ['s3:b/a%c', 's3:b/abc', 's3:b/a_c', 's3:b/aXc', 's3:b/é', 's3:b/😀', 's3:b/\u{10ffff}']);
    assert.deepEqual(await matching('s3:b'), resources.filter((r) => r.startsWith('s3:b')));
    assert.deepEqual(await matching('s3:b/é'), ['s3:b/é']);
    assert.deepEqual(await matching('s3:b/\u{10ffff}'), ['s3:b/\u{10ffff}']);
    assert.deepEqual(await matching(''), resources);
    assert.deepEqual(await matching('S3:'), []);
  });

  test('from is inclusive, to exclusive, on the time of the entry', async () => {
    await audit().append([0, 1, 2, 3].map((offset) => auditEntry(`t${offset}`, 'r', { at: new Date(T0 + offset) })));
    assert.deepEqual(await query({ from: new Date(T0 + 1) }), ['t1', 't2', 't3']);
    assert.deepEqual(await query({ to: new Date(T0 + 2) }), ['t0', 't1']);
    assert.deepEqual(await query({ from: new Date(T0 + 1), to: new Date(T0 + 3) }), ['t1', 't2']);
    assert.deepEqual(await query({ from: new Date(T0 + 2), to: new Date(T0 + 2) }), []);
  });

  test('afterId and limit page forward through the matches', async () => {
    await audit().append(Array.from({ length: 7 }, (_, i) => auditEntry(`s3:Op${i}`, 's3:b/k', { outcome: i % 2 === 0 ? 'allowed' : 'denied' })));
    await audit().append([auditEntry('oci:pull', 'oci:r')]);
    const pages: string[][] = [];
    for (let afterId: number | undefined; ; ) {
      const page = await audit().query({ action: 's3:*', outcome: 'allowed', limit: 2, ...(afterId !== undefined && { afterId }) });
      if (page.length === 0) break;
      pages.push(actionsOf(page));
      afterId = page.at(-1)!.id;
    }
    assert.deepEqual(pages, [['s3:Op0', 's3:Op2'], ['s3:Op4', 's3:Op6']]);
    assert.deepEqual(await audit().query({ limit: 0 }), []);
    const all = await allAuditEntries(store());
    assert.deepEqual(await query({ afterId: all.at(-1)!.id! }), []);
    assert.deepEqual(await query({ afterId: all[5]!.id! }), ['s3:Op6', 'oci:pull']);
  });

  // ------------------------------------------------------------ entries of identity changes

  test('each identity change writes its audit entry', async () => {
    for (const step of identityChanges) await step.run(store().identity, auditEntry(step.action, `api:${step.action}`));
    assert.deepEqual(
      actionsOf(await allAuditEntries(store())),
      identityChanges.map((step) => step.action),
    );
  });

  test('a call that changes nothing, or fails, writes no audit entry', async () => {
    await identityNonChangesSetup(store().identity);
    for (const step of identityNonChanges) await step.run(store().identity, auditEntry(step.action, 'api:x')).catch(() => {});
    assert.deepEqual(await allAuditEntries(store()), []);
  });

  test('addMember to a missing group throws NoSuchEntity and writes no entry', async () => {
    await store().identity.createUser(userRecord('u'));
    await rejectsWith(store().identity.addMember('nogroup', 'u', auditEntry('admin:AddGroupMember', 'api:groups/nogroup')), 'NoSuchEntity');
    assert.deepEqual(await allAuditEntries(store()), []);
  });

  test('a change whose audit entry cannot be stored rolls back with it', async () => {
    const generation = await store().identity.generation();
    // JSON cannot hold a BigInt: storing the entry fails after the user was inserted in the transaction.
    const unstorable = auditEntry('admin:CreateUser', 'api:users/u', { detail: { size: 1n } });
    await assert.rejects(store().identity.createUser(userRecord('u'), unstorable));
    assert.equal(await store().identity.getUser('u'), null);
    assert.equal(await store().identity.generation(), generation);
    assert.deepEqual(await allAuditEntries(store()), []);
    assert.equal(await store().identity.createUser(userRecord('u'), auditEntry('admin:CreateUser', 'api:users/u')), true);
    assert.equal((await allAuditEntries(store())).length, 1);
  });
}
