/**
 * Version order for SBOM queries ("which artifacts contain log4j-core below 2.15.0"), as a string
 * whose byte order is the version order, so a database compares versions with an index range
 * (storage/meta: sc_components.version_key). One scheme for every ecosystem, so it is a compromise
 * between SemVer, Maven, PEP 440 and Debian; the rules, in order:
 *
 * 1. Surrounding white space and a leading `v`/`V` before a digit are dropped (v1.2 = 1.2).
 *    An epoch (`1:2.3` Debian/RPM, `1!2.3` PEP 440) sorts after every version without one.
 * 2. The version splits into runs of ASCII digits (numbers), runs of letters (words, compared
 *    lower-cased) and separators (anything else). The release is the leading numbers joined by dots; numbers compare numerically
 *    (2.9 < 2.14.1) and trailing zeros do not count (2.15 = 2.15.0).
 * 3. What follows the release is its qualifier; its first token decides where it sorts:
 *    - pre-release, before the release: dev/nightly/canary < alpha < beta < milestone/pre/preview <
 *      any word after `~` (Debian) < rc/cr < snapshot (Maven). The letters a, b, c and m count as
 *      alpha, beta, rc and milestone only when a number follows (PEP 440 `1.0a1`, Maven `1.0-M2`);
 *    - the release itself: final, ga, release (2.0.Final = 2.0.GA = 2.0);
 *    - post-release, after the release and before the next one: anything else — a number (Maven,
 *      Debian and RPM revisions `1.0-1`), post/sp/patch, and words such as `jre` (Guava `31.1-jre`)
 *      or OpenSSL's letter `1.1.1n`.
 *    Within a qualifier, numbers sort before words and numerically among themselves, and a shorter
 *    qualifier before a longer one it begins (SemVer: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta).
 *
 * Limits: SemVer treats `1.0.0-1` (numeric pre-release) as before 1.0.0, here it is after (the Maven
 * and Debian reading); unknown words after `-` are post-release, where SemVer would put them before
 * (1.0.0-foo > 1.0.0 here); separators carry no meaning (1.0-rc1 = 1.0.rc.1 = 1.0rc1); build
 * metadata (`+build`) is a post-release qualifier instead of being ignored; Debian's full ordering
 * (`~` anywhere, letters vs non-letters) and Maven's per-token rules are only approximated. Hashes and
 * other non-versions get a key, but their order means nothing. Numbers longer than 99 digits keep
 * their first 99.
 */

/** Key layout, chosen so that byte order is version order (see the character ranks below). */
const PRE = '!'; // 0x21: pre-release marker, before RELEASE
const RELEASE = '#'; // 0x23
const POST = '+'; // 0x2b: after RELEASE, and before NUMBER so 1.0-1 < 1.0.1
const NUMBER = '.'; // 0x2e: a number follows; before WORD, so numbers sort before words
const WORD = ':'; // 0x3a: a word follows
const EPOCH = '~'; // 0x7e: after every character a key without an epoch starts with

/** Rank of the pre-release words (one letter after WORD); unknown words after `~` rank 'e' + word. */
const PRE_RANK: Readonly<Record<string, string>> = {
  dev: 'a',
  nightly: 'a',
  canary: 'a',
  alpha: 'b',
  ea: 'b',
  beta: 'c',
  milestone: 'd',
  pre: 'd',
  preview: 'd',
  rc: 'f',
  cr: 'f',
  snapshot: 'g',
};
/** Single letters that are pre-release words only when a number follows them. */
const PRE_LETTER: Readonly<Record<string, string>> = { a: 'b', b: 'c', m: 'd', c: 'f' };
const UNKNOWN_PRE_RANK = 'e';
const RELEASE_WORDS = new Set(['final', 'ga', 'release']);

type Token = { kind: 'number'; text: string } | { kind: 'word'; text: string } | { kind: 'separator'; text: string };

const TOKEN = /([0-9]+)|(\p{L}+)|([^0-9\p{L}]+)/gu;

/**
 * A key whose UTF-8 byte order (a byte-order text column's order; JavaScript's `<` agrees while words
 * are ASCII) is the version order described above: versionKey(a) < versionKey(b) exactly when a sorts
 * before b, and the keys are equal for versions that compare equal (2.15 and v2.15.0). Never empty.
 */
export function versionKey(version: string): string {
  let text = version.trim();
  const epoch = /^([0-9]+)[:!](?=.)/u.exec(text);
  let prefix = '';
  if (epoch) {
    text = text.slice(epoch[0].length);
    if (BigInt(epoch[1]!) > 0n) prefix = EPOCH + encodeNumber(epoch[1]!);
  }
  if (/^[vV]\d/u.test(text)) text = text.slice(1);
  const tokens = tokenize(text);

  // The release: number (`.` number)*.
  const release: string[] = [];
  let i = 0;
  while (tokens[i]?.kind === 'number') {
    release.push(tokens[i]!.text);
    if (tokens[i + 1]?.text === '.' && tokens[i + 2]?.kind === 'number') i += 2;
    else {
      i += 1;
      break;
    }
  }
  while (release.length > 0 && /^0+$/u.test(release.at(-1)!)) release.pop();
  let key = prefix + release.map((n) => NUMBER + encodeNumber(n)).join('');

  const tilde = tokens[i]?.kind === 'separator' && tokens[i]!.text.includes('~');
  const qualifier = tokens.slice(i).filter((token) => token.kind !== 'separator');
  const first = qualifier[0];
  if (first === undefined) return key + (tilde ? PRE : RELEASE);

  if (first.kind === 'word') {
    const word = first.text;
    const rank = PRE_RANK[word] ?? (qualifier[1]?.kind === 'number' ? PRE_LETTER[word] : undefined);
    if (rank !== undefined) return key + PRE + WORD + rank + encodeTokens(qualifier.slice(1));
    if (tilde) return key + PRE + WORD + UNKNOWN_PRE_RANK + word + encodeTokens(qualifier.slice(1));
    if (RELEASE_WORDS.has(word)) return key + RELEASE + encodeTokens(qualifier.slice(1));
  }
  return key + (tilde ? PRE : POST) + encodeTokens(qualifier);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  for (const match of text.matchAll(TOKEN)) {
    if (match[1] !== undefined) tokens.push({ kind: 'number', text: match[1] });
    else if (match[2] !== undefined) tokens.push({ kind: 'word', text: match[2].toLowerCase() });
    else tokens.push({ kind: 'separator', text: match[3]! });
  }
  return tokens;
}

function encodeTokens(tokens: readonly Token[]): string {
  return tokens.map((token) => (token.kind === 'number' ? NUMBER + encodeNumber(token.text) : WORD + token.text)).join('');
}

/**
 * Numbers of up to 10 digits are zero-padded to 10 (readable in the database); longer ones are `:`
 * (after every digit), their length in two digits, and the digits, so they sort after all shorter ones.
 */
function encodeNumber(digits: string): string {
  const significant = digits.replace(/^0+/u, '') || '0';
  if (significant.length <= 10) return significant.padStart(10, '0');
  const kept = significant.slice(0, 99);
  return `:${String(kept.length).padStart(2, '0')}${kept}`;
}
