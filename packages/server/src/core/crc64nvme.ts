/**
 * CRC-64/NVME (reflected polynomial 0x9a6c9329ac4bc9b5, init and xorout all ones), the S3 checksum
 * `CRC64NVME`. Slice-by-8 over two 32-bit halves, so no BigInt on the hot path. Written here rather
 * than imported: the SDK package that has it costs the server ~12 MiB of resident memory to load.
 */
const tables: Uint32Array[] = (() => {
  const poly = 0x9a6c9329ac4bc9b5n;
  const out: Uint32Array[] = [];
  for (let slice = 0; slice < 8; slice++) {
    const table = new Uint32Array(512);
    for (let i = 0; i < 256; i++) {
      let crc = BigInt(i);
      for (let bit = 0; bit < 8 * (slice + 1); bit++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
      table[i * 2] = Number(crc >> 32n);
      table[i * 2 + 1] = Number(crc & 0xffffffffn);
    }
    out.push(table);
  }
  return out;
})();

export class Crc64Nvme {
  /** High and low 32 bits of the running (inverted) CRC. */
  private hi = 0xffffffff;
  private lo = 0xffffffff;

  update(data: Uint8Array): void {
    const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];
    let hi = this.hi;
    let lo = this.lo;
    let i = 0;
    const len = data.length;
    while (i + 8 <= len) {
      const a = ((lo ^ data[i]!) & 255) << 1;
      const b = (((lo >>> 8) ^ data[i + 1]!) & 255) << 1;
      const c = (((lo >>> 16) ^ data[i + 2]!) & 255) << 1;
      const d = (((lo >>> 24) ^ data[i + 3]!) & 255) << 1;
      const e = ((hi ^ data[i + 4]!) & 255) << 1;
      const f = (((hi >>> 8) ^ data[i + 5]!) & 255) << 1;
      const g = (((hi >>> 16) ^ data[i + 6]!) & 255) << 1;
      const h = (((hi >>> 24) ^ data[i + 7]!) & 255) << 1;
      hi = t7[a]! ^ t6[b]! ^ t5[c]! ^ t4[d]! ^ t3[e]! ^ t2[f]! ^ t1[g]! ^ t0[h]!;
      lo = t7[a + 1]! ^ t6[b + 1]! ^ t5[c + 1]! ^ t4[d + 1]! ^ t3[e + 1]! ^ t2[f + 1]! ^ t1[g + 1]! ^ t0[h + 1]!;
      i += 8;
    }
    for (; i < len; i++) {
      const idx = ((lo ^ data[i]!) & 255) << 1;
      lo = ((lo >>> 8) | ((hi & 255) << 24)) ^ t0[idx + 1]!;
      hi = (hi >>> 8) ^ t0[idx]!;
    }
    this.hi = hi >>> 0;
    this.lo = lo >>> 0;
  }

  /** Big-endian 8 bytes, as S3 encodes it (then base64). */
  digest(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32BE((this.hi ^ 0xffffffff) >>> 0, 0);
    out.writeUInt32BE((this.lo ^ 0xffffffff) >>> 0, 4);
    return out;
  }
}
