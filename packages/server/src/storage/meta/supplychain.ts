import type { Kysely, Selectable, Transaction } from 'kysely';
import { auditChange } from './change-audit.ts';
import { type Database, type ScKeysTable, type ScTrustPoliciesTable, type ScVerificationsTable, inWriteTransaction } from './db.ts';
import { findComponents, findLacking, listFacts } from './supplychain-queries.ts';
import { deleteRecords, insertRecord, listRecords, readRecord } from './supplychain-records.ts';
import type {
  ArtifactRef,
  AttestationFactsRow,
  ComponentMatch,
  ComponentQuery,
  ComponentRow,
  KeyRecord,
  LackingQuery,
  Page,
  RecordQuery,
  SupplyChainMeta,
  SupplyChainRecord,
  TrustPolicyRecord,
  VerificationRecord,
} from './types.ts';

/**
 * Records (./supplychain-records.ts), the queries over their components and facts
 * (./supplychain-queries.ts), keys, trust policies and verification results. Every change runs in one
 * write transaction that bumps the generation and writes the actor's audit entry (change-audit.ts),
 * both only when it changes something: a call that returns 'exists', false or null leaves them as
 * they were. putVerification is a cache of derived results: neither audited nor counted.
 */
export class KyselySupplyChainMeta implements SupplyChainMeta {
  constructor(private readonly db: Kysely<Database>) {}

  // ------------------------------------------------------------ records

  putRecord(record: SupplyChainRecord, extra: { components?: ComponentRow[]; facts?: AttestationFactsRow } = {}): Promise<'created' | 'exists'> {
    return this.change(async (trx) => {
      const outcome = await insertRecord(trx, record, extra, Date.now());
      return { result: outcome, changed: outcome === 'created' };
    });
  }

  getRecord(id: string): Promise<SupplyChainRecord | null> {
    return readRecord(this.db, id);
  }

  listRecords(query: RecordQuery): Promise<Page<SupplyChainRecord>> {
    return listRecords(this.db, query);
  }

  deleteRecord(id: string): Promise<boolean> {
    return this.change(async (trx) => {
      const deleted = (await deleteRecords(trx, [id])) > 0;
      return { result: deleted, changed: deleted };
    });
  }

  deleteRecordsFromManifest(repository: string, manifest: string): Promise<number> {
    return this.change(async (trx) => {
      const rows = await trx.selectFrom('sc_records').select('id').where('repository', '=', repository).where('source_manifest', '=', manifest).execute();
      const deleted = await deleteRecords(trx, rows.map((row) => row.id));
      return { result: deleted, changed: deleted > 0 };
    });
  }

  findComponents(query: ComponentQuery): Promise<Page<ComponentMatch>> {
    return findComponents(this.db, query);
  }

  listFacts(subject: string): Promise<(AttestationFactsRow & { recordId: string })[]> {
    return listFacts(this.db, subject);
  }

  findLacking(query: LackingQuery): Promise<Page<ArtifactRef>> {
    return findLacking(this.db, query);
  }

  // ------------------------------------------------------------ keys

  createKey(key: KeyRecord): Promise<boolean> {
    return this.change(async (trx) => {
      const inserted = await trx
        .insertInto('sc_keys')
        .values({
          id: key.id,
          name: key.name,
          version: key.version,
          kind: key.kind,
          algorithm: key.algorithm,
          public_pem: key.publicPem,
          fingerprint: key.fingerprint,
          provider_ref: key.providerRef ?? null,
          created_by: key.createdBy,
          created_at: key.createdAt.getTime(),
          expires_at: key.expiresAt?.getTime() ?? null,
          retired_at: key.retiredAt?.getTime() ?? null,
          revoked_at: key.revokedAt?.getTime() ?? null,
        })
        // The id, or (name, version) with another id: either way the key exists.
        .onConflict((conflict) => conflict.doNothing())
        .executeTakeFirst();
      const created = inserted.numInsertedOrUpdatedRows === 1n;
      if (created) await auditChange(trx, 'supplychain:CreateKey', `supplychain:keys/${key.id}`, { kind: key.kind, algorithm: key.algorithm, fingerprint: key.fingerprint });
      return { result: created, changed: created };
    });
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const row = await this.db.selectFrom('sc_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toKey(row) : null;
  }

  async listKeys(name?: string): Promise<KeyRecord[]> {
    let select = this.db.selectFrom('sc_keys').selectAll();
    if (name !== undefined) select = select.where('name', '=', name);
    return (await select.orderBy('name').orderBy('version').execute()).map(toKey);
  }

  /** Fields absent or undefined in `patch` stay; an existing key counts as changed even by an empty patch. */
  updateKey(id: string, patch: Partial<Pick<KeyRecord, 'retiredAt' | 'revokedAt' | 'expiresAt'>>): Promise<KeyRecord | null> {
    return this.change(async (trx) => {
      const set: Partial<Pick<ScKeysTable, 'retired_at' | 'revoked_at' | 'expires_at'>> = {};
      if (patch.retiredAt !== undefined) set.retired_at = patch.retiredAt.getTime();
      if (patch.revokedAt !== undefined) set.revoked_at = patch.revokedAt.getTime();
      if (patch.expiresAt !== undefined) set.expires_at = patch.expiresAt.getTime();
      if (Object.keys(set).length > 0) await trx.updateTable('sc_keys').set(set).where('id', '=', id).execute();
      const row = await trx.selectFrom('sc_keys').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) return { result: null, changed: false };
      const detail = Object.fromEntries(Object.entries(patch).flatMap(([field, at]) => (at instanceof Date ? [[field, at.toISOString()]] : [])));
      await auditChange(trx, 'supplychain:UpdateKey', `supplychain:keys/${id}`, detail);
      return { result: toKey(row), changed: true };
    });
  }

