/**
 * Streaming decoder for `Content-Encoding: aws-chunked` request bodies.
 *
 * Signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]):
 *   <hex-size>;chunk-signature=<sig>\r\n<data>\r\n ... 0;chunk-signature=<sig>\r\n
 *   [trailer lines name:value\r\n ... x-amz-trailer-signature:<sig>\r\n] \r\n
 * Unsigned trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER):
 *   <hex-size>\r\n<data>\r\n ... 0\r\n name:value\r\n ... \r\n
 *
 * Contract: the decoder emits payload bytes as they arrive, never holding a whole chunk; a chunk's
 * signature can only be checked when the chunk ends, so bytes already emitted are unverified until
 * the stream ends without error. Consumers must not commit anything before 'end' (on 'error' they
 * discard what they wrote). `trailers()` is valid after 'end'. Every failure is an AstoreError
 * emitted as the stream error.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AstoreError } from '../../core/errors.ts';
import { EMPTY_SHA256, hmacHex, sha256Hex, signaturesEqual, type ChunkSigningContext } from './signing.ts';

export interface ChunkedDecoderOptions {
  /** Present for STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]; absent for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
  signing?: ChunkSigningContext;
  trailer: boolean;
  /** From x-amz-trailer, lower-cased: each must arrive, and no other may. */
  expectedTrailers: string[];
  /** x-amz-decoded-content-length, when the client sent it. */
  decodedLength?: number;
}

export interface ChunkedDecoder extends Transform {
  /** Trailer name (lower-cased) → value, without x-amz-trailer-signature. Valid after 'end'. */
  trailers(): Record<string, string>;
}

/** Longest chunk header or trailer line accepted, CRLF excluded. */
export const MAX_LINE_BYTES = 4096;
const MAX_TRAILERS = 32;
const TRAILER_SIGNATURE = 'x-amz-trailer-signature';

export function createChunkedDecoder(options: ChunkedDecoderOptions): ChunkedDecoder {
  return new AwsChunkedDecoder(options);
}

type State =
  | 'chunk-header' // reading `<hex-size>[;chunk-signature=<sig>]\r\n`
  | 'chunk-data' // passing `remaining` payload bytes through
  | 'chunk-crlf' // expecting the \r\n after a chunk's data
  | 'trailer' // after the final chunk: trailer lines until an empty line
  | 'done';

class AwsChunkedDecoder extends Transform implements ChunkedDecoder {
  private readonly signing: ChunkSigningContext | undefined;
  private readonly trailerMode: boolean;
  private readonly expectedTrailers: ReadonlySet<string>;
  private readonly decodedLength: number | undefined;

  private state: State = 'chunk-header';
  /** Bytes of the current header/trailer line seen so far (latin1; bounded by MAX_LINE_BYTES). */
  private line = '';
  private remaining = 0;
  private crlfSeen = 0;
  private chunkHash: Hash | null = null;
  private chunkSignature = '';
  private previousSignature: string;
  private decoded = 0;
  private readonly receivedTrailers = new Map<string, string>();
  private readonly trailerLines: string[] = [];
  private trailerSignature: string | undefined;

  constructor(options: ChunkedDecoderOptions) {
    super();
    this.signing = options.signing;
    this.trailerMode = options.trailer;
    this.expectedTrailers = new Set(options.expectedTrailers.map((name) => name.toLowerCase()));
    this.decodedLength = options.decodedLength;
    this.previousSignature = options.signing?.seedSignature ?? '';
  }

  trailers(): Record<string, string> {
    return Object.fromEntries(this.receivedTrailers);
  }

