/**
 * Node's error codes for a backend that cannot be reached or dropped the connection: the same for the
 * blob stores and the metadata store, and what both turn into ServiceUnavailable.
 */
export const nodeNetworkErrorCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
