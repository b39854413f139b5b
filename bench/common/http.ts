// node:http pieces both benchmark clients (bench/s3/s3client.ts, bench/oci/client.ts) are built from.

import http from 'node:http';

/**
 * A keep-alive Agent for one phase. A fresh Agent per phase (destroyed after it) means no socket that
 * sat idle past the server's keep-alive timeout is reused, which would fail with ECONNRESET.
 */
export function keepAliveAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' });
}

/** An unexpected status, with the start of the response body (S3's XML, a registry's JSON) for the report. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    body: string,
  ) {
    super(`${method} ${path} -> ${status} ${body.slice(0, 300).replace(/\s+/g, ' ')}`);
  }
}

/** Drains a response body, keeping its first 64 KiB as text (error bodies are a few hundred bytes). */
export async function readText(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (total < 64 * 1024) chunks.push(chunk);
    total += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Streams a (large) response body through `onChunk` and resolves at its end; rejects when the response
 * fails or is cut short, naming `request` (`GET /path`).
 */
export function consumeBody(res: http.IncomingMessage, request: string, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    res.on('data', onChunk);
    res.once('end', resolve);
    res.once('error', reject);
    res.once('aborted', () => reject(new Error(`${request}: response aborted`)));
  });
}
