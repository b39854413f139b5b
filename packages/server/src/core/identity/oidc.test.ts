import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import { isAstoreError } from '../errors.ts';
import { OidcVerifier, looksLikeJwt } from './oidc.ts';

/**
 * The verifier against a local issuer (a JWKS served over loopback, tokens signed here); the real
 * Keycloak is exercised end to end in test/identity/oidc.e2e.test.ts.
 */
type Key = { kid: string; privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; jwk: JWK };
let http: Server;
let issuer: string;
let keys: Key[] = [];
let jwksFetches = 0;

async function newKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function sign(key: Key, claims: Record<string, unknown>, options: { exp?: number; iss?: string; aud?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(options.iss ?? issuer)
    .setAudience(options.aud ?? 'astore')
    .setIssuedAt(now)
    .setExpirationTime(options.exp ?? now + 300)
    .setSubject('subject-1')
    .sign(key.privateKey);
}

before(async () => {
  keys = [await newKey('k1')];
  http = createServer((req, res) => {
    if (req.url?.endsWith('/.well-known/openid-configuration')) {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/certs` }));
    } else if (req.url?.endsWith('/certs')) {
      jwksFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  issuer = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/realms/test`;
});

after(() => new Promise<void>((resolve) => http.close(() => resolve())));

const verifier = () =>
  new OidcVerifier({
    issuer,
    audience: ['astore'],
    usernameClaim: 'preferred_username',
    usernamePrefix: 'kc:',
    groupsClaim: 'groups',
    rolesClaim: 'realm_access.roles',
    clockToleranceSeconds: 0,
  });

test('a valid token maps to a principal with the configured claims', async () => {
  const token = await sign(keys[0]!, { preferred_username: 'alice', groups: ['/devs', 'ops'], realm_access: { roles: ['astore-dev'] } });
  const identity = await verifier().verify(token);
  assert.deepEqual(identity.principal, { kind: 'user', name: 'kc:alice', groups: ['devs', 'ops'], roles: ['astore-dev'] });
  assert.equal(identity.subject, 'subject-1');
  assert.ok(looksLikeJwt(token));
  assert.ok(!looksLikeJwt('an ordinary password'));
});

test('expired, wrong issuer, wrong audience, tampered and unknown-key tokens are refused', async () => {
  const v = verifier();
  const code = async (token: string) => v.verify(token).then(() => 'accepted', (err: unknown) => (isAstoreError(err) ? err.code : String(err)));
  const now = Math.floor(Date.now() / 1000);
  assert.equal(await code(await sign(keys[0]!, { preferred_username: 'a' }, { exp: now - 5 })), 'ExpiredToken');
  assert.equal(await code(await sign(keys[0]!, { preferred_username: 'a' }, { iss: 'https://elsewhere.example' })), 'Unauthorized');
  assert.equal(await code(await sign(keys[0]!, { preferred_username: 'a' }, { aud: 'other' })), 'Unauthorized');
  const good = await sign(keys[0]!, { preferred_username: 'a' });
  assert.equal(await code(`${good.slice(0, -6)}AAAAAA`), 'Unauthorized');
  const stranger = await newKey('not-published');
  assert.equal(await code(await sign(stranger, { preferred_username: 'a' })), 'Unauthorized');
});

test('after the issuer rotates its signing key, tokens with the new key are accepted (refetch on unknown kid)', async () => {
  const v = verifier();
  await v.verify(await sign(keys[0]!, { preferred_username: 'a' }));
  const fetchesBefore = jwksFetches;
  const rotated = await newKey('k2');
  keys = [rotated];
  await new Promise((r) => setTimeout(r, 5100)); // the refetch cooldown
  const identity = await v.verify(await sign(rotated, { preferred_username: 'b' }));
  assert.equal(identity.principal.name, 'kc:b');
  assert.ok(jwksFetches > fetchesBefore, 'the key set was fetched again');
});
