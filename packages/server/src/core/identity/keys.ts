import { randomBytes } from 'node:crypto';

/** `AK` and 18 upper-case hex digits (72 random bits); the root key's id starts with `AS`. */
export const accessKeyIdPattern = /^AK[0-9A-F]{18}$/;

/**
 * A new access key: an id to show and a 40-character base64url secret (240 random bits). The caller
 * seals the secret (SecretBox) before storing it and shows it to the user once.
 */
export function generateAccessKey(): { accessKeyId: string; secret: string } {
  return {
    accessKeyId: `AK${randomBytes(9).toString('hex').toUpperCase()}`,
    secret: randomBytes(30).toString('base64url'),
  };
}
