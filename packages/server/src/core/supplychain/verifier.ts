import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import type { KeyRecord, SupplyChainRecord, VerificationRecord } from '../../storage/meta/types.ts';
import type { ParsedDocument } from './formats/index.ts';
import { verifyCertificateChain, verifySignedMessage } from './formats/verify.ts';
import type { TrustPolicy } from './trust-policy.ts';
import type { SignedMessage } from './types.ts';

export type Evaluation = Pick<VerificationRecord, 'status' | 'reason' | 'verifiedBy'> & {
  /** When a trusted key or certificate expires: the evaluation may change then, with nothing else changing. */
  changesAt?: Date;
};

/** What the verifier reads; the service provides it from the MetaStore and the content store. */
export interface EvidenceSource {
  /** The parsed document of a record (cached by content digest). */
  document(record: SupplyChainRecord): Promise<ParsedDocument>;
  /** Every version of the named keys (signing, public or certificate). */
  keys(names: readonly string[]): Promise<KeyRecord[]>;
  /**
   * The subject's bytes, for signatures only a whole message verifies (Ed25519 over an S3 object);
   * undefined when too large to hold.
   */
  message?(): Promise<Buffer | undefined>;
}

/** The subject and where it lives: for an S3 object also the records attached to its key. */
export interface Subject {
  digest: string;
  /** Records whose subject is the digest. */
  records: SupplyChainRecord[];
  /**
   * S3 only: the digests records were attached to at this bucket/key (a record for another digest
   * means the object's bytes changed after they were signed).
   */
  otherDigestsAtKey?: string[];
}

interface KeyCandidate {
  record: KeyRecord;
  key: KeyObject;
}

/**
 * Evaluates one trust policy for one artifact: `verified` when a signature verifies with a trusted,
 * valid key (or a chain to a trusted CA) and every required attestation is present and verifies;
 * `missing` when there is no signature / attestation at all; `failed` when there is evidence but none
 * of it verifies (tampered, wrong key, revoked or expired key, content changed after signing).
 */
export async function evaluatePolicy(policy: TrustPolicy, subject: Subject, source: EvidenceSource, now: Date): Promise<Evaluation> {
  const keyRecords = await source.keys([...policy.keys, ...policy.certificates]);
  const trustedKeys: KeyCandidate[] = keyRecords
    .filter((k) => k.kind !== 'certificate' && policy.keys.includes(k.name))
    .map((record) => ({ record, key: createPublicKey(record.publicPem) }));
  const roots = keyRecords.filter((k) => k.kind === 'certificate' && policy.certificates.includes(k.name));
  const verifier = new MessageVerifier(trustedKeys, roots, policy.identities, now, source);
  const expiries = keyRecords.flatMap((k) => [k.expiresAt, k.kind === 'certificate' ? new Date(new X509Certificate(k.publicPem).validTo) : undefined]);
  const future = expiries.filter((d): d is Date => d !== undefined && d > now).sort((a, b) => a.getTime() - b.getTime());
  const changesAt = future[0] ? { changesAt: future[0] } : {};
  const evaluation = await evaluate(policy, subject, source, verifier);
  return { ...evaluation, ...changesAt };
}

async function evaluate(policy: TrustPolicy, subject: Subject, source: EvidenceSource, verifier: MessageVerifier): Promise<Evaluation> {

  const verifiedBy: string[] = [];
  if (policy.requireSignature) {
    const signatures = subject.records.filter((r) => r.kind === 'signature');
    if (signatures.length === 0) {
      if (subject.otherDigestsAtKey?.length) {
        return { status: 'failed', reason: `the object's content (${subject.digest}) changed after it was signed (signed: ${subject.otherDigestsAtKey.join(', ')})` };
      }
      return { status: 'missing', reason: 'no signature is attached' };
    }
    const problems: string[] = [];
    let by: string | undefined;
    for (const record of signatures) {
      const document = await documentOf(source, record, problems);
      if (document?.kind !== 'signature') continue;
      if (document.signature.subjectDigest !== subject.digest) {
        problems.push(`signature ${record.id} covers ${document.signature.subjectDigest}, not ${subject.digest}`);
        continue;
      }
      const outcome = await verifier.verify(document.signature.message);
      if ('by' in outcome) {
        by = outcome.by;
        break;
      }
      problems.push(`signature ${record.id}: ${outcome.problem}`);
    }
    if (by === undefined) return { status: 'failed', reason: summarize(problems, signatures.length, 'signature') };
    verifiedBy.push(by);
  }

  for (const required of policy.attestations) {
    const what = `${required.predicateType} attestation${required.builderId !== undefined ? ` from builder ${required.builderId}` : ''}`;
    const candidates = subject.records.filter((r) => r.kind === 'attestation' && r.predicateType === required.predicateType);
    const problems: string[] = [];
    let by: string | undefined;
    for (const record of candidates) {
      const document = await documentOf(source, record, problems);
      if (document?.kind !== 'attestation') continue;
      const { attestation } = document;
      if (required.builderId !== undefined && attestation.facts.builderId !== required.builderId) {
        problems.push(`attestation ${record.id} is from builder ${attestation.facts.builderId ?? '(none)'}`);
        continue;
      }
      if (!attestation.subjectDigests.includes(subject.digest)) {
        problems.push(`attestation ${record.id} does not name ${subject.digest} as its subject`);
        continue;
      }
      for (const message of attestation.signatures) {
        const outcome = await verifier.verify(message);
        if ('by' in outcome) {
          by = outcome.by;
          break;
        }
        problems.push(`attestation ${record.id}: ${outcome.problem}`);
      }
      if (by !== undefined) break;
      if (attestation.signatures.length === 0) problems.push(`attestation ${record.id} is unsigned`);
    }
    if (by === undefined) {
      if (problems.length === 0) return { status: 'missing', reason: `no ${what} is attached` };
      return { status: 'failed', reason: `no ${what} verifies: ${summarize(problems, candidates.length, 'attestation')}` };
    }
    verifiedBy.push(by);
  }
  const unique = [...new Set(verifiedBy)];
  return { status: 'verified', reason: `verified by ${unique.join(', ') || 'policy (nothing required)'}`, ...(unique[0] !== undefined && { verifiedBy: unique.join(', ') }) };
}