  override _transform(input: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(input);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.finish();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  private consume(input: Buffer): void {
    let pos = 0;
    while (pos < input.length) {
      switch (this.state) {
        case 'chunk-header':
        case 'trailer': {
          const nl = input.indexOf(0x0a, pos);
          const end = nl < 0 ? input.length : nl;
          if (this.line.length + (end - pos) > MAX_LINE_BYTES + 1) {
            throw new AstoreError('InvalidRequest', `aws-chunked ${this.state === 'trailer' ? 'trailer' : 'chunk header'} line is too long.`);
          }
          this.line += input.toString('latin1', pos, end);
          if (nl < 0) return;
          pos = nl + 1;
          if (!this.line.endsWith('\r')) throw new AstoreError('InvalidRequest', 'aws-chunked line is not terminated by CRLF.');
          const line = this.line.slice(0, -1);
          this.line = '';
          if (this.state === 'chunk-header') this.onChunkHeader(line);
          else this.onTrailerLine(line);
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.remaining, input.length - pos);
          const data = input.subarray(pos, pos + take);
          this.chunkHash?.update(data);
          this.push(data);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.verifyChunk(this.chunkHash?.digest('hex') ?? EMPTY_SHA256);
            this.state = 'chunk-crlf';
            this.crlfSeen = 0;
          }
          break;
        }
        case 'chunk-crlf': {
          const expected = this.crlfSeen === 0 ? 0x0d : 0x0a;
          if (input[pos] !== expected) throw new AstoreError('IncompleteBody', 'aws-chunked chunk data is not followed by CRLF: the chunk size does not match its data.');
          pos += 1;
          this.crlfSeen += 1;
          if (this.crlfSeen === 2) this.state = 'chunk-header';
          break;
        }
        case 'done':
          throw new AstoreError('InvalidRequest', 'Unexpected data after the end of the aws-chunked body.');
      }
    }
  }

  private onChunkHeader(line: string): void {
    const semicolon = line.indexOf(';');
    const sizeText = semicolon < 0 ? line : line.slice(0, semicolon);
    if (!/^[0-9a-fA-F]{1,13}$/.test(sizeText)) throw new AstoreError('InvalidRequest', `Invalid aws-chunked chunk size '${sizeText.slice(0, 32)}'.`);
    const size = parseInt(sizeText, 16);
    if (this.signing) {
      const match = /^chunk-signature=([0-9a-f]{64})$/i.exec(semicolon < 0 ? '' : line.slice(semicolon + 1));
      if (!match) throw new AstoreError('InvalidRequest', 'aws-chunked chunk header has no valid chunk-signature.');
      this.chunkSignature = match[1] as string;
    }
    this.decoded += size;
    if (this.decodedLength !== undefined && this.decoded > this.decodedLength) {
      throw new AstoreError('IncompleteBody', 'The aws-chunked body is longer than x-amz-decoded-content-length.');
    }
    if (size === 0) {
      // The final chunk: signed with the hash of empty data, followed by trailers or the closing CRLF.
      this.verifyChunk(EMPTY_SHA256);
      this.state = 'trailer';
      return;
    }
    this.remaining = size;
    this.chunkHash = this.signing ? createHash('sha256') : null;
    this.state = 'chunk-data';
  }

  private verifyChunk(dataSha256: string): void {
    if (!this.signing) return;
    const { amzDate, scope, signingKey } = this.signing;
    const stringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${this.previousSignature}\n${EMPTY_SHA256}\n${dataSha256}`;
    const expected = hmacHex(signingKey, stringToSign);
    if (!signaturesEqual(expected, this.chunkSignature)) {
      throw new AstoreError('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.', {
        StringToSign: stringToSign,
        SignatureProvided: this.chunkSignature,
      });
    }
    this.previousSignature = expected;
    this.chunkHash = null;
  }

  private onTrailerLine(line: string): void {
    if (line === '') {
      this.endTrailers();
      this.state = 'done';
      return;
    }
    if (!this.trailerMode) throw new AstoreError('InvalidRequest', 'Unexpected data after the final aws-chunked chunk (no trailer was declared).');
    if (this.trailerSignature !== undefined) throw new AstoreError('InvalidRequest', 'x-amz-trailer-signature must be the last trailer.');
    const colon = line.indexOf(':');
    if (colon <= 0) throw new AstoreError('InvalidRequest', 'Malformed aws-chunked trailer line.');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (this.signing && name === TRAILER_SIGNATURE) {
      this.trailerSignature = value;
      return;
    }
    if (!this.expectedTrailers.has(name)) throw new AstoreError('InvalidRequest', `The trailer '${name}' was not declared in x-amz-trailer.`);
    if (this.receivedTrailers.has(name)) throw new AstoreError('InvalidRequest', `The trailer '${name}' was sent twice.`);
    if (this.receivedTrailers.size >= MAX_TRAILERS) throw new AstoreError('InvalidRequest', 'Too many aws-chunked trailers.');
    this.receivedTrailers.set(name, value);
    this.trailerLines.push(line);
  }

  private endTrailers(): void {
    for (const name of this.expectedTrailers) {
      if (!this.receivedTrailers.has(name)) throw new AstoreError('InvalidRequest', `The trailer '${name}' declared in x-amz-trailer is missing.`);
    }
    if (!this.signing || !this.trailerMode) return;
    if (this.trailerSignature === undefined) throw new AstoreError('InvalidRequest', 'The x-amz-trailer-signature trailer is missing.');
    const { amzDate, scope, signingKey } = this.signing;
    const trailerHash = sha256Hex(this.trailerLines.map((line) => `${line}\n`).join(''));
    const stringToSign = `AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${this.previousSignature}\n${trailerHash}`;
    const expected = hmacHex(signingKey, stringToSign);
    if (!signaturesEqual(expected, this.trailerSignature)) {
      throw new AstoreError('SignatureDoesNotMatch', 'The trailer signature we calculated does not match the signature you provided.', {
        StringToSign: stringToSign,
        SignatureProvided: this.trailerSignature,
      });
    }
  }

  private finish(): void {
    // Some clients close the body right after the last trailer line, without the empty line.
    if (this.state === 'trailer' && this.line === '' && this.trailerMode) {
      this.endTrailers();
      this.state = 'done';
    }
    if (this.state === 'trailer' && this.line === '' && !this.trailerMode) this.state = 'done';
    if (this.state !== 'done') throw new AstoreError('IncompleteBody', 'The aws-chunked body ended before its final chunk.');
    if (this.decodedLength !== undefined && this.decoded !== this.decodedLength) {
      throw new AstoreError('IncompleteBody', `The aws-chunked body decoded to ${this.decoded} bytes, not the ${this.decodedLength} of x-amz-decoded-content-length.`);
    }
  }
}
