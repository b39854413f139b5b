import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AstoreError } from '../core/errors.ts';
import type { RegistryBlobService } from '../core/registry/blobs.ts';
import type { ManifestService } from '../core/registry/manifests.ts';
import type { ManifestRecord } from '../storage/meta/types.ts';
import { validateRepositoryName } from '../core/registry/references.ts';
import { principalName } from '../core/identity/service.ts';
import { asActor } from '../core/identity/actor.ts';
import { type Caller, type OciAction, type OciAuthOptions, authenticate, authorizeCall, challenge, repositoryResource } from './auth.ts';
import * as blobs from './blobs.ts';
import { sendOciError } from './errors.ts';
import * as manifests from './manifests.ts';
import { type RegistryTokens, bearerChallenge, tokenEndpoint } from './token.ts';

export interface OciOptions {
  blobs: RegistryBlobService;
  manifests: ManifestService;
  auth: OciAuthOptions;
  /** Mount a blob the client names without `from` from any repository that has it. */
  autoMount: boolean;
  /** Token mode: issues registry tokens and answers 401 with a Bearer challenge (else a Basic one). */
  tokens?: RegistryTokens;
  /** Consulted before a manifest is served (supply-chain trust policies): throws to refuse. */
  readGate?: (call: OciCall, manifest: ManifestRecord) => Promise<{ verified: boolean } | undefined>;
  /** The token endpoint's URL in challenges; default `<scheme>://<host>/v2/token` of the request. */
  tokenRealm?: string;
  /** Requests under /v2/ that belong to another protocol (S3-signed ones) and the handler that takes them. */
  passThrough?: { when: (req: FastifyRequest) => boolean; handler: (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> };
}

/** One registry request, authenticated, with what it addresses. */
export interface OciCall {
  req: FastifyRequest;
  reply: FastifyReply;
  options: OciOptions;
  caller: Caller;
  query: URLSearchParams;
  /** The repository name (validated), absent for /v2/ and /v2/_catalog. */
  name: string;
  /** The last path segment after the endpoint (digest, tag or upload id), '' when absent. */
  ref: string;
  signal: AbortSignal;
}

type Endpoint = 'base' | 'catalog' | 'blob' | 'upload' | 'manifest' | 'tags' | 'referrers';
type Handler = (call: OciCall) => Promise<unknown>;

/** Per endpoint and method: the handler and the action it needs. */
const routes: Record<Endpoint, Partial<Record<string, [Handler, OciAction]>>> = {
  base: { GET: [async ({ reply }) => reply.type('application/json').send({}), 'pull'] },
  catalog: { GET: [manifests.catalog, 'catalog'] },
  blob: { GET: [blobs.getBlob, 'pull'], HEAD: [blobs.getBlob, 'pull'], DELETE: [blobs.deleteBlob, 'delete'] },
  upload: {
    POST: [blobs.startUpload, 'push'],
    PATCH: [blobs.patchUpload, 'push'],
    PUT: [blobs.finishUpload, 'push'],
    GET: [blobs.uploadStatus, 'push'],
    DELETE: [blobs.cancelUpload, 'push'],
  },
  manifest: { GET: [manifests.getManifest, 'pull'], HEAD: [manifests.getManifest, 'pull'], PUT: [manifests.putManifest, 'push'], DELETE: [manifests.deleteManifest, 'delete'] },
  tags: { GET: [manifests.listTags, 'pull'] },
  referrers: { GET: [manifests.referrers, 'pull'] },
};

const endpointPatterns: [Endpoint, RegExp][] = [
  ['upload', /^(.+)\/blobs\/uploads\/([^/]*)$/],
  ['blob', /^(.+)\/blobs\/([^/]+)$/],
  ['manifest', /^(.+)\/manifests\/([^/]+)$/],
  ['tags', /^(.+)\/tags\/list$/],
  ['referrers', /^(.+)\/referrers\/([^/]+)$/],
];

/** The endpoint a path below /v2/ names, with the repository name and reference. */
export function parseRegistryPath(path: string): { endpoint: Endpoint; name: string; ref: string } | undefined {
  if (path === '') return { endpoint: 'base', name: '', ref: '' };
  if (path === '_catalog') return { endpoint: 'catalog', name: '', ref: '' };
  for (const [endpoint, pattern] of endpointPatterns) {
    const m = pattern.exec(path);
    if (m) return { endpoint, name: m[1]!, ref: m[2] ?? '' };
  }
  return undefined;
}

/**
 * The OCI Distribution API v1.1 under /v2/. Every request: authenticate (HTTP basic), find the
 * endpoint, validate the repository name, authorize the action, run the handler, and render any error
 * in the distribution spec's JSON format with a challenge on 401.
 */
export async function ociRoutes(app: FastifyInstance, options: OciOptions): Promise<void> {
  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    let scope: string | undefined;
    try {
      const [rawPath = '', search = ''] = req.url.slice('/v2/'.length).split('?', 2) as [string?, string?];
      if (rawPath === 'token' && options.tokens) {
        if (req.method !== 'GET') throw new AstoreError('Unsupported', 'the token endpoint answers GET');
        return await tokenEndpoint(req, reply, options.tokens, options.auth);
      }
      const caller = await authenticate(req, options.auth);
      const target = parseRegistryPath(safeDecode(rawPath));
      if (!target) throw new AstoreError('NameUnknown', `no registry endpoint at ${req.url.split('?')[0]}`);
      const route = routes[target.endpoint][req.method];
      if (!route) throw new AstoreError('Unsupported', `${req.method} is not supported on this endpoint`);
      const [handler, action] = route;
      const name = target.name === '' ? '' : validateRepositoryName(target.name);
      scope = challengeScope(target.endpoint, action, name);
      if (target.endpoint === 'base') {
        if (caller.principal.kind === 'anonymous' && !options.auth.anonymousPulls) throw new AstoreError('Unauthorized');
      } else {
        await authorizeCall(caller, `oci:${action}`, name === '' ? 'oci:' : repositoryResource(name), req, options.auth);
      }
      const controller = new AbortController();
      req.raw.once('close', () => {
        if (!req.raw.complete) controller.abort(new AstoreError('IncompleteBody'));
      });
      const actor = {
        principal: principalName(caller.principal),
        ...(caller.accessKeyId !== undefined && { accessKeyId: caller.accessKeyId }),
        sourceIp: req.ip,
        requestId: String(req.id),
      };
      return await asActor(actor, () => handler({ req, reply, options, caller, query: new URLSearchParams(search), name, ref: target.ref, signal: controller.signal }));
    } catch (err) {
      if (!req.raw.complete) reply.header('connection', 'close'); // do not wait for an unread body
      if (err instanceof AstoreError && err.code === 'Unauthorized') {
        reply.header('www-authenticate', options.tokens ? bearerChallenge(req, options.tokenRealm, scope) : challenge(options.auth));
      }
      return sendOciError(reply, err);
    }
  };
  // `/v2/*` also matches `/v2/`. `/v2` alone stays with S3, which answers it as the reserved bucket name it is.
  const passThrough = options.passThrough;
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: passThrough ? (req, reply) => (passThrough.when(req) ? passThrough.handler(req, reply) : handle(req, reply)) : handle,
  });
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    throw new AstoreError('NameInvalid', 'malformed percent-encoding in the path');
  }
}

/** The scope a token must grant for this request, as the challenge names it. */
function challengeScope(endpoint: Endpoint, action: OciAction, name: string): string | undefined {
  if (endpoint === 'base') return undefined;
  if (endpoint === 'catalog') return 'registry:catalog:*';
  return `repository:${name}:${action === 'push' ? 'pull,push' : action}`;
}
