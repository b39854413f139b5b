import { FormatError } from '../types.ts';

/**
 * The CBOR (RFC 8949) subset COSE_Sign1 envelopes use: definite-length items only (COSE requires
 * deterministic encoding), integers within Number's safe range, maps keyed by integers or text.
 * Indefinite lengths, bignums and other extensions are refused with a FormatError.
 */

export type CborValue = number | string | Buffer | boolean | null | undefined | CborValue[] | Map<number | string, CborValue> | CborTag;

export interface CborTag {
  tag: number;
  value: CborValue;
}

export function isCborTag(value: CborValue): value is CborTag {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && !Array.isArray(value) && !(value instanceof Map);
}

const maxDepth = 16;

/** Decodes exactly one CBOR item filling `bytes`. */
export function decodeCbor(bytes: Buffer, what: string): CborValue {
  const reader = { offset: 0 };
  const value = readItem(bytes, reader, 0, what);
  if (reader.offset !== bytes.length) throw new FormatError(`${what} has ${bytes.length - reader.offset} bytes after its CBOR item`);
  return value;
}

function readItem(bytes: Buffer, reader: { offset: number }, depth: number, what: string): CborValue {
  if (depth > maxDepth) throw new FormatError(`${what} nests CBOR deeper than ${maxDepth} levels`);
  const need = (n: number) => {
    if (reader.offset + n > bytes.length) throw new FormatError(`${what} ends inside a CBOR item`);
  };
  need(1);
  const initial = bytes[reader.offset++]!;
  const major = initial >> 5;
  const info = initial & 0x1f;
  if (info > 27) throw new FormatError(`${what} uses an indefinite-length or reserved CBOR encoding`);
  if (major === 7 && info === 27) {
    need(8);
    reader.offset += 8;
    return bytes.readDoubleBE(reader.offset - 8);
  }
  let argument = info;
  if (info >= 24) {
    const size = 1 << (info - 24); // 1, 2, 4 or 8 bytes follow
    need(size);
    if (size === 8) {
      const big = bytes.readBigUInt64BE(reader.offset);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(`${what} holds a CBOR integer or length too large to read`);
      argument = Number(big);
    } else {
      argument = bytes.readUIntBE(reader.offset, size);
    }
    reader.offset += size;
  }

  switch (major) {
    case 0:
      return argument;
    case 1:
      return -1 - argument;
    case 2:
    case 3: {
      need(argument);
      const slice = bytes.subarray(reader.offset, reader.offset + argument);
      reader.offset += argument;
      return major === 2 ? Buffer.from(slice) : slice.toString('utf8');
    }
    case 4: {
      if (argument > bytes.length - reader.offset) throw new FormatError(`${what} declares a CBOR array longer than the envelope`);
      const items: CborValue[] = [];
      for (let i = 0; i < argument; i++) items.push(readItem(bytes, reader, depth + 1, what));
      return items;
    }
    case 5: {
      if (argument > bytes.length - reader.offset) throw new FormatError(`${what} declares a CBOR map longer than the envelope`);
      const map = new Map<number | string, CborValue>();
      for (let i = 0; i < argument; i++) {
        const key = readItem(bytes, reader, depth + 1, what);
        if (typeof key !== 'number' && typeof key !== 'string') throw new FormatError(`${what} has a CBOR map key that is neither an integer nor text`);
        if (map.has(key)) throw new FormatError(`${what} repeats the CBOR map key ${JSON.stringify(key)}`);
        map.set(key, readItem(bytes, reader, depth + 1, what));
      }
      return map;
    }
    case 6:
      return { tag: argument, value: readItem(bytes, reader, depth + 1, what) };
    default: {
      if (info === 25 || info === 26) return info === 25 ? halfFloat(argument) : bytes.readFloatBE(reader.offset - 4);
      if (argument === 20) return false;
      if (argument === 21) return true;
      if (argument === 22) return null;
      if (argument === 23) return undefined;
      throw new FormatError(`${what} holds an unknown CBOR simple value ${argument}`);
    }
  }
}

function halfFloat(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) {
    const b = Buffer.alloc(3);
    b[0] = (major << 5) | 25;
    b.writeUInt16BE(length, 1);
    return b;
  }
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(length, 1);
  return b;
}

/** Encodes an array of text and byte strings (all a COSE Sig_structure needs). */
export function encodeCborArray(items: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [head(4, items.length)];
  for (const item of items) {
    const bytes = typeof item === 'string' ? Buffer.from(item, 'utf8') : item;
    parts.push(head(typeof item === 'string' ? 3 : 2, bytes.length), bytes);
  }
  return Buffer.concat(parts);
}
