import type { Transaction } from 'kysely';
import { currentActor } from '../../core/identity/actor.ts';
import { insertAudit } from './audit.ts';
import type { Database } from './db.ts';

/** Records, in `trx`, that the current request's actor (core/identity/actor.ts), if any, made this change. */
export async function auditChange(trx: Transaction<Database>, action: string, resource: string, detail?: Record<string, unknown>): Promise<void> {
  const actor = currentActor();
  if (!actor) return;
  await insertAudit(trx, [{ at: new Date(), ...actor, action, resource, outcome: 'success', ...(detail !== undefined && { detail }) }]);
}
