import { hash, verify } from '@node-rs/argon2';
import { AstoreError } from '../errors.ts';

export const MIN_PASSWORD_LENGTH = 12;
/** Long enough for any passphrase, short enough that hashing it costs nothing extra. */
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * A PHC string of argon2id with the library's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum
 * recommendation). The parameters travel in the string, so raising them later keeps old hashes valid.
 */
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

/**
 * True when `password` matches `passwordHash`; false for a wrong password and for a malformed hash,
 * never a throw. Without a hash (no such user, or one without a password) it still spends the time
 * of one verification, so the answer's timing does not tell whether the user exists.
 */
export async function verifyPassword(passwordHash: string | undefined, password: string): Promise<boolean> {
  try {
    if (passwordHash === undefined) {
      await verify(await dummyHash(), password);
      return false;
    }
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hash('no password: a hash to spend the time of a verification on');
  return dummy;
}

/** Length only, counted in code points (NIST SP 800-63B: no composition rules). */
export function validatePassword(password: string): void {
  const length = Array.from(password).length;
  if (length < MIN_PASSWORD_LENGTH) {
    throw new AstoreError('InvalidArgument', `the password must be at least ${MIN_PASSWORD_LENGTH} characters long`);
  }
  if (length > MAX_PASSWORD_LENGTH) {
    throw new AstoreError('InvalidArgument', `the password must be at most ${MAX_PASSWORD_LENGTH} characters long`);
  }
}
