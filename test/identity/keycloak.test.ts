import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startKeycloak, type KeycloakServer } from '../helpers/keycloak.ts';

/**
 * The Keycloak the identity tests run against, checked on its own (no astore code): the imported realm
 * issues the tokens those tests rely on (issuer, audience astore, groups and flat roles claims), for the
 * password and the client-credentials grants, and the helper's key rotation and token lifespan work.
 * Tokens are only decoded here, not verified: astore's tests do the verifying.
 */
let keycloak: KeycloakServer;

before(async () => {
  keycloak = await startKeycloak();
});

after(async () => {
  await keycloak?.stop();
});

interface Claims {
  iss: string;
  aud: string | string[];
  azp: string;
  sub: string;
  exp: number;
  iat: number;
  preferred_username?: string;
  email?: string;
  groups?: string[];
  roles?: string[];
  realm_access?: { roles: string[] };
}

function decode(token: string): { header: { kid: string; alg: string }; claims: Claims } {
  const [header, payload] = token.split('.');
  const json = (part: string | undefined) => JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8'));
  return { header: json(header), claims: json(payload) };
}

const audiences = (claims: Claims) => (Array.isArray(claims.aud) ? claims.aud : [claims.aud]);

async function jwksKids(): Promise<string[]> {
  const res = await fetch(keycloak.jwksUri);
  assert.equal(res.status, 200);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}

describe('tokens from the astore realm', () => {
  test('discovery names the issuer, the JWKS and the token endpoint the helper reports', async () => {
    const res = await fetch(`${keycloak.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const discovery = (await res.json()) as { issuer: string; jwks_uri: string; token_endpoint: string };
    assert.equal(discovery.issuer, keycloak.issuer);
    assert.equal(discovery.jwks_uri, keycloak.jwksUri);
    assert.equal(discovery.token_endpoint, keycloak.tokenEndpoint);
  });

  test('alice (password grant, astore-cli): issuer, aud astore, group devs, role astore-dev', async () => {
    const { header, claims } = decode(await keycloak.passwordToken('alice', 'alice-password-1'));
    assert.equal(header.alg, 'RS256');
    assert.equal(claims.iss, keycloak.issuer);
    assert.ok(audiences(claims).includes('astore'), `aud ${JSON.stringify(claims.aud)}`);
    assert.equal(claims.azp, 'astore-cli');
    assert.equal(claims.preferred_username, 'alice');
    assert.equal(claims.email, 'alice@example.test');
    assert.ok(claims.sub);
    assert.deepEqual(claims.groups, ['devs'], 'group names without the leading slash');
    assert.ok(claims.roles?.includes('astore-dev'), `roles ${JSON.stringify(claims.roles)}`);
    assert.ok(!claims.roles?.includes('astore-admin'));
    assert.ok(claims.realm_access?.roles.includes('astore-dev'), 'realm roles also in realm_access.roles');
    assert.equal(claims.exp - claims.iat, 300);
  });

  test('bob: group ops, role astore-admin', async () => {
    const { claims } = decode(await keycloak.passwordToken('bob', 'bob-password-1'));
    assert.deepEqual(claims.groups, ['ops']);
    assert.ok(claims.roles?.includes('astore-admin'));
    assert.ok(!claims.roles?.includes('astore-dev'));
  });

  test('a wrong password is refused', async () => {
    await assert.rejects(keycloak.passwordToken('alice', 'not-her-password'), /401.*invalid_grant/);
  });

  test('astore-ci (client credentials): aud astore, its service account has role astore-dev', async () => {
    const { claims } = decode(await keycloak.clientCredentialsToken());
    assert.equal(claims.iss, keycloak.issuer);
    assert.ok(audiences(claims).includes('astore'), `aud ${JSON.stringify(claims.aud)}`);
    assert.equal(claims.azp, 'astore-ci');
    assert.equal(claims.preferred_username, 'service-account-astore-ci');
    assert.ok(claims.roles?.includes('astore-dev'), `roles ${JSON.stringify(claims.roles)}`);
    await assert.rejects(keycloak.clientCredentialsToken('astore-ci', 'wrong-secret'), /401.*unauthorized_client/);
  });

  test('the JWKS holds the key that signed a token', async () => {
    const { header } = decode(await keycloak.clientCredentialsToken());
    assert.ok((await jwksKids()).includes(header.kid), `kid ${header.kid}`);
  });
});

// These change the realm: the lifespan is put back, and the rotations come last.
describe('realm changes through the admin API', () => {
  test('setAccessTokenLifespan(5) gives tokens with exp - iat == 5', async () => {
    await keycloak.setAccessTokenLifespan(5);
    try {
      const { claims } = decode(await keycloak.passwordToken('alice', 'alice-password-1'));
      assert.equal(claims.exp - claims.iat, 5);
      const ci = decode(await keycloak.clientCredentialsToken()).claims;
      assert.equal(ci.exp - ci.iat, 5);
    } finally {
      await keycloak.setAccessTokenLifespan(300);
    }
    const { claims } = decode(await keycloak.passwordToken('alice', 'alice-password-1'));
    assert.equal(claims.exp - claims.iat, 300);
  });

  test('rotateKeys({ keepPrevious: true }): new tokens carry a new kid; both kids are in the JWKS', async () => {
    const before = decode(await keycloak.passwordToken('alice', 'alice-password-1')).header.kid;
    const kid = await keycloak.rotateKeys({ keepPrevious: true });
    const after = decode(await keycloak.passwordToken('alice', 'alice-password-1')).header.kid;
    assert.notEqual(after, before);
    assert.equal(after, kid);
    const kids = await jwksKids();
    assert.ok(kids.includes(after), `new kid ${after} in ${kids.join(', ')}`);
    assert.ok(kids.includes(before), `previous kid ${before} still published (passive)`);
  });

  test('rotateKeys(): new tokens carry a new kid, in the JWKS; the previous kid is gone', async () => {
    const before = decode(await keycloak.clientCredentialsToken()).header.kid;
    const kid = await keycloak.rotateKeys();
    const after = decode(await keycloak.clientCredentialsToken()).header.kid;
    assert.notEqual(after, before);
    assert.equal(after, kid);
    const kids = await jwksKids();
    assert.ok(kids.includes(after), `new kid ${after} in ${kids.join(', ')}`);
    assert.ok(!kids.includes(before), `previous kid ${before} removed`);
  });
});
