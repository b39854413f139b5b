import type { MetaStore, ObjectSummary } from '../storage/meta/types.ts';

export interface ListQuery {
  bucket: string;
  prefix: string;
  delimiter?: string;
  /** Start strictly after this key (marker / start-after / continuation token). */
  after?: string;
  maxKeys: number;
}

export interface ListPage {
  objects: ObjectSummary[];
  commonPrefixes: string[];
  truncated: boolean;
  /** The last key or common prefix returned: where the next page starts (exclusive). */
  last?: string;
}

/** Greater, in UTF-8 byte order, than any realistic key that starts with `prefix`. */
const beyondPrefix = (prefix: string): string => `${prefix}\u{10FFFF}`;

const pageSize = 1000;

/**
 * S3 listing with delimiter roll-up. Keys come from the MetaStore in byte order; a key containing the
 * delimiter after the prefix rolls up into its common prefix, and the scan jumps past that prefix so a
 * directory of a million keys costs one row. Common prefixes count towards max-keys, as in S3.
 */
export async function listObjects(meta: MetaStore, q: ListQuery): Promise<ListPage> {
  const page: ListPage = { objects: [], commonPrefixes: [], truncated: false };
  if (q.maxKeys <= 0) return page;
  const commonPrefixOf = (key: string): string | undefined => {
    if (!q.delimiter) return undefined;
    const i = key.indexOf(q.delimiter, q.prefix.length);
    return i < 0 ? undefined : key.slice(0, i + q.delimiter.length);
  };

  let cursor = q.after;
  // A marker that is itself a common prefix (a previous page's last entry) resumes after its subtree.
  if (cursor !== undefined && cursor.startsWith(q.prefix) && commonPrefixOf(cursor) === cursor) cursor = beyondPrefix(cursor);
  if (cursor !== undefined && cursor < q.prefix) cursor = undefined;

  for (;;) {
    const batch = await meta.objects.list({ bucket: q.bucket, prefix: q.prefix || undefined, after: cursor, limit: pageSize });
    let jumped = false;
    for (const object of batch) {
      const cp = commonPrefixOf(object.key);
      if (cp !== undefined && cp === page.commonPrefixes.at(-1)) continue;
      if (page.objects.length + page.commonPrefixes.length === q.maxKeys) {
        page.truncated = true;
        return page;
      }
      if (cp !== undefined) {
        page.commonPrefixes.push(cp);
        page.last = cp;
        cursor = beyondPrefix(cp);
        jumped = true;
        break; // re-query from beyond the common prefix
      }
      page.objects.push(object);
      page.last = object.key;
      cursor = object.key;
    }
    if (!jumped && batch.length < pageSize) return page;
  }
}
