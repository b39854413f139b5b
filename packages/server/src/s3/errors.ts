import type { FastifyReply } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import { toXml } from './xml.ts';

/**
 * The one place S3 errors are rendered: `<Error><Code/><Message/><Resource/><RequestId/>...</Error>`
 * with the status from the error table. Unknown errors become InternalError; their details go to the
 * log with the request id, never to the wire.
 */
export function sendS3Error(reply: FastifyReply, err: unknown, resource: string): FastifyReply {
  const known = err instanceof AstoreError ? err : undefined;
  const error = known ?? new AstoreError('InternalError');
  if (!known) reply.log.error({ err }, 'internal error');
  else if (error.spec.status >= 500) reply.log.warn({ err }, 'service error');
  const requestId = String(reply.request.id);
  reply.code(error.spec.status);
  if (error.code === 'InvalidRange' && error.detail.ActualObjectSize !== undefined) {
    reply.header('content-range', `bytes */${error.detail.ActualObjectSize}`);
  }
  if (error.code === 'ServiceUnavailable' || error.code === 'SlowDown') reply.header('retry-after', '1');
  // 304 and HEAD responses carry no body.
  if (error.spec.status === 304 || reply.request.method === 'HEAD') {
    reply.header('x-amz-error-code', error.spec.s3Code);
    return reply.send();
  }
  const body = toXml(
    'Error',
    { Code: error.spec.s3Code, Message: error.message, ...error.detail, Resource: resource, RequestId: requestId },
    { namespace: false },
  );
  return reply.type('application/xml').send(body);
}
