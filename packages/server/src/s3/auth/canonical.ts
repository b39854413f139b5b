/**
 * SigV4 canonical request pieces, exactly as S3 builds them (not the generic AWS variant):
 * - the path is not normalised ('.', '..', '//' stay) and not double-encoded: each segment is
 *   percent-decoded from the raw path, then re-encoded with UriEncode;
 * - the query is decoded ('+' is a space, as S3 accepts it) and re-encoded, sorted by name then value;
 * - header values are trimmed, inner whitespace runs collapsed, repeated headers joined with ','.
 * Decoding works on bytes so that invalid UTF-8 or stray '%' survive the round trip unchanged.
 */

/** One query parameter: decoded strings for the router, UriEncoded forms for signing. */
export interface QueryParam {
  name: string;
  value: string;
  encodedName: string;
  encodedValue: string;
}

/** Lower-cased header name → every value received for it, in order. */
export type HeaderValues = Map<string, string[]>;

export function headerValues(rawHeaders: readonly string[]): HeaderValues {
  const headers: HeaderValues = new Map();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    const values = headers.get(name);
    if (values) values.push(value);
    else headers.set(name, [value]);
  }
  return headers;
}

/** Splits a request target into its raw path (never empty) and raw query (without '?'). */
export function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  return { rawPath: rawPath === '' ? '/' : rawPath, rawQuery: q < 0 ? '' : url.slice(q + 1) };
}

const HEX = '0123456789ABCDEF';

function isHexDigit(code: number | undefined): boolean {
  return code !== undefined && ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66));
}

function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e
  );
}

/** Percent-decodes to bytes; a '%' not followed by two hex digits is kept literally. */
export function percentDecode(raw: string, plusIsSpace: boolean): Buffer {
  const input = Buffer.from(raw, 'utf8');
  const out = Buffer.allocUnsafe(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i] as number;
    if (byte === 0x25 && isHexDigit(input[i + 1]) && isHexDigit(input[i + 2])) {
      out[n++] = parseInt(String.fromCharCode(input[i + 1] as number, input[i + 2] as number), 16);
      i += 2;
    } else if (byte === 0x2b && plusIsSpace) {
      out[n++] = 0x20;
    } else {
      out[n++] = byte;
    }
  }
  return out.subarray(0, n);
}

/** AWS UriEncode of bytes: unreserved A-Za-z0-9-._~ kept, everything else %XX (uppercase). */
export function uriEncode(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) {
    out += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

export function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map((segment) => uriEncode(percentDecode(segment, false)))
    .join('/');
}

/** Parses a raw query string the way S3 reads it. Empty components ('a&&b') are skipped. */
export function parseQuery(rawQuery: string): QueryParam[] {
  const params: QueryParam[] = [];
  for (const component of rawQuery.split('&')) {
    if (component === '') continue;
    const eq = component.indexOf('=');
    const nameBytes = percentDecode(eq < 0 ? component : component.slice(0, eq), true);
    const valueBytes = percentDecode(eq < 0 ? '' : component.slice(eq + 1), true);
    params.push({
      name: nameBytes.toString('utf8'),
      value: valueBytes.toString('utf8'),
      encodedName: uriEncode(nameBytes),
      encodedValue: uriEncode(valueBytes),
    });
  }
  return params;
}

export function canonicalQuery(params: readonly QueryParam[], exclude?: string): string {
  return params
    .filter((p) => p.name !== exclude)
    .map((p) => [p.encodedName, p.encodedValue] as const)
    .sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** `name:value\n` for each signed header, in the order given; absent headers sign as empty. */
export function canonicalHeaders(headers: HeaderValues, signedHeaders: readonly string[]): string {
  let out = '';
  for (const name of signedHeaders) {
    const values = headers.get(name) ?? [];
    out += `${name}:${values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',')}\n`;
  }
  return out;
}

export function canonicalRequest(parts: {
  method: string;
  rawPath: string;
  params: readonly QueryParam[];
  excludeParam?: string;
  headers: HeaderValues;
  signedHeaders: readonly string[];
  payloadHash: string;
}): string {
  return [
    parts.method,
    canonicalUri(parts.rawPath),
    canonicalQuery(parts.params, parts.excludeParam),
    canonicalHeaders(parts.headers, parts.signedHeaders),
    parts.signedHeaders.join(';'),
    parts.payloadHash,
  ].join('\n');
}
