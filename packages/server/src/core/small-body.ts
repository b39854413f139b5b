import { AstoreError } from './errors.ts';

/**
 * Reads a whole small body (a manifest, a JSON document, a form) into memory, refusing it with
 * `tooLarge()` as soon as it grows past `maxBytes`: never more than that is buffered.
 */
export async function readSmallBody(stream: AsyncIterable<unknown>, maxBytes: number, tooLarge: () => AstoreError, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    signal?.throwIfAborted();
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
