import { basicAuth } from './oci.ts';

/** What a REST call answered: the status, the body as bytes, text and JSON (undefined if not JSON). */
export interface ApiAnswer {
  status: number;
  // The tests read whatever the endpoint returns; each asserts the fields it cares about.
  json: any;
  text: string;
  headers: Headers;
  bytes: Buffer;
}

/**
 * A call to astore's REST API (root credentials unless `authorization` is given): an object body is
 * sent as JSON, a Buffer or string as it is (set its content type in `headers`).
 */
export async function apiCall(endpoint: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiAnswer> {
  const sent: Record<string, string> = { authorization: basicAuth(), ...headers };
  const init: RequestInit = { method, headers: sent };
  if (body !== undefined) {
    const raw = Buffer.isBuffer(body) || typeof body === 'string';
    init.body = raw ? (body as Buffer | string) : JSON.stringify(body);
    if (!raw) sent['content-type'] = 'application/json';
  }
  const res = await fetch(`${endpoint}${path}`, init);
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers, bytes };
}
