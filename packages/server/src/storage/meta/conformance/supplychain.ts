import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asActor } from '../../../core/identity/actor.ts';
import type { KeyRecord, SupplyChainMeta, SupplyChainRecord, TrustPolicyRecord, VerificationRecord } from '../types.ts';
import { type StoreRef, T0, allAuditEntries, digestOf, rejectsWith } from './fixtures.ts';

/** A record of `id` with every required field; the document's digest follows from the id. */
export function scRecord(id: string, fields: Partial<SupplyChainRecord> = {}): SupplyChainRecord {
  return {
    id,
    subject: digestOf('subject'),
    kind: 'sbom',
    format: 'cyclonedx',
    mediaType: 'application/vnd.cyclonedx+json',
    contentDigest: digestOf(`document ${id}`),
    size: 1234,
    createdBy: 'user:alice',
    createdAt: new Date(T0),
    ...fields,
  };
}

/** A record read from layer `layer` of a registry manifest. */
export function registryRecord(id: string, repository: string, manifest: string, layer: number, fields: Partial<SupplyChainRecord> = {}): SupplyChainRecord {
  return scRecord(id, { kind: 'signature', format: 'cosign', mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', repository, sourceManifest: manifest, sourceLayer: layer, ...fields });
}

function keyRecord(name: string, version: number, fields: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: `${name}/${version}`,
    name,
    version,
    kind: 'signing',
    algorithm: 'ecdsa-p256',
    publicPem: `-----BEGIN PUBLIC KEY-----\n${name}${version}\n-----END PUBLIC KEY-----\n`,
    fingerprint: digestOf(`${name}/${version}`).slice('sha256:'.length),
    createdBy: 'root',
    createdAt: new Date(T0),
    ...fields,
  };
}

function trustPolicy(name: string, fields: Partial<TrustPolicyRecord> = {}): TrustPolicyRecord {
  return { name, document: JSON.stringify({ name, scopes: [`oci:${name}/*`], require: ['signature'] }), createdAt: new Date(T0), updatedAt: new Date(T0), ...fields };
}

function verification(subject: string, policy: string, fields: Partial<VerificationRecord> = {}): VerificationRecord {
  return { subject, policy, status: 'verified', reason: 'signed by release/1', verifiedBy: 'release/1', evaluatedAt: new Date(T0), generation: 1, ...fields };
}

interface Step {
  action: string;
  resource: string;
  run: (sc: SupplyChainMeta) => Promise<unknown>;
}

/** One call of every changing method, each changing something in this order, with its audit entry. */
const changes: readonly Step[] = [
  { action: 'supplychain:AttachRecord', resource: 'supplychain:records/r1', run: (sc) => sc.putRecord(scRecord('r1'), { components: [{ name: 'x', licenses: [], hashes: [] }] }) },
  { action: 'supplychain:AttachRecord', resource: 'supplychain:records/r2', run: (sc) => sc.putRecord(registryRecord('r2', 'team/app', digestOf('m'), 0)) },
  { action: 'supplychain:DeleteRecord', resource: 'supplychain:records/r1', run: (sc) => sc.deleteRecord('r1') },
  { action: 'supplychain:DeleteRecord', resource: 'supplychain:records/r2', run: (sc) => sc.deleteRecordsFromManifest('team/app', digestOf('m')) },
  { action: 'supplychain:CreateKey', resource: 'supplychain:keys/release/1', run: (sc) => sc.createKey(keyRecord('release', 1)) },
  { action: 'supplychain:UpdateKey', resource: 'supplychain:keys/release/1', run: (sc) => sc.updateKey('release/1', { retiredAt: new Date(T0 + 1) }) },
  { action: 'supplychain:PutTrustPolicy', resource: 'supplychain:policies/prod', run: (sc) => sc.putTrustPolicy(trustPolicy('prod')) },
  { action: 'supplychain:PutTrustPolicy', resource: 'supplychain:policies/prod', run: (sc) => sc.putTrustPolicy(trustPolicy('prod', { updatedAt: new Date(T0 + 1) })) },
  { action: 'supplychain:DeleteTrustPolicy', resource: 'supplychain:policies/prod', run: (sc) => sc.deleteTrustPolicy('prod') },
];

/** Calls that change nothing, against the state `nonChangesSetup` leaves. */
const nonChanges: readonly { label: string; run: (sc: SupplyChainMeta) => Promise<unknown> }[] = [
  { label: 'putRecord of a taken id', run: (sc) => sc.putRecord(scRecord('kept', { subject: digestOf('other') })) },
  { label: 'putRecord of a stored registry source', run: (sc) => sc.putRecord(registryRecord('again', 'team/app', digestOf('m'), 0)) },
  { label: 'deleteRecord of an absent id', run: (sc) => sc.deleteRecord('absent') },
  { label: 'deleteRecordsFromManifest with none', run: (sc) => sc.deleteRecordsFromManifest('team/app', digestOf('none')) },
  { label: 'createKey of a taken id', run: (sc) => sc.createKey(keyRecord('release', 1, { algorithm: 'ed25519' })) },
  { label: 'updateKey of an absent key', run: (sc) => sc.updateKey('release/9', { revokedAt: new Date(T0) }) },
  { label: 'deleteTrustPolicy of an absent policy', run: (sc) => sc.deleteTrustPolicy('absent') },
  { label: 'putVerification', run: (sc) => sc.putVerification(verification(digestOf('subject'), 'prod')) },
];

async function nonChangesSetup(sc: SupplyChainMeta): Promise<void> {
  await sc.putRecord(scRecord('kept'));
  await sc.putRecord(registryRecord('from-registry', 'team/app', digestOf('m'), 0));
  await sc.createKey(keyRecord('release', 1));
}

/** SupplyChainMeta: records, keys, trust policies, verification results, generation and audit. */
export function supplyChainTests(store: StoreRef): void {
  const sc = () => store().supplychain;
  const FUTURE = (): Date => new Date(Date.now() + 60_000);

  // ------------------------------------------------------------ records

  test('putRecord then getRecord round-trips every field; a minimal record gains none', async () => {
    const full = scRecord('full', {
      kind: 'attestation',
      format: 'dsse',
      mediaType: 'application/vnd.dsse.envelope.v1+json',
      bucket: 'releases',
      key: 'app/1.0/app-ファイル.tar.gz',
      repository: 'team/app',
      sourceManifest: digestOf('manifest'),
      sourceLayer: 0,
      predicateType: 'https://slsa.dev/provenance/v1',
      keyHint: 'release/1',
      createdAt: new Date(T0 + 123),
    });
    const minimal = scRecord('minimal');
    assert.equal(await sc().putRecord(full), 'created');
    assert.equal(await sc().putRecord(minimal), 'created');
    assert.deepEqual(await sc().getRecord('full'), full);
    assert.deepEqual(await sc().getRecord('minimal'), minimal);
    assert.equal(await sc().getRecord('absent'), null);
  });

  test('putRecord upserts the document blob row and refreshes its touchedAt', async () => {
    const record = scRecord('r', { size: 77 });
    await store().blobs.touch(record.contentDigest, 77);
    const before = (await store().blobs.get(record.contentDigest))!.touchedAt.getTime();
    await new Promise((resolve) => setTimeout(resolve, 3));
    await sc().putRecord(record);
    const blob = await store().blobs.get(record.contentDigest);
    assert.ok(blob && blob.touchedAt.getTime() > before);
    assert.equal(blob.size, 77);
    await sc().putRecord(scRecord('fresh', { contentDigest: digestOf('new doc'), size: 5 }));
    assert.equal((await store().blobs.get(digestOf('new doc')))?.size, 5);
  });

  test('a registry record is stored once per (repository, manifest, layer); other records never collide', async () => {
    const manifest = digestOf('sig manifest');
    assert.equal(await sc().putRecord(registryRecord('a', 'team/app', manifest, 0)), 'created');
    assert.equal(await sc().putRecord(registryRecord('b', 'team/app', manifest, 0, { createdAt: new Date(T0 + 9) })), 'exists');
    assert.equal(await sc().getRecord('b'), null, 'the second put wrote nothing');
    assert.equal(await sc().putRecord(registryRecord('c', 'team/app', manifest, 1)), 'created', 'another layer');
    assert.equal(await sc().putRecord(registryRecord('d', 'team/other', manifest, 0)), 'created', 'another repository');
    // Without a layer index the (repository, manifest) pair is still idempotent.
    assert.equal(await sc().putRecord(registryRecord('e', 'team/app', digestOf('referrer'), 0, { sourceLayer: undefined })), 'created');
    assert.equal(await sc().putRecord(registryRecord('f', 'team/app', digestOf('referrer'), 0, { sourceLayer: undefined })), 'exists');
    assert.equal((await sc().getRecord('e'))?.sourceLayer, undefined);
    // S3 records, and records of a repository not read from a manifest, have no source: all distinct.
    for (const id of ['s1', 's2']) assert.equal(await sc().putRecord(scRecord(id, { bucket: 'b', key: 'k' })), 'created');
    for (const id of ['o1', 'o2']) assert.equal(await sc().putRecord(scRecord(id, { repository: 'team/app' })), 'created');
    assert.equal(await sc().putRecord(scRecord('s1', { subject: digestOf('other') })), 'exists', 'a taken id');
    assert.equal((await sc().getRecord('s1'))?.subject, digestOf('subject'));
    await rejectsWith(sc().putRecord(registryRecord('g', 'team/app', manifest, -1)), 'InvalidArgument');
  });

  test('listRecords filters by subject, object, repository and kind, in (createdAt, id) order', async () => {
    const records = [
      scRecord('r3', { createdAt: new Date(T0 + 1), bucket: 'b', key: 'k1' }),
      scRecord('r1', { createdAt: new Date(T0 + 1), bucket: 'b', key: 'k1', kind: 'signature' }),
      scRecord('r2', { createdAt: new Date(T0), bucket: 'b', key: 'k2' }),
      scRecord('r4', { createdAt: new Date(T0 + 2), subject: digestOf('other'), repository: 'team/app' }),
      scRecord('r5', { createdAt: new Date(T0 - 5), repository: 'team/app', kind: 'attestation' }),
    ];
    for (const record of records) await sc().putRecord(record);
    const ids = async (query: Omit<Parameters<SupplyChainMeta['listRecords']>[0], 'limit'>) => (await sc().listRecords({ ...query, limit: 100 })).items.map((r) => r.id);
    assert.deepEqual(await ids({}), ['r5', 'r2', 'r1', 'r3', 'r4']);
    assert.deepEqual(await ids({ subject: digestOf('subject') }), ['r5', 'r2', 'r1', 'r3']);
    assert.deepEqual(await ids({ bucket: 'b', key: 'k1' }), ['r1', 'r3']);
    assert.deepEqual(await ids({ bucket: 'b' }), ['r2', 'r1', 'r3']);
    assert.deepEqual(await ids({ repository: 'team/app' }), ['r5', 'r4']);
    assert.deepEqual(await ids({ repository: 'team' }), [], 'repository is exact');
    assert.deepEqual(await ids({ kind: 'sbom' }), ['r2', 'r3', 'r4']);
    assert.deepEqual(await ids({ subject: digestOf('subject'), kind: 'signature' }), ['r1']);
    assert.deepEqual((await sc().listRecords({ limit: 1 })).items.map((r) => r.id), ['r5']);
    assert.deepEqual(await sc().listRecords({ limit: 0 }), { items: [] });
    assert.deepEqual((await sc().listRecords({ subject: digestOf('subject'), limit: 10 })).items[0], records[4]);
  });

  test('listRecords pages with an opaque cursor that survives the deletion of the last record seen', async () => {
    for (let i = 0; i < 7; i++) await sc().putRecord(scRecord(`r${i}`, { createdAt: new Date(T0 + (i % 3)) }));
    const expected = (await sc().listRecords({ limit: 100 })).items.map((r) => r.id);
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await sc().listRecords({ limit: 2, ...(after !== undefined && { after }) });
      seen.push(...page.items.map((r) => r.id));
      if (page.next !== undefined) {
        assert.equal(page.items.length, 2);
        await sc().deleteRecord(page.items.at(-1)!.id);
      }
      after = page.next;
    } while (after !== undefined);
    assert.deepEqual(seen, expected);
    await rejectsWith(sc().listRecords({ limit: 2, after: 'not a cursor' }), 'InvalidArgument');
  });

  test('deleteRecord removes the record, its components and facts; false when absent', async () => {
    const subject = digestOf('artifact');
    await sc().putRecord(scRecord('sbom', { subject }), { components: [{ name: 'lib', version: '1.0', purl: 'pkg:npm/lib@1.0', licenses: ['MIT'], hashes: [] }] });
    await sc().putRecord(scRecord('prov', { subject, kind: 'attestation', format: 'dsse' }), { facts: { predicateType: 'https://slsa.dev/provenance/v1', materials: [] } });
    assert.equal(await sc().deleteRecord('sbom'), true);
    assert.equal(await sc().getRecord('sbom'), null);
    assert.deepEqual((await sc().findComponents({ name: 'lib', limit: 10 })).items, []);
    assert.equal(await sc().deleteRecord('prov'), true);
    assert.deepEqual(await sc().listFacts(subject), []);
    assert.equal(await sc().deleteRecord('prov'), false);
    assert.equal(await sc().putRecord(scRecord('sbom', { subject })), 'created', 'the id is free again');
  });

  test('deleteRecordsFromManifest removes the records read from that manifest only', async () => {
    const manifest = digestOf('signature manifest');
    await sc().putRecord(registryRecord('l0', 'team/app', manifest, 0));
    await sc().putRecord(registryRecord('l1', 'team/app', manifest, 1), { facts: { predicateType: 'p', materials: [] } });
    await sc().putRecord(registryRecord('elsewhere', 'team/other', manifest, 0));
    await sc().putRecord(registryRecord('other manifest', 'team/app', digestOf('x'), 0));
    assert.equal(await sc().deleteRecordsFromManifest('team/app', manifest), 2);
    assert.deepEqual((await sc().listRecords({ limit: 10 })).items.map((r) => r.id).sort(), ['elsewhere', 'other manifest']);
    assert.equal(await sc().deleteRecordsFromManifest('team/app', manifest), 0);
  });

  // ------------------------------------------------------------ blobs

  test('a blob named only by a record is not garbage and references() lists the record', async () => {
    const record = scRecord('doc', { subject: digestOf('artifact') });
    await sc().putRecord(record);
    await sc().putRecord(scRecord('same doc', { subject: digestOf('other artifact'), contentDigest: record.contentDigest }));
    const garbage = async () => (await store().blobs.listGarbage(FUTURE(), 100)).map((blob) => blob.digest);
    assert.deepEqual(await garbage(), []);
    assert.equal(await store().blobs.deleteIfGarbage(record.contentDigest, FUTURE(), async () => assert.fail('bytes removed')), false);
    assert.deepEqual(await store().blobs.references(record.contentDigest, 10), {
      objects: [],
      multipartParts: [],
      layers: [],
      registryUploads: [],
      records: [
        { id: 'doc', subject: digestOf('artifact') },
        { id: 'same doc', subject: digestOf('other artifact') },
      ],
    });
    assert.equal((await store().blobs.references(record.contentDigest, 1)).records.length, 1);

    await sc().deleteRecord('doc');
    assert.deepEqual(await garbage(), [], 'still named by the other record');
    await sc().deleteRecord('same doc');
    assert.deepEqual(await garbage(), [record.contentDigest]);
    assert.equal(await store().blobs.deleteIfGarbage(record.contentDigest, FUTURE(), async () => {}), true);
  });

  // ------------------------------------------------------------ keys

  test('keys: create (false when the id is taken), get, list by name and version, update', async () => {
    const v1 = keyRecord('release', 1, { providerRef: 'file:release-1.pem', expiresAt: new Date(T0 + 1000) });
    const v2 = keyRecord('release', 2);
    const imported = keyRecord('partner', 1, { kind: 'public', algorithm: 'ed25519' });
    const ca = keyRecord('notary-root', 1, { kind: 'certificate', algorithm: 'x509' });
    for (const key of [v2, imported, v1, ca]) assert.equal(await sc().createKey(key), true);
    assert.equal(await sc().createKey(keyRecord('release', 1, { algorithm: 'rsa' })), false);
    assert.deepEqual(await sc().getKey('release/1'), v1);
    assert.deepEqual(await sc().getKey('partner/1'), imported, 'no invented fields');
    assert.equal(await sc().getKey('release/3'), null);
    assert.deepEqual(await sc().listKeys(), [ca, imported, v1, v2]);
    assert.deepEqual(await sc().listKeys('release'), [v1, v2]);
    assert.deepEqual(await sc().listKeys('rel'), []);

    const retired = await sc().updateKey('release/1', { retiredAt: new Date(T0 + 5) });
    assert.deepEqual(retired, { ...v1, retiredAt: new Date(T0 + 5) });
    const revoked = await sc().updateKey('release/1', { revokedAt: new Date(T0 + 6), expiresAt: new Date(T0 + 7) });
    assert.deepEqual(revoked, { ...v1, retiredAt: new Date(T0 + 5), revokedAt: new Date(T0 + 6), expiresAt: new Date(T0 + 7) });
    assert.deepEqual(await sc().getKey('release/1'), revoked);
    assert.deepEqual(await sc().updateKey('release/1', {}), revoked, 'an empty patch changes nothing');
    assert.equal(await sc().updateKey('release/9', { retiredAt: new Date(T0) }), null);
    assert.equal(await sc().getKey('release/9'), null, 'updateKey does not create');
  });

  // ------------------------------------------------------------ trust policies

  test('trust policies: put creates then updates (createdAt kept), get, list in name order, delete', async () => {
    const prod = trustPolicy('prod', { createdAt: new Date(T0 + 1), updatedAt: new Date(T0 + 1) });
    assert.equal(await sc().putTrustPolicy(prod), 'created');
    assert.equal(await sc().putTrustPolicy(trustPolicy('dev')), 'created');
    const edited = trustPolicy('prod', { document: '{"edited":true}', createdAt: new Date(T0 + 50), updatedAt: new Date(T0 + 60) });
    assert.equal(await sc().putTrustPolicy(edited), 'updated');
    const stored = { ...edited, createdAt: prod.createdAt };
    assert.deepEqual(await sc().getTrustPolicy('prod'), stored);
    assert.deepEqual(await sc().listTrustPolicies(), [trustPolicy('dev'), stored]);
    assert.equal(await sc().deleteTrustPolicy('prod'), true);
    assert.equal(await sc().deleteTrustPolicy('prod'), false);
    assert.equal(await sc().getTrustPolicy('prod'), null);
    assert.deepEqual(await sc().listTrustPolicies(), [trustPolicy('dev')]);
  });

  // ------------------------------------------------------------ verification results

  test('verifications: put replaces per (subject, policy); list is newest first', async () => {
    const subject = digestOf('artifact');
    const first = verification(subject, 'prod', { evaluatedAt: new Date(T0) });
    await sc().putVerification(first);
    assert.deepEqual(await sc().getVerification(subject, 'prod'), first);
    const failed = verification(subject, 'prod', { status: 'failed', reason: 'no signature by a trusted key', verifiedBy: undefined, evaluatedAt: new Date(T0 + 10), generation: 4 });
    await sc().putVerification(failed);
    const { verifiedBy: _verifiedBy, ...failedStored } = failed;
    assert.deepEqual(await sc().getVerification(subject, 'prod'), failedStored);
    const dev = verification(subject, 'dev', { status: 'missing', reason: 'no records', evaluatedAt: new Date(T0 + 20) });
    await sc().putVerification(dev);
    await sc().putVerification(verification(digestOf('other'), 'prod'));
    assert.deepEqual(await sc().listVerifications(subject), [dev, failedStored]);
    assert.equal(await sc().getVerification(subject, 'staging'), null);
    assert.deepEqual(await sc().listVerifications(digestOf('none')), []);
  });

  // ------------------------------------------------------------ generation and audit

  test('generation goes up by one with every change and stays with every read', async () => {
    let last = await sc().generation();
    for (const step of changes) {
      await step.run(sc());
      const now = await sc().generation();
      assert.equal(now, last + 1, step.action);
      last = now;
      await sc().listRecords({ limit: 10 });
      await sc().listKeys();
      await sc().listTrustPolicies();
      await sc().findComponents({ name: 'x', limit: 10 });
      assert.equal(await sc().generation(), last, `reads after ${step.action}`);
    }
    assert.equal(await store().identity.generation(), 0, 'the identity generation is separate');
  });

  test('a call that changes nothing, and putVerification, leave the generation and the log as they were', async () => {
    await nonChangesSetup(sc());
    const before = await sc().generation();
    await asActor({ principal: 'user:alice' }, async () => {
      for (const step of nonChanges) await step.run(sc());
    });
    assert.equal(await sc().generation(), before);
    assert.deepEqual(await allAuditEntries(store()), []);
  });

  test('concurrent changes each advance the generation', async () => {
    const before = await sc().generation();
    await Promise.all(Array.from({ length: 8 }, (_, i) => sc().putRecord(scRecord(`c${i}`))));
    assert.equal(await sc().generation(), before + 8);
  });

  test('each change made by an actor writes its audit entry in its transaction; without one, none', async () => {
    const actor = { principal: 'user:alice', accessKeyId: 'AKALICE', sourceIp: '192.0.2.7', requestId: 'req-1' };
    await asActor(actor, async () => {
      for (const step of changes) await step.run(sc());
    });
    const entries = await allAuditEntries(store());
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.resource]),
      changes.map((step) => [step.action, step.resource]),
    );
    for (const entry of entries) {
      assert.equal(entry.outcome, 'success');
      assert.equal(entry.principal, 'user:alice');
      assert.equal(entry.accessKeyId, 'AKALICE');
      assert.equal(entry.requestId, 'req-1');
    }
    assert.deepEqual(entries[0]?.detail, { subject: digestOf('subject'), kind: 'sbom', format: 'cyclonedx', contentDigest: digestOf('document r1'), components: 1 });

    for (const step of changes) await step.run(sc());
    assert.equal((await allAuditEntries(store())).length, changes.length, 'no actor, no entries');
  });
}
