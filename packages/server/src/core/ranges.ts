import type { ByteRange } from '../storage/blob/types.ts';
import { AstoreError } from './errors.ts';

/** A parsed `Range: bytes=...` request, before the object's size is known. */
export type RangeSpec = { start: number; end?: number } | { suffix: number };

/**
 * Parses a single-range `bytes=` header. Returns undefined for headers S3 ignores (other units,
 * several ranges, syntax errors): the whole object is then returned, as S3 does.
 */
export function parseRangeHeader(header: string | undefined): RangeSpec | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') return { suffix: Number(b) };
  const start = Number(a);
  if (b === '') return { start };
  const end = Number(b);
  return end < start ? undefined : { start, end };
}

/** Resolves against the object size; InvalidRange (416) when nothing of it is satisfiable. */
export function resolveRange(spec: RangeSpec, size: number): ByteRange {
  if ('suffix' in spec) {
    if (spec.suffix === 0 || size === 0) throw new AstoreError('InvalidRange', undefined, { ActualObjectSize: size });
    return { start: Math.max(0, size - spec.suffix), end: size - 1 };
  }
  if (spec.start >= size) throw new AstoreError('InvalidRange', undefined, { ActualObjectSize: size, RangeRequested: `bytes=${spec.start}-${spec.end ?? ''}` });
  return { start: spec.start, end: Math.min(spec.end ?? size - 1, size - 1) };
}
