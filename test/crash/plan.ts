import { createHash } from 'node:crypto';

// Where the kills of the crash-safety test land: one plan per cycle, from a seeded PRNG.

export const MiB = 1024 * 1024;
/** About the size of the single-PUT objects (each is up to 1 MiB smaller, so versions differ in size). */
export const objectBytes = 64 * MiB;
/** Every multipart part but the last (the server's default minimum). */
export const partBytes = 5 * MiB;

/**
 * Where the kill lands for one write. mid-body: after exactly `bytes` body bytes were sent.
 * after-body / after-request: `delayMs` after the last byte. after-blob: `delayMs` after the new
 * version's blob appeared under its digest, i.e. right at the object commit (the Complete of the
 * same cycle is then sent at that moment too). after-ack: once the whole 200 arrived.
 */
export type PutKill =
  | { at: 'mid-body'; bytes: number }
  | { at: 'after-body'; delayMs: number }
  | { at: 'after-blob'; delayMs: number }
  | { at: 'after-ack' };
export type CompleteKill = { at: 'after-request'; delayMs: number } | { at: 'after-ack' };

export interface CyclePlan {
  cycle: number;
  fresh: PutKill;
  overwrite: PutKill;
  complete: CompleteKill;
  /** The fresh key gets the bytes of overwrite.bin's current version: ingest's dedupe path. */
  freshDedupe: boolean;
  unsignedPayload: boolean;
  /** If the Complete did not land: complete the upload again after the restart, else abort it. */
  retryComplete: boolean;
  freshSize: number;
  overwriteSize: number;
  lastPartSize: number;
}

/** Median ms the server took to answer: from the last body byte (put, complete), from the blob's appearance (blob). */
export interface AnswerTimes {
  put: number;
  blob: number;
  complete: number;
}

/**
 * fresh / overwrite / complete kill by cycle % 10: M mid-body, B after-body, E after-blob, A
 * after-ack, T after-request. One PUT is always cut mid-body while the other meets the kill after
 * its body; the fresh key takes the dedupe path in cycles 1 and 7 (never E: its blob is already there).
 */
const pattern = ['MAT', 'AMA', 'MBT', 'BMT', 'MET', 'EMT', 'MBA', 'BMT', 'MET', 'EMA'] as const;

/**
 * Deterministic in `cycle` but for the delays, spread over 0-1.5x the median answer time so far,
 * so that kills land before, during and after the commit however loaded the machine is.
 */
export function planCycle(cycle: number, seedBase: string, answerMs: AnswerTimes): CyclePlan {
  const rand = prng(`${seedBase}/plan/${cycle}`);
  const freshSize = objectBytes - Math.floor(rand() * MiB);
  const overwriteSize = objectBytes - Math.floor(rand() * MiB);
  const delay = (ms: number) => Math.round(rand() * 1.5 * ms * 10) / 10;
  const edge = Math.floor(cycle / 2); // each write's first mid-body kills: after 0 bytes, then all but the last
  const put = (mode: string, size: number): PutKill => {
    if (mode === 'M') return { at: 'mid-body', bytes: edge === 0 ? 0 : edge === 1 ? size - 1 : 1 + Math.floor(rand() * (size - 2)) };
    if (mode === 'B') return { at: 'after-body', delayMs: delay(answerMs.put) };
    if (mode === 'E') return { at: 'after-blob', delayMs: delay(answerMs.blob) };
    return { at: 'after-ack' };
  };
  const [f, o, c] = [...pattern[cycle % pattern.length]!];
  const fresh = put(f!, freshSize);
  const overwrite = put(o!, overwriteSize);
  const anchor = [fresh, overwrite].find((k) => k.at === 'after-blob');
  const complete: CompleteKill =
    c === 'A' ? { at: 'after-ack' } : { at: 'after-request', delayMs: anchor?.at === 'after-blob' ? anchor.delayMs : cycle % 10 === 0 ? 0 : delay(answerMs.complete) };
  return {
    cycle,
    fresh,
    overwrite,
    complete,
    freshDedupe: cycle % 10 === 1 || cycle % 10 === 7,
    unsignedPayload: cycle % 3 === 2,
    retryComplete: cycle % 2 === 0,
    freshSize,
    overwriteSize,
    lastPartSize: MiB + Math.floor(rand() * 2 * MiB),
  };
}

export function describeKill(kill: PutKill | CompleteKill): string {
  if (kill.at === 'mid-body') return `after ${kill.bytes} body bytes`;
  if (kill.at === 'after-ack') return 'after the 200';
  if (kill.at === 'after-blob') return `${kill.delayMs} ms after its blob appeared`;
  return `${kill.delayMs} ms ${kill.at}`;
}

function prng(seed: string): () => number {
  let a = createHash('sha256').update(seed).digest().readUInt32LE(0);
  return () => {
    // mulberry32
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
