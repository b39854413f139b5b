import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { App } from './app.ts';
import { sendS3Error } from './s3/errors.ts';
import { type S3Options, isS3Request, s3Handler, s3Routes } from './s3/router.ts';
import { ociRoutes } from './oci/router.ts';
import { apiRoutes } from './api/router.ts';
import { isStsRequest, stsHandler } from './sts/router.ts';
import { verifyRequestSignature } from './s3/auth/index.ts';
import type { BasicAuthOptions } from './oci/auth.ts';
import { RegistryTokens } from './oci/token.ts';
import { BucketPolicyService } from './core/identity/bucket-policies.ts';
import { AstoreError } from './core/errors.ts';

/** How long a readiness probe of one backend may take before the backend counts as down. */
const probeTimeoutMs = 2000;

/** Whether `call` succeeds within probeTimeoutMs; a failure is logged as the reason for not being ready. */
async function probe(call: () => Promise<unknown>, what: string, log: FastifyBaseLogger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${probeTimeoutMs} ms`)), probeTimeoutMs);
  });
  try {
    await Promise.race([call(), timeout]);
    return true;
  } catch (err) {
    log.warn({ err }, `not ready: ${what}`);
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** S3-style request ids: 16 upper-case hex characters. */
const requestId = () => randomBytes(8).toString('hex').toUpperCase();

/**
 * The HTTP server: S3 at the root path, health probes, and (later) /v2/ and /api/v1/. Bodies are
 * never parsed by the framework: every handler streams `request.raw` itself.
 */
export async function buildServer(app: App): Promise<FastifyInstance> {
  const { config } = app;
  const server = Fastify({
    loggerInstance: app.log as FastifyBaseLogger,
    genReqId: requestId,
    // Header limits are enforced per protocol with the protocol's error; Node's own cap is a backstop.
    http: { maxHeaderSize: Math.max(64 * 1024, config.server.maxHeaderBytes * 2) },
    requestTimeout: config.server.requestTimeoutSeconds * 1000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    exposeHeadRoutes: false,
    trustProxy: config.server.trustProxy,
    // Errors the framework raises before routing (e.g. a malformed percent-encoded URL) are S3 errors too.
    frameworkErrors: (err, req, reply) => sendS3Error(reply, new AstoreError('InvalidRequest', err.message), req.url.split('?')[0] ?? '/'),
    routerOptions: { maxParamLength: 8192, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, caseSensitive: true },
  });
  server.removeAllContentTypeParsers();
  server.addContentTypeParser('*', (_req, _payload, done) => done(null));

  server.addHook('onRequest', async (req, reply) => {
    reply.header('x-amz-request-id', req.id);
    reply.header('server', 'astore');
  });

  // Probes run every few seconds: their requests are not logged unless something goes wrong.
  server.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));
  server.get('/readyz', { logLevel: 'warn' }, async (_req, reply) => {
    // Ready when the metadata store answers a query and the blob store's circuit is closed. Each probe
    // is bounded, so readiness never hangs on a backend that does not answer. The metadata probe is a
    // query (refused at once while its circuit is open, or the circuit's trial once it may close). The
    // blob store is probed only while its circuit is not closed: that call is the trial that closes it
    // when the backend is back, so an instance taken out of rotation (no traffic) still recovers.
    const [metaUp, blobsUp] = await Promise.all([
      probe(() => app.meta.buckets.get('readiness-probe'), 'metadata store', reply.log),
      app.blobs.state === 'up' ? true : probe(() => app.blobs.stat('readiness-probe'), 'blob store', reply.log),
    ]);
    const state = { meta: metaUp ? 'up' : 'down', blobs: blobsUp ? app.blobs.state : 'down' };
    if (!metaUp || state.blobs === 'down') return reply.code(503).send({ status: 'unavailable', ...state });
    return { status: 'ready', ...state };
  });

  // Whatever the routes do not answer is answered as S3 does, at the root path.
  server.setNotFoundHandler((req, reply) => sendS3Error(reply, new AstoreError('MethodNotAllowed'), req.url.split('?')[0] ?? '/'));
  server.setErrorHandler((err, req, reply) => {
    const known = (err as { statusCode?: number }).statusCode;
    const error = known !== undefined && known >= 400 && known < 500 ? new AstoreError('InvalidRequest', (err as Error).message) : err;
    return sendS3Error(reply, error, req.url.split('?')[0] ?? '/');
  });

  const { identity } = app;
  const tokens = config.oci.tokenAuth ? new RegistryTokens(app.serverKey, config.oci.tokenTtlSeconds) : undefined;
  const basicAuth: BasicAuthOptions = {
    verifyBasic: (username, password) => identity.verifyBasic(username, password),
    verifyBearer: (token) => (tokens && RegistryTokens.isRegistryToken(token) ? tokens.verify(token) : identity.verifyBearer(token)),
    authorize: (caller, action, resource, req) =>
      identity.authorize(
        { principal: caller.principal, action, resource, context: { sourceIp: req.ip, time: new Date() } },
        { requestId: String(req.id), ...(caller.accessKeyId !== undefined && { accessKeyId: caller.accessKeyId }) },
      ),
    realm: 'astore',
  };
  const s3Options: S3Options = {
    services: {
      buckets: app.buckets,
      objects: app.objects,
      multipart: app.multipart,
      bucketPolicies: new BucketPolicyService(app.meta, identity),
      region: config.s3.region,
      owner: { id: 'astore-root', displayName: 'root' },
      listFilter: (call, objects) =>
        app.supplyChain.filterListing(call.bucket, objects, (key) => call.allowed({ action: 'supplychain:attach', resource: `s3:${call.bucket}/${key}` })),
      readGate: (call, object) =>
        app.supplyChain.gateObject(call.bucket, call.key, object, () => call.allowed({ action: 'supplychain:attach', resource: `s3:${call.bucket}/${call.key}` })),
    },
    lookup: async (accessKeyId, sessionToken) => {
      const key = await identity.resolveKey(accessKeyId, sessionToken);
      return key ? { accessKeyId, secretKey: key.secret, principal: key.principal.name, subject: key.principal } : null;
    },
    authorize: async ({ principal, permission, sourceIp }, audit) =>
      (await identity.authorize({ principal, action: permission.action, resource: permission.resource, context: { sourceIp, time: new Date() } }, audit)).allowed,
    region: config.s3.region,
    domain: config.s3.domain,
    maxClockSkewSeconds: config.s3.maxClockSkewSeconds,
    maxHeaderBytes: config.server.maxHeaderBytes,
  };
  const lookup = s3Options.lookup;
  s3Options.sts = {
    when: isStsRequest,
    handler: stsHandler({
      identity,
      meta: app.meta,
      defaultDurationSeconds: config.auth.sts.defaultDurationSeconds,
      maxDurationSeconds: config.auth.sts.maxDurationSeconds,
      verifySigned: (req, bodySha256) =>
        verifyRequestSignature(
          { method: req.method, url: req.url, rawHeaders: req.raw.rawHeaders },
          { lookup, region: config.s3.region, now: new Date(), maxSkewSeconds: config.s3.maxClockSkewSeconds, service: 'sts', bodySha256 },
        ),
      authorize: async (principal, action, resource, req, accessKeyId) =>
        (
          await identity.authorize(
            { principal, action, resource, context: { sourceIp: req.ip, time: new Date() } },
            { requestId: String(req.id), ...(accessKeyId !== undefined && { accessKeyId }) },
          )
        ).allowed,
    }),
  };
  // The registry's and the API's routes are more specific than S3's `/*`: the router prefers them.
  await server.register(ociRoutes, {
    blobs: app.registryBlobs,
    manifests: app.manifests,
    autoMount: config.oci.autoMount,
    auth: { ...basicAuth, anonymousPulls: config.oci.anonymousPullRepositories.length > 0 },
    tokens,
    tokenRealm: config.oci.tokenRealm,
    readGate: (call, manifest) =>
      app.supplyChain.gateManifest(call.name, manifest, call.ref, async () => (await basicAuth.authorize(call.caller, 'supplychain:attach', `oci:${call.name}`, call.req)).allowed),
    passThrough: { when: isS3Request, handler: s3Handler(s3Options) },
  });
  await server.register(apiRoutes, { meta: app.meta, gc: app.gc, identity, box: app.secrets, auth: basicAuth, supplyChain: app.supplyChain });
  await server.register(s3Routes, s3Options);
  return server;
}
