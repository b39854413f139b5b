import type { FastifyReply } from 'fastify';
import { AstoreError } from '../core/errors.ts';

/**
 * The one place REST errors are rendered: RFC 9457 problem details (`application/problem+json`) with
 * the status, title and code from the shared error table. Unknown errors become 500; their details
 * go to the log, never to the wire.
 */
export function sendProblem(reply: FastifyReply, err: unknown): FastifyReply {
  const known = err instanceof AstoreError ? err : undefined;
  const error = known ?? new AstoreError('InternalError');
  if (!known) reply.log.error({ err }, 'internal error');
  const status = error.spec.status;
  if (status === 503 || status === 429) reply.header('retry-after', '1');
  return reply
    .code(status)
    .header('content-type', 'application/problem+json')
    .send(
      Buffer.from(JSON.stringify({
        type: `urn:astore:error:${error.code}`,
        title: error.spec.title,
        status,
        detail: error.message,
        instance: reply.request.url.split('?')[0],
        code: error.code,
        requestId: String(reply.request.id),
      })),
    );
}
