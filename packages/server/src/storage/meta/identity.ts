import type { Kysely, Selectable, Transaction } from 'kysely';
import { AstoreError } from '../../core/errors.ts';
import { insertAudit } from './audit.ts';
import { type AccessKeysTable, type Database, type GroupsTable, type PoliciesTable, type UsersTable, inReadTransaction, inWriteTransaction } from './db.ts';
import type { AccessKeyRecord, AuditEntry, GroupRecord, IdentityMeta, Page, PolicyRecord, UserRecord } from './types.ts';

/** What updateUser changes: the fields given; one that is absent or undefined stays as it is. */
type UserPatch = Parameters<IdentityMeta['updateUser']>[1];

/**
 * Users, groups, access keys and policies. Every change runs in one write transaction that also bumps
 * the identity generation and writes the caller's audit entry, and it does both only when it changes
 * something: a call that returns false or null, or throws, leaves the generation and the log as they
 * were. (addMember, revokeAccessKey and putPolicy count as changes even when they repeat the state
 * already stored: they report success, so their entry is written.)
 */
export class KyselyIdentityMeta implements IdentityMeta {
  constructor(private readonly db: Kysely<Database>) {}

  // ------------------------------------------------------------ users

  createUser(user: Omit<UserRecord, 'groups'>, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const result = await trx
        .insertInto('users')
        .values({
          name: user.name,
          password_hash: user.passwordHash ?? null,
          display_name: user.displayName ?? null,
          email: user.email ?? null,
          disabled: user.disabled ? 1 : 0,
          created_at: user.createdAt.getTime(),
        })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      return changed(result.numInsertedOrUpdatedRows === 1n);
    });
  }

  getUser(name: string): Promise<UserRecord | null> {
    return inReadTransaction(this.db, (trx) => readUser(trx, name));
  }

  listUsers(after: string | undefined, limit: number): Promise<Page<UserRecord>> {
    return inReadTransaction(this.db, async (trx) => {
      if (limit <= 0) return { items: [] };
      let select = trx.selectFrom('users').selectAll().orderBy('name').limit(limit + 1);
      if (after !== undefined) select = select.where('name', '>', after);
      const rows = await select.execute();
      const page = rows.slice(0, limit);
      const groups = new Map(page.map((row) => [row.name, [] as string[]]));
      if (page.length > 0) {
        const memberships = await trx
          .selectFrom('group_members')
          .select(['user_name', 'group_name'])
          .where('user_name', 'in', [...groups.keys()])
          .orderBy('user_name')
          .orderBy('group_name')
          .execute();
        for (const membership of memberships) groups.get(membership.user_name)?.push(membership.group_name);
      }
      return toPage(page.map((row) => toUser(row, groups.get(row.name) ?? [])), rows.length > limit);
    });
  }

  updateUser(name: string, patch: UserPatch, audit?: AuditEntry): Promise<UserRecord | null> {
    return this.change(audit, async (trx) => {
      const set: Partial<Omit<UsersTable, 'name' | 'created_at'>> = {};
      if (patch.passwordHash !== undefined) set.password_hash = patch.passwordHash;
      if (patch.displayName !== undefined) set.display_name = patch.displayName;
      if (patch.email !== undefined) set.email = patch.email;
      if (patch.disabled !== undefined) set.disabled = patch.disabled ? 1 : 0;
      if (Object.keys(set).length > 0) await trx.updateTable('users').set(set).where('name', '=', name).execute();
      const user = await readUser(trx, name);
      return user ? changed(user, true) : changed(null, false);
    });
  }

  deleteUser(name: string, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      await trx.deleteFrom('access_keys').where('user_name', '=', name).execute();
      await trx.deleteFrom('group_members').where('user_name', '=', name).execute();
      const result = await trx.deleteFrom('users').where('name', '=', name).executeTakeFirst();
      return changed(result.numDeletedRows > 0n);
    });
  }

  // ------------------------------------------------------------ groups

  createGroup(group: Omit<GroupRecord, 'members'>, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const result = await trx
        .insertInto('groups')
        .values({ name: group.name, description: group.description ?? null, created_at: group.createdAt.getTime() })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      return changed(result.numInsertedOrUpdatedRows === 1n);
    });
  }

  getGroup(name: string): Promise<GroupRecord | null> {
    return inReadTransaction(this.db, async (trx) => {
      const row = await trx.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) return null;
      const members = await trx.selectFrom('group_members').select('user_name').where('group_name', '=', name).orderBy('user_name').execute();
      return toGroup(row, members.map((member) => member.user_name));
    });
  }

  listGroups(after: string | undefined, limit: number): Promise<Page<GroupRecord>> {
    return inReadTransaction(this.db, async (trx) => {
      if (limit <= 0) return { items: [] };
      let select = trx.selectFrom('groups').selectAll().orderBy('name').limit(limit + 1);
      if (after !== undefined) select = select.where('name', '>', after);
      const rows = await select.execute();
      const page = rows.slice(0, limit);
      const members = new Map(page.map((row) => [row.name, [] as string[]]));
      if (page.length > 0) {
        const memberships = await trx
          .selectFrom('group_members')
          .select(['group_name', 'user_name'])
          .where('group_name', 'in', [...members.keys()])
          .orderBy('group_name')
          .orderBy('user_name')
          .execute();
        for (const membership of memberships) members.get(membership.group_name)?.push(membership.user_name);
      }
      return toPage(page.map((row) => toGroup(row, members.get(row.name) ?? [])), rows.length > limit);
    });
  }

  deleteGroup(name: string, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      await trx.deleteFrom('group_members').where('group_name', '=', name).execute();
      const result = await trx.deleteFrom('groups').where('name', '=', name).executeTakeFirst();
      return changed(result.numDeletedRows > 0n);
    });
  }

  addMember(group: string, user: string, audit?: AuditEntry): Promise<void> {
    return this.change(audit, async (trx) => {
      // Key-share locked, as the membership's foreign keys would: a concurrent delete waits, or wins first.
      const foundGroup = await trx.selectFrom('groups').select('name').where('name', '=', group).forKeyShare().executeTakeFirst();
      if (!foundGroup) throw new AstoreError('NoSuchEntity', `group ${group} does not exist`, { group });
      const foundUser = await trx.selectFrom('users').select('name').where('name', '=', user).forKeyShare().executeTakeFirst();
      if (!foundUser) throw new AstoreError('NoSuchEntity', `user ${user} does not exist`, { user });
      await trx
        .insertInto('group_members')
        .values({ group_name: group, user_name: user })
        .onConflict((conflict) => conflict.columns(['group_name', 'user_name']).doNothing())
        .execute();
      return changed(undefined, true);
    });
  }

  removeMember(group: string, user: string, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const result = await trx.deleteFrom('group_members').where('group_name', '=', group).where('user_name', '=', user).executeTakeFirst();
      return changed(result.numDeletedRows > 0n);
    });
  }

  // ------------------------------------------------------------ access keys

  /** Also throws AstoreError('EntityAlreadyExists') when the access key id is taken. */
  createAccessKey(key: AccessKeyRecord, audit?: AuditEntry): Promise<void> {
    return this.change(audit, async (trx) => {
      const user = await trx.selectFrom('users').select('name').where('name', '=', key.user).forKeyShare().executeTakeFirst();
      if (!user) throw new AstoreError('NoSuchEntity', `user ${key.user} does not exist`, { user: key.user });
      const result = await trx
        .insertInto('access_keys')
        .values({
          access_key_id: key.accessKeyId,
          user_name: key.user,
          secret_ciphertext: key.secretCiphertext,
          description: key.description ?? null,
          created_at: key.createdAt.getTime(),
          expires_at: key.expiresAt?.getTime() ?? null,
          revoked_at: key.revokedAt?.getTime() ?? null,
        })
        .onConflict((conflict) => conflict.column('access_key_id').doNothing())
        .executeTakeFirst();
      if (result.numInsertedOrUpdatedRows !== 1n) {
        throw new AstoreError('EntityAlreadyExists', `access key ${key.accessKeyId} already exists`, { accessKeyId: key.accessKeyId });
      }
      return changed(undefined, true);
    });
  }

  async getAccessKey(accessKeyId: string): Promise<AccessKeyRecord | null> {
    const row = await this.db.selectFrom('access_keys').selectAll().where('access_key_id', '=', accessKeyId).executeTakeFirst();
    return row ? toAccessKey(row) : null;
  }

  async listAccessKeys(user?: string): Promise<AccessKeyRecord[]> {
    let select = this.db.selectFrom('access_keys').selectAll();
    if (user !== undefined) select = select.where('user_name', '=', user);
    const rows = await select.orderBy('created_at').orderBy('access_key_id').execute();
    return rows.map(toAccessKey);
  }

  /**
   * A key revoked before keeps its first revocation time; true all the same. The UPDATE re-checks
   * that the key is unrevoked on the row it locks, so of two concurrent revocations the first one's time stays.
   */
  revokeAccessKey(accessKeyId: string, at: Date, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const key = await trx.selectFrom('access_keys').select('revoked_at').where('access_key_id', '=', accessKeyId).executeTakeFirst();
      if (!key) return changed(false);
      if (key.revoked_at === null) {
        await trx.updateTable('access_keys').set({ revoked_at: at.getTime() }).where('access_key_id', '=', accessKeyId).where('revoked_at', 'is', null).execute();
      }
      return changed(true);
    });
  }

  deleteAccessKey(accessKeyId: string, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const result = await trx.deleteFrom('access_keys').where('access_key_id', '=', accessKeyId).executeTakeFirst();
      return changed(result.numDeletedRows > 0n);
    });
  }

  // ------------------------------------------------------------ policies

  /** On update the stored createdAt stays; document and updatedAt are replaced. */
  putPolicy(policy: PolicyRecord, audit?: AuditEntry): Promise<'created' | 'updated'> {
    return this.change(audit, async (trx) => {
      // Insert-or-nothing, then update: tells created from updated without a racy read first.
      const inserted = await trx
        .insertInto('policies')
        .values({ name: policy.name, document: policy.document, created_at: policy.createdAt.getTime(), updated_at: policy.updatedAt.getTime() })
        .onConflict((conflict) => conflict.column('name').doNothing())
        .executeTakeFirst();
      if (inserted.numInsertedOrUpdatedRows === 1n) return changed('created' as const, true);
      await trx.updateTable('policies').set({ document: policy.document, updated_at: policy.updatedAt.getTime() }).where('name', '=', policy.name).execute();
      return changed('updated' as const, true);
    });
  }

  async getPolicy(name: string): Promise<PolicyRecord | null> {
    const row = await this.db.selectFrom('policies').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toPolicy(row) : null;
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    const rows = await this.db.selectFrom('policies').selectAll().orderBy('name').execute();
    return rows.map(toPolicy);
  }

  deletePolicy(name: string, audit?: AuditEntry): Promise<boolean> {
    return this.change(audit, async (trx) => {
      const result = await trx.deleteFrom('policies').where('name', '=', name).executeTakeFirst();
      return changed(result.numDeletedRows > 0n);
    });
  }

  // ------------------------------------------------------------ generation

  async generation(): Promise<number> {
    const row = await this.db.selectFrom('identity_state').select('generation').where('id', '=', 1).executeTakeFirstOrThrow();
    return Number(row.generation);
  }

  /**
   * Runs `work` in one write transaction; when it reports a change, bumps the generation and writes
   * `audit` in the same transaction. Concurrent changes each add one: the UPDATE increments the row
   * it holds locked, never a value read earlier.
   */
  private async change<T>(audit: AuditEntry | undefined, work: (trx: Transaction<Database>) => Promise<Outcome<T>>): Promise<T> {
    return inWriteTransaction(this.db, async (trx) => {
      const outcome = await work(trx);
      if (outcome.changed) {
        await trx
          .updateTable('identity_state')
          .set((eb) => ({ generation: eb('generation', '+', 1) }))
          .where('id', '=', 1)
          .execute();
        if (audit) await insertAudit(trx, [audit]);
      }
      return outcome.result;
    });
  }
}

