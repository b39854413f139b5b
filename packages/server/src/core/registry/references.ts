import { createHash } from 'node:crypto';
import { AstoreError } from '../errors.ts';

/**
 * Names as the OCI distribution spec defines them: repository names (path components of lower-case
 * alphanumerics joined by separators), tags, and digests. Only sha256 and sha512 digests are
 * accepted: the spec's registered algorithms; anything else is DIGEST_INVALID (never a path).
 */
const component = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const repositoryPattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const digestPattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Longest repository name accepted; with the host it must fit clients' 255-character references. */
export const maxRepositoryNameLength = 255;

export type DigestAlgorithm = 'sha256' | 'sha512';

export function validateRepositoryName(name: string): string {
  if (name.length === 0 || name.length > maxRepositoryNameLength || !repositoryPattern.test(name)) {
    throw new AstoreError('NameInvalid', `invalid repository name: ${JSON.stringify(name.slice(0, 300))}`, { name: name.slice(0, 300) });
  }
  return name;
}

export function isTag(reference: string): boolean {
  return tagPattern.test(reference);
}

export function validateTag(tag: string): string {
  if (!isTag(tag)) throw new AstoreError('TagInvalid', `invalid tag: ${JSON.stringify(tag.slice(0, 200))}`);
  return tag;
}

export function isDigest(value: string): boolean {
  return digestPattern.test(value);
}

/** Throws DIGEST_INVALID unless `value` is a sha256 or sha512 digest in canonical (lower-case hex) form. */
export function parseDigest(value: string): { digest: string; algorithm: DigestAlgorithm; hex: string } {
  if (!digestPattern.test(value)) {
    const algorithm = value.split(':')[0] ?? '';
    const why = /^[a-z0-9]+([+._-][a-z0-9]+)*$/.test(algorithm) && value.includes(':') && algorithm !== 'sha256' && algorithm !== 'sha512'
      ? `unsupported digest algorithm ${JSON.stringify(algorithm)} (sha256 and sha512 are)`
      : `invalid digest ${JSON.stringify(value.slice(0, 200))}`;
    throw new AstoreError('DigestInvalid', why, { digest: value.slice(0, 200) });
  }
  const [algorithm, hex] = value.split(':') as [DigestAlgorithm, string];
  return { digest: value, algorithm, hex };
}

/** A manifest reference from a URL: a digest when it looks like one (then it must be valid), else a tag. */
export function parseReference(reference: string): { digest: string } | { tag: string } {
  if (reference.includes(':')) return { digest: parseDigest(reference).digest };
  return { tag: validateTag(reference) };
}

export function digestOf(algorithm: DigestAlgorithm, bytes: Buffer): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}
