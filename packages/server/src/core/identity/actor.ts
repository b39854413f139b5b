import { AsyncLocalStorage } from 'node:async_hooks';

/** Who is making the changes of the current request, as the audit log names them. */
export interface AuditActor {
  principal: string;
  accessKeyId?: string;
  sourceIp?: string;
  requestId?: string;
}

const actors = new AsyncLocalStorage<AuditActor>();

/**
 * Runs `work` (a request's handling) with `actor` as the author of every change it makes: the
 * MetaStore's methods that change objects, buckets, manifests, tags and blob links write an audit entry
 * naming the actor in the same transaction as the change, so the log holds exactly the changes that
 * committed. Changes made outside such a context (garbage collection, bootstrap) name no actor and are
 * not recorded this way.
 */
export function asActor<T>(actor: AuditActor, work: () => Promise<T>): Promise<T> {
  return actors.run(actor, work);
}

export function currentActor(): AuditActor | undefined {
  return actors.getStore();
}