async function documentOf(source: EvidenceSource, record: SupplyChainRecord, problems: string[]): Promise<ParsedDocument | undefined> {
  try {
    return await source.document(record);
  } catch (err) {
    problems.push(`record ${record.id} cannot be read: ${(err as Error).message}`);
    return undefined;
  }
}

function summarize(problems: readonly string[], count: number, what: string): string {
  if (problems.length === 0) return `none of ${count} ${what}s verifies`;
  const shown = problems.slice(0, 3).join('; ');
  return problems.length > 3 ? `${shown} (and ${problems.length - 3} more)` : shown;
}

/** Tries a signed message against the policy's keys and certificate roots. */
class MessageVerifier {
  private readonly roots: X509Certificate[];
  private readonly rootNames = new Map<X509Certificate, KeyRecord>();

  constructor(
    private readonly keys: readonly KeyCandidate[],
    rootRecords: readonly KeyRecord[],
    private readonly identities: readonly string[],
    private readonly now: Date,
    private readonly source: EvidenceSource,
  ) {
    this.roots = [];
    for (const record of rootRecords) {
      if (record.revokedAt !== undefined && record.revokedAt <= now) continue;
      if (record.expiresAt !== undefined && record.expiresAt <= now) continue;
      const cert = new X509Certificate(record.publicPem);
      this.roots.push(cert);
      this.rootNames.set(cert, record);
    }
  }

  async verify(message: SignedMessage): Promise<{ by: string } | { problem: string }> {
    if (message.certificates?.length) return this.verifyWithChain(message);
    let problem: string | undefined;
    for (const { record, key } of this.keys) {
      if (!(await this.genuine(message, key))) continue;
      // The signature is genuine; whether the key may still vouch for it is the policy's question.
      if (record.revokedAt !== undefined && record.revokedAt <= this.now) {
        problem = `signed by key ${record.id}, revoked at ${record.revokedAt.toISOString()}`;
        continue;
      }
      if (record.expiresAt !== undefined && record.expiresAt <= this.now) {
        problem = `signed by key ${record.id}, expired at ${record.expiresAt.toISOString()}`;
        continue;
      }
      return { by: `key ${record.id}` };
    }
    return { problem: problem ?? 'no trusted key verifies it' };
  }

  /** Ed25519 verifies the message itself: a signature over an object's digest needs its bytes. */
  private async genuine(message: SignedMessage, key: KeyObject): Promise<boolean> {
    if (verifySignedMessage(message, key)) return true;
    if (key.asymmetricKeyType !== 'ed25519' || message.signed.kind !== 'digest' || !this.source.message) return false;
    const bytes = await this.source.message();
    return bytes !== undefined && verifySignedMessage({ ...message, signed: { kind: 'message', message: bytes } }, key);
  }

  /**
   * A chain is checked at verification time, not at the signing time the envelope claims (which the
   * signer chose); without a timestamp authority a signature lives as long as its certificate.
   */
  private verifyWithChain(message: SignedMessage): { by: string } | { problem: string } {
    if (this.roots.length === 0) return { problem: 'it carries a certificate chain and the policy trusts no certificate' };
    const chain = verifyCertificateChain(message.certificates!, this.roots, this.now);
    if (!chain.ok) return { problem: chain.reason };
    const subject = distinguishedName(chain.leaf.subject);
    const attributes = new Set(subject.split(', '));
    // Each attribute an identity names must be in the subject, whole: `CN=release.example.com` matches
    // `C=US, O=Corp, CN=release.example.com` but not `CN=release.example.com.evil`.
    const matches = (identity: string) => distinguishedName(identity.replace(/^x509\.subject:\s*/, '')).split(', ').every((a) => attributes.has(a));
    if (this.identities.length > 0 && !this.identities.some(matches)) {
      return { problem: `the signing certificate's subject (${subject}) is not a trusted identity` };
    }
    if (!verifySignedMessage(message, chain.leaf.publicKey)) return { problem: 'the signature does not verify with its certificate' };
    return { by: `certificate ${chain.leaf.subject.replace(/\n/g, ', ')}` };
  }
}

/** A subject DN as `A=v, B=w`: attributes split on newlines or commas, trimmed. */
function distinguishedName(text: string): string {
  return text
    .split(/\n|,/)
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .join(', ');
}
