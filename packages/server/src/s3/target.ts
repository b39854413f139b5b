import { AstoreError } from '../core/errors.ts';

/** What an S3 request addresses: the service, a bucket, or an object. */
export interface S3Target {
  bucket?: string;
  key?: string;
  /** Raw path as the client sent it, for error <Resource>. */
  resource: string;
  query: URLSearchParams;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AstoreError('InvalidArgument', 'The request path is not valid percent-encoded UTF-8');
  }
}

/** The bucket a virtual-host style Host names (<bucket>.<domain>[:port]); undefined for path-style. */
export function virtualHostBucket(host: string | undefined, domain: string | undefined): string | undefined {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  return domain && hostname.endsWith(`.${domain}`) ? hostname.slice(0, -(domain.length + 1)) : undefined;
}

/**
 * Path-style: /bucket/key. Virtual-host style when `domain` is configured and Host is
 * <bucket>.<domain>: the whole path is the key. The key keeps every character the client encoded,
 * including '//' and trailing '/', since S3 keys are opaque strings.
 */
export function parseTarget(rawUrl: string, host: string | undefined, domain: string | undefined): S3Target {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  const bucket = virtualHostBucket(host, domain);
  if (bucket !== undefined) {
    const key = rawPath.length > 1 ? decode(rawPath.slice(1)) : undefined;
    return { bucket, key, resource: rawPath, query };
  }
  const path = rawPath.slice(1);
  if (path === '') return { resource: '/', query };
  const slash = path.indexOf('/');
  if (slash < 0) return { bucket: decode(path), resource: rawPath, query };
  const key = path.slice(slash + 1);
  return { bucket: decode(path.slice(0, slash)), key: key === '' ? undefined : decode(key), resource: rawPath, query };
}