  // ------------------------------------------------------------ trust policies

  /** On update the stored createdAt stays; document and updatedAt are replaced. */
  putTrustPolicy(policy: TrustPolicyRecord): Promise<'created' | 'updated'> {
    return this.change(async (trx) => {
      // Insert-or-nothing, then update: tells created from updated without a racy read first.
      const inserted = await trx
        .insertInto('sc_trust_policies')
        .values({ name: policy.name, document: policy.document, created_at: policy.createdAt.getTime(), updated_at: policy.updatedAt.getTime() })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      const outcome = inserted.numInsertedOrUpdatedRows === 1n ? ('created' as const) : ('updated' as const);
      if (outcome === 'updated') {
        await trx.updateTable('sc_trust_policies').set({ document: policy.document, updated_at: policy.updatedAt.getTime() }).where('name', '=', policy.name).execute();
      }
      await auditChange(trx, 'supplychain:PutTrustPolicy', `supplychain:policies/${policy.name}`, { outcome });
      return { result: outcome, changed: true };
    });
  }

  async getTrustPolicy(name: string): Promise<TrustPolicyRecord | null> {
    const row = await this.db.selectFrom('sc_trust_policies').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toTrustPolicy(row) : null;
  }

  async listTrustPolicies(): Promise<TrustPolicyRecord[]> {
    return (await this.db.selectFrom('sc_trust_policies').selectAll().orderBy('name').execute()).map(toTrustPolicy);
  }

  deleteTrustPolicy(name: string): Promise<boolean> {
    return this.change(async (trx) => {
      const result = await trx.deleteFrom('sc_trust_policies').where('name', '=', name).executeTakeFirst();
      const deleted = result.numDeletedRows > 0n;
      if (deleted) await auditChange(trx, 'supplychain:DeleteTrustPolicy', `supplychain:policies/${name}`);
      return { result: deleted, changed: deleted };
    });
  }

  // ------------------------------------------------------------ verification results

  /** Replaces the stored result for (subject, policy). */
  async putVerification(result: VerificationRecord): Promise<void> {
    const row = {
      subject: result.subject,
      policy: result.policy,
      status: result.status,
      reason: result.reason,
      verified_by: result.verifiedBy ?? null,
      evaluated_at: result.evaluatedAt.getTime(),
      generation: result.generation,
    };
    await inWriteTransaction(this.db, (trx) =>
      trx
        .insertInto('sc_verifications')
        .values(row)
        .onConflict((conflict) =>
          conflict.columns(['subject', 'policy']).doUpdateSet({ status: row.status, reason: row.reason, verified_by: row.verified_by, evaluated_at: row.evaluated_at, generation: row.generation }),
        )
        .execute(),
    );
  }

  async getVerification(subject: string, policy: string): Promise<VerificationRecord | null> {
    const row = await this.db.selectFrom('sc_verifications').selectAll().where('subject', '=', subject).where('policy', '=', policy).executeTakeFirst();
    return row ? toVerification(row) : null;
  }

  async listVerifications(subject: string): Promise<VerificationRecord[]> {
    const rows = await this.db.selectFrom('sc_verifications').selectAll().where('subject', '=', subject).orderBy('evaluated_at', 'desc').orderBy('policy').execute();
    return rows.map(toVerification);
  }

  // ------------------------------------------------------------ generation

  async generation(): Promise<number> {
    const row = await this.db.selectFrom('sc_state').select('generation').where('id', '=', 1).executeTakeFirstOrThrow();
    return Number(row.generation);
  }

  /**
   * Runs `work` in one write transaction and, when it reports a change, bumps the generation in the
   * same transaction (the UPDATE increments the row it holds locked, so concurrent changes each add one).
   * `work` writes its own audit entries, on the paths that change something.
   */
  private change<T>(work: (trx: Transaction<Database>) => Promise<{ result: T; changed: boolean }>): Promise<T> {
    return inWriteTransaction(this.db, async (trx) => {
      const outcome = await work(trx);
      if (outcome.changed) {
        await trx
          .updateTable('sc_state')
          .set((eb) => ({ generation: eb('generation', '+', 1) }))
          .where('id', '=', 1)
          .execute();
      }
      return outcome.result;
    });
  }
}

function toKey(row: Selectable<ScKeysTable>): KeyRecord {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    kind: row.kind,
    algorithm: row.algorithm,
    publicPem: row.public_pem,
    fingerprint: row.fingerprint,
    ...(row.provider_ref !== null && { providerRef: row.provider_ref }),
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
    ...(row.expires_at !== null && { expiresAt: new Date(row.expires_at) }),
    ...(row.retired_at !== null && { retiredAt: new Date(row.retired_at) }),
    ...(row.revoked_at !== null && { revokedAt: new Date(row.revoked_at) }),
  };
}

function toTrustPolicy(row: Selectable<ScTrustPoliciesTable>): TrustPolicyRecord {
  return { name: row.name, document: row.document, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
}

function toVerification(row: Selectable<ScVerificationsTable>): VerificationRecord {
  return {
    subject: row.subject,
    policy: row.policy,
    status: row.status,
    reason: row.reason,
    ...(row.verified_by !== null && { verifiedBy: row.verified_by }),
    evaluatedAt: new Date(row.evaluated_at),
    generation: Number(row.generation),
  };
}
