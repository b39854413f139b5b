/**
 * Glob patterns of the policy language: `*` matches any run of characters (empty included, `/` and `:`
 * included), `?` exactly one character (one Unicode code point), everything else itself, case-sensitive.
 * There is no escape: a policy cannot name a literal `*` or `?`.
 *
 * A pattern is compiled once into a predicate. The matcher never backtracks: the pattern is split at its
 * stars into segments; the first must match at the start, the last at the end, and each middle segment is
 * found leftmost after the previous one (taking the leftmost occurrence never loses a match, since a later
 * star can absorb whatever an earlier choice skipped). Worst case O(input × pattern), and O(input) with
 * `indexOf` when the pattern has no `?` — no regular expression, so no catastrophic backtracking on
 * `*a*a*a*a*b` against long keys.
 */

export type Glob = (input: string) => boolean;

export function hasWildcard(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

const matchAll: Glob = () => true;

export function compileGlob(pattern: string): Glob {
  if (pattern === '*') return matchAll;
  if (!hasWildcard(pattern)) return (input) => input === pattern;
  const segments = pattern.split('*');
  if (!pattern.includes('?')) {
    // Stars only: literal segments, plain string operations.
    if (segments.length === 2 && segments[1] === '') {
      const prefix = segments[0]!;
      return (input) => input.startsWith(prefix);
    }
    return (input) => matchSegments(input, segments, literalAt, literalFind);
  }
  // `?` counts code points: the code-unit form serves inputs without surrogates (nearly all), the
  // code-point form the rest, so that `?` never matches half of an emoji.
  const codePointSegments = segments.map((segment) => Array.from(segment));
  return (input) =>
    hasSurrogate(input)
      ? matchSegments(Array.from(input), codePointSegments, wildAt, wildFind)
      : matchSegments(input, segments, wildAt, wildFind);
}

type Seq = ArrayLike<string>;
type At<S extends Seq> = (input: S, pos: number, segment: S) => boolean;
type Find<S extends Seq> = (input: S, from: number, end: number, segment: S) => number;

/** `segments` is the pattern split at `*` (so at least two of them: the pattern has a star). */
function matchSegments<S extends Seq>(input: S, segments: readonly S[], at: At<S>, find: Find<S>): boolean {
  if (segments.length === 1) return input.length === segments[0]!.length && at(input, 0, segments[0]!);
  const head = segments[0]!;
  const tail = segments[segments.length - 1]!;
  const end = input.length - tail.length;
  if (end < head.length) return false;
  if (!at(input, 0, head) || !at(input, end, tail)) return false;
  let pos = head.length;
  for (let i = 1; i < segments.length - 1; i++) {
    const segment = segments[i]!;
    if (segment.length === 0) continue; // `**`
    const found = find(input, pos, end, segment);
    if (found < 0) return false;
    pos = found + segment.length;
  }
  return true;
}

function literalAt(input: string, pos: number, segment: string): boolean {
  return input.startsWith(segment, pos);
}

function literalFind(input: string, from: number, end: number, segment: string): number {
  const found = input.indexOf(segment, from);
  return found >= 0 && found + segment.length <= end ? found : -1;
}

function wildAt(input: Seq, pos: number, segment: Seq): boolean {
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c !== '?' && c !== input[pos + i]) return false;
  }
  return true;
}

function wildFind(input: Seq, from: number, end: number, segment: Seq): number {
  for (let pos = from; pos + segment.length <= end; pos++) if (wildAt(input, pos, segment)) return pos;
  return -1;
}

const surrogate = /[\uD800-\uDFFF]/;

function hasSurrogate(input: string): boolean {
  return surrogate.test(input);
}
