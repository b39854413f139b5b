import type { FastifyReply } from 'fastify';
import { AstoreError } from '../core/errors.ts';

/**
 * The one place registry errors are rendered: `{"errors":[{"code","message","detail"}]}` (the
 * distribution spec's format) with the status and code from the shared error table. Unknown errors
 * become 500 UNKNOWN; their details go to the log, never to the wire. HEAD responses carry no body.
 */
export function sendOciError(reply: FastifyReply, err: unknown): FastifyReply {
  const known = err instanceof AstoreError ? err : undefined;
  const error = known ?? new AstoreError('InternalError');
  if (!known) reply.log.error({ err }, 'internal error');
  else if (error.spec.status >= 500) reply.log.warn({ err }, 'service error');
  reply.code(error.spec.status);
  if (error.code === 'RangeNotSatisfiable' && typeof error.detail.size === 'number') {
    reply.header('range', `0-${Math.max(0, error.detail.size - 1)}`);
  }
  if (error.code === 'InvalidRange' && error.detail.ActualObjectSize !== undefined) {
    reply.header('content-range', `bytes */${error.detail.ActualObjectSize}`);
  }
  if (error.spec.status === 503 || error.spec.status === 429) reply.header('retry-after', '1');
  if (reply.request.method === 'HEAD') return reply.send();
  const code = 'ociCode' in error.spec && error.spec.ociCode !== undefined ? error.spec.ociCode : 'UNKNOWN';
  const detail = Object.fromEntries(Object.entries(error.detail).filter(([, v]) => v !== undefined));
  return reply
    .type('application/json')
    .send({ errors: [{ code, message: error.message, ...(Object.keys(detail).length > 0 && { detail }) }] });
}
