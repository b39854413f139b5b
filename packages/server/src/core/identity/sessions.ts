import { randomBytes } from 'node:crypto';
import { AstoreError } from '../errors.ts';
import type { PolicyPrincipal } from '../policy/types.ts';
import type { SecretBox } from './secrets.ts';

export interface SessionCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
}

interface SessionClaims {
  /** access key id, secret, principal, expiry (ms since the epoch) */
  k: string;
  s: string;
  p: PolicyPrincipal;
  e: number;
}

const sessionKeyPrefix = 'ASIA';

/**
 * Temporary credentials (STS): an access key id, a secret and a session token that carries both,
 * with the session's principal and expiry, sealed with the server key. Nothing is stored: any
 * replica with the same server key checks a session token, and it ends at its expiry.
 */
export class SessionIssuer {
  constructor(private readonly box: SecretBox) {}

  static isSessionKey(accessKeyId: string): boolean {
    return accessKeyId.startsWith(sessionKeyPrefix);
  }

  issue(principal: PolicyPrincipal, durationSeconds: number, now = new Date()): SessionCredentials {
    const accessKeyId = `${sessionKeyPrefix}${randomBytes(10).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(30).toString('base64url');
    const expiration = new Date(now.getTime() + durationSeconds * 1000);
    const claims: SessionClaims = { k: accessKeyId, s: secretAccessKey, p: principal, e: expiration.getTime() };
    return { accessKeyId, secretAccessKey, sessionToken: this.box.seal(JSON.stringify(claims)), expiration };
  }

  /**
   * The secret and principal of a session key, given the token the request carries; null when the
   * token does not open or names another key; ExpiredToken once it has expired.
   */
  resolve(accessKeyId: string, sessionToken: string, now = Date.now()): { secret: string; principal: PolicyPrincipal } | null {
    let claims: SessionClaims;
    try {
      claims = JSON.parse(this.box.open(sessionToken)) as SessionClaims;
    } catch {
      return null;
    }
    if (claims.k !== accessKeyId) return null;
    if (claims.e <= now) throw new AstoreError('ExpiredToken', 'The provided token has expired.');
    return { secret: claims.s, principal: claims.p };
  }
}