interface Outcome<T> {
  result: T;
  changed: boolean;
}

/** A boolean result is its own verdict; other results say whether they changed something. */
function changed(result: boolean): Outcome<boolean>;
function changed<T>(result: T, didChange: boolean): Outcome<T>;
function changed<T>(result: T, didChange?: boolean): Outcome<T> {
  return { result, changed: didChange ?? result === true };
}

async function readUser(trx: Transaction<Database>, name: string): Promise<UserRecord | null> {
  const row = await trx.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) return null;
  const groups = await trx.selectFrom('group_members').select('group_name').where('user_name', '=', name).orderBy('group_name').execute();
  return toUser(row, groups.map((group) => group.group_name));
}

function toPage<T extends { name: string }>(items: T[], more: boolean): Page<T> {
  const last = items.at(-1);
  return more && last ? { items, next: last.name } : { items };
}

function toUser(row: Selectable<UsersTable>, groups: string[]): UserRecord {
  return {
    name: row.name,
    ...(row.password_hash !== null && { passwordHash: row.password_hash }),
    ...(row.display_name !== null && { displayName: row.display_name }),
    ...(row.email !== null && { email: row.email }),
    disabled: row.disabled !== 0,
    createdAt: new Date(row.created_at),
    groups,
  };
}

function toGroup(row: Selectable<GroupsTable>, members: string[]): GroupRecord {
  return {
    name: row.name,
    ...(row.description !== null && { description: row.description }),
    createdAt: new Date(row.created_at),
    members,
  };
}

function toAccessKey(row: Selectable<AccessKeysTable>): AccessKeyRecord {
  return {
    accessKeyId: row.access_key_id,
    user: row.user_name,
    secretCiphertext: row.secret_ciphertext,
    ...(row.description !== null && { description: row.description }),
    createdAt: new Date(row.created_at),
    ...(row.expires_at !== null && { expiresAt: new Date(row.expires_at) }),
    ...(row.revoked_at !== null && { revokedAt: new Date(row.revoked_at) }),
  };
}

function toPolicy(row: Selectable<PoliciesTable>): PolicyRecord {
  return { name: row.name, document: row.document, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
}
