import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import type { GarbageCollector } from '../core/gc.ts';
import { parseDigest } from '../core/registry/references.ts';
import type { MetaStore } from '../storage/meta/types.ts';
import { type OciAuthOptions, authenticate, challenge } from '../oci/auth.ts';
import { sendProblem } from './errors.ts';

export interface ApiOptions {
  meta: MetaStore;
  gc: GarbageCollector;
  /** The same HTTP basic credentials as the registry; bearer tokens come with the identity work. */
  auth: OciAuthOptions;
}

/** Each list in a references answer holds at most this many entries. */
const referenceLimit = 1000;

/**
 * astore's own REST API under /api/v1/ (documented in docs/openapi.yaml). Every request is
 * authenticated; errors are RFC 9457 problem details.
 */
export async function apiRoutes(app: FastifyInstance, options: ApiOptions): Promise<void> {
  const guard = async (req: FastifyRequest) => {
    const principal = await authenticate(req, options.auth);
    if (principal.kind === 'anonymous') throw new AstoreError('Unauthorized');
  };
  const wrap = (handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      await guard(req);
      return await handler(req, reply);
    } catch (err) {
      if (err instanceof AstoreError && err.code === 'Unauthorized') reply.header('www-authenticate', challenge(options.auth));
      return sendProblem(reply, err);
    }
  };

  /**
   * Where a blob is referenced, by its sha256 (the stored blob) or by a registry digest of any
   * algorithm that names it: S3 objects, multipart parts, repository layers and upload sessions.
   */
  app.get(
    '/api/v1/blobs/:digest',
    wrap(async (req, reply) => {
      const { digest } = parseDigest((req.params as { digest: string }).digest);
      let stored = digest;
      if (!digest.startsWith('sha256:')) {
        const layer = await options.meta.registry.findLayer(digest);
        if (!layer) throw new AstoreError('BlobUnknown', `no blob is known by ${digest}`);
        stored = layer.blob;
      }
      const blob = await options.meta.blobs.get(stored);
      if (!blob) throw new AstoreError('BlobUnknown', `no blob ${digest} is stored`);
      const references = await options.meta.blobs.references(stored, referenceLimit);
      return reply.send({ digest, storedAs: stored, size: blob.size, touchedAt: blob.touchedAt.toISOString(), references });
    }),
  );

  /** Runs one garbage collection pass now (or joins the one in progress) and reports what it removed. */
  app.post(
    '/api/v1/gc/runs',
    wrap(async (_req, reply) => reply.send(await options.gc.runOnce())),
  );

  app.all('/api/v1/*', wrap(async (req) => {
    throw new AstoreError('NoSuchKey', `no API endpoint ${req.method} ${req.url.split('?')[0]}`);
  }));
}
