import { createHash } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { accessKeyId as defaultKey, region, secretKey as defaultSecret } from './server.ts';
import { Sha256 } from './sha256.ts';

/** A SigV4 signer for S3 with the test credentials (or the given ones), signing paths as sent. */
function s3Signer(options: { accessKeyId?: string; secretKey?: string }): SignatureV4 {
  return new SignatureV4({
    service: 's3',
    region,
    sha256: Sha256,
    uriEscapePath: false,
    credentials: { accessKeyId: options.accessKeyId ?? defaultKey, secretAccessKey: options.secretKey ?? defaultSecret },
  });
}

export interface RawRequest {
  method: string;
  /** Path exactly as sent, already percent-encoded, e.g. "/bucket/a%20b". */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * Signs a raw S3 request (header auth, signed payload) for tests that must send what no SDK would:
 * malformed XML, hostile keys, odd headers. Returns headers to send as they are.
 */
export async function signRequest(
  host: string,
  req: RawRequest,
  options: { accessKeyId?: string; secretKey?: string; date?: Date } = {},
): Promise<Record<string, string>> {
  const body = req.body ?? '';
  const signed = await s3Signer(options).sign(
    {
      method: req.method,
      protocol: 'http:',
      hostname: host.split(':')[0]!,
      port: Number(host.split(':')[1] ?? 80),
      path: req.path,
      query: req.query ?? {},
      headers: {
        host,
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
        ...req.headers,
      },
      body,
    },
    { signingDate: options.date },
  );
  return signed.headers as Record<string, string>;
}

/**
 * A SigV4 presigned URL (query auth, UNSIGNED-PAYLOAD) for `req` on `endpoint`, as
 * @aws-sdk/s3-request-presigner would make it; `req.headers` become signed headers the caller must send.
 */
export async function presignUrl(
  endpoint: string,
  req: Omit<RawRequest, 'body'>,
  options: { expiresIn?: number; date?: Date; accessKeyId?: string; secretKey?: string } = {},
): Promise<string> {
  const url = new URL(endpoint);
  const presigned = await s3Signer(options).presign(
    {
      method: req.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: req.path,
      query: req.query ?? {},
      // As @aws-sdk/s3-request-presigner: the signer hoists it into the query and signs UNSIGNED-PAYLOAD.
      headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...req.headers },
    },
    { expiresIn: options.expiresIn ?? 300, signingDate: options.date },
  );
  const query = Object.entries(presigned.query ?? {})
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(String(value))}`)
    .join('&');
  return `${url.origin}${req.path}?${query}`;
}
