import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AstoreError } from '../core/errors.ts';
import { readSmallBody } from '../core/small-body.ts';
import type { AuditEntry } from '../storage/meta/types.ts';
import { principalName } from '../core/identity/service.ts';
import type { Caller } from '../oci/auth.ts';

/** One REST request, authenticated and authorized for its action. */
export interface ApiCall {
  req: FastifyRequest;
  reply: FastifyReply;
  caller: Caller;
  params: Record<string, string>;
  query: URLSearchParams;
}

/** Reads and validates a JSON body (at most `maxBytes`); InvalidArgument naming the first problem. */
export async function readJson<T>(req: FastifyRequest, schema: z.ZodType<T>, maxBytes = 1024 * 1024): Promise<T> {
  const body = await readSmallBody(req.raw, maxBytes, () => new AstoreError('InvalidArgument', `the request body exceeds ${maxBytes} bytes`));
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8') || 'null');
  } catch (err) {
    throw new AstoreError('InvalidArgument', `the request body is not JSON: ${(err as Error).message}`);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new AstoreError('InvalidArgument', `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`);
  }
  return result.data;
}

/** The audit entry of a change the caller makes, written by the store in the change's transaction. */
export function changeEntry(call: ApiCall, action: string, resource: string, detail?: Record<string, unknown>): AuditEntry {
  return {
    at: new Date(),
    principal: principalName(call.caller.principal),
    ...(call.caller.accessKeyId !== undefined && { accessKeyId: call.caller.accessKeyId }),
    action,
    resource,
    outcome: 'success',
    sourceIp: call.req.ip,
    requestId: String(call.req.id),
    ...(detail !== undefined && { detail }),
  };
}

export function sendJson(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(Buffer.from(JSON.stringify(body)));
}

export function intQuery(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new AstoreError('InvalidArgument', `${name} must be a non-negative integer`);
  return Math.min(Number(raw), max);
}
