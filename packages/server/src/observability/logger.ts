import pino, { type Logger } from 'pino';

/** Query parameters that carry credentials in presigned URLs: never logged. */
const secretQueryParams = /([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=)[^&]*/gi;

export function redactUrl(url: string): string {
  return url.replace(secretQueryParams, '$1[REDACTED]');
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'astore' },
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-amz-security-token"]', 'req.headers.cookie', '*.secretKey', '*.rootSecretKey'],
      censor: '[REDACTED]',
    },
    serializers: {
      req: (req: { method: string; url: string; hostname?: string; ip?: string }) => ({
        method: req.method,
        url: redactUrl(req.url),
        host: req.hostname,
        remoteAddress: req.ip,
      }),
      err: pino.stdSerializers.err,
    },
  });
}
