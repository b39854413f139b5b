import { randomUUID } from 'node:crypto';
import { lstat, mkdir, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { close, createReadStream, createWriteStream, fstat, fsync, open as openFd } from 'node:fs';
import { debuglog, promisify } from 'node:util';
import {
  BlobNotFoundError,
  validateBlobKey,
  type BlobListing,
  type BlobStat,
  type BlobStore,
  type ByteRange,
} from './types.ts';

const debug = debuglog('astore:blob:fs');

// Plain file descriptors on the hot paths (every GET opens a blob, every put fsyncs a directory):
// FileHandle objects cost noticeably more main-thread time per open/close.
const openP = promisify(openFd);
const fstatP = promisify(fstat);
const fsyncP = promisify(fsync);
const closeP = promisify(close);

/** Read chunk size: fewer, larger reads for big blobs; small blobs read in one go anyway. */
const readHighWaterMark = 256 * 1024;

/** In-flight puts live here; never a key (keys whose first segment is `.tmp` are refused). */
const TMP_DIR = '.tmp';
const keySegment = /^[A-Za-z0-9._:-]+$/;
const prefixTail = /^[A-Za-z0-9._:-]*$/;

export interface FsBlobStoreOptions {
  /** Root directory; created (mode 0700) when missing. */
  path: string;
}

/**
 * BlobStore on a local filesystem: the blob at key `a/b/c` is the file `<root>/a/b/c`.
 *
 * Durability contract (what to check when a blob "came back" or "went missing" after a crash):
 * - put writes `<root>/.tmp/<uuid>`, fsyncs the file, renames it over `<root>/<key>`, then fsyncs the
 *   key's directory (and the parents of any directory it had to create). rename(2) is atomic, so a
 *   reader sees the old file or the new one, never a mix; when put resolves the bytes and the
 *   directory entry are on disk. A crash before the rename leaves only a temp file, removed at open.
 * - move is rename + fsync of both directories: after a crash the blob is at `from` or at `to`.
 * - delete is unlink without fsync: after a crash a deleted blob may reappear; GC deletes it again.
 * - Directories are never removed, so a put never races an rmdir.
 *
 * Limits of this backend: a key cannot be both a blob and a directory of other keys (`a` and `a/b`);
 * segments longer than the filesystem's NAME_MAX cannot be stored; on a case-insensitive filesystem
 * keys differing only in case collide; one process per root (open clears `.tmp`).
 */
/** Bytes a put may buffer ahead of the disk: enough to batch writes, small enough to keep memory flat. */
const writeHighWaterMark = 512 * 1024;

export class FsBlobStore implements BlobStore {
  readonly name = 'fs';
  private readonly tmpDir: string;

  private constructor(readonly root: string) {
    this.tmpDir = join(root, TMP_DIR);
  }

  /** Opens (creating when missing) the store at `options.path` and removes leftover temp files. */
  static async open(options: FsBlobStoreOptions): Promise<FsBlobStore> {
    const store = new FsBlobStore(resolve(options.path));
    await mkdir(store.root, { recursive: true, mode: 0o700 });
    // No put is in flight at start-up, so everything in .tmp is the remains of a crash.
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true, mode: 0o700 });
    debug('opened %s', store.root);
    return store;
  }

  async stat(key: string, signal?: AbortSignal): Promise<BlobStat | null> {
    const path = this.pathOf(key);
    signal?.throwIfAborted();
    try {
      const s = await stat(path);
      return s.isFile() ? { size: s.size } : null;
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
  }

  async get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const path = this.pathOf(key);
    signal?.throwIfAborted();
    const fd = await openP(path, 'r').catch((err: unknown) => {
      throw isAbsent(err) ? new BlobNotFoundError(key) : err;
    });
    try {
      // open(2) succeeds on a directory; a directory is not a blob.
      if (!(await fstatP(fd)).isFile()) throw new BlobNotFoundError(key);
      const stream = createReadStream('', { fd, autoClose: true, highWaterMark: readHighWaterMark, ...(range ? { start: range.start, end: range.end } : {}) });
      return signal ? addAbortSignal(signal, stream) : stream;
    } catch (err) {
      await closeP(fd).catch(() => {});
      throw err;
    }
  }

  async put(key: string, body: Readable, signal?: AbortSignal): Promise<BlobStat> {
    const target = this.pathOf(key);
    signal?.throwIfAborted();
    const tmp = join(this.tmpDir, randomUUID());
    let size = 0;
    try {
      // A write stream batches whatever arrived while the previous write(2) ran into one writev(2), so
      // the socket keeps flowing during disk writes; it retries partial writes, and `flush` fsyncs the
      // file before it closes (the pipeline resolves after that close).
      const sink = createWriteStream(tmp, { flags: 'wx', mode: 0o600, flush: true, highWaterMark: writeHighWaterMark });
      await pipeline(body, sink, { signal });
      size = sink.bytesWritten;
      signal?.throwIfAborted();
      await this.mkdirp(dirname(target));
      await rename(tmp, target);
    } catch (err) {
      debug('put %s failed, removing %s: %o', key, tmp, err);
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
    // Past the rename the new blob is visible; if this fsync fails the put rejects but stays visible.
    await fsyncDir(dirname(target));
    return { size };
  }

  async move(from: string, to: string, signal?: AbortSignal): Promise<void> {
    const source = this.pathOf(from);
    const target = this.pathOf(to);
    signal?.throwIfAborted();
    const s = await lstat(source).catch((err: unknown) => {
      if (isAbsent(err)) return null;
      throw err;
    });
    if (!s?.isFile()) throw new BlobNotFoundError(from);
    await this.mkdirp(dirname(target));
    await rename(source, target).catch((err: unknown) => {
      throw isAbsent(err) ? new BlobNotFoundError(from) : err;
    });
    // The target's directory entry must be durable; the source's removal need not be (if a crash
    // brings the old name back, it names a complete copy, which its owner — GC for staging — removes).
    await fsyncDir(dirname(target));
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const path = this.pathOf(key);
    signal?.throwIfAborted();
    try {
      await unlink(path);
    } catch (err) {
      if (isAbsent(err)) return;
      // unlink(2) on a directory: EISDIR on Linux, EPERM on macOS. A directory is not a blob.
      if ((errorCode(err) === 'EISDIR' || errorCode(err) === 'EPERM') && (await lstat(path)).isDirectory()) return;
      throw err;
    }
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing> {
    validateBlobPrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const dirKey = cut >= 0 ? prefix.slice(0, cut) : '';
    const dirPath = dirKey === '' ? this.root : this.pathOf(dirKey);
    yield* this.walk(dirPath, dirKey, prefix.slice(cut + 1), signal);
  }

  async close(): Promise<void> {}

  /** Keys under `dirKey` whose next segment starts with `namePrefix`, depth first. */
  private async *walk(dirPath: string, dirKey: string, namePrefix: string, signal?: AbortSignal): AsyncGenerator<BlobListing> {
    signal?.throwIfAborted();
    const dir = await opendir(dirPath).catch((err: unknown) => {
      if (isAbsent(err)) return null;
      throw err;
    });
    if (!dir) return;
    for await (const entry of dir) {
      signal?.throwIfAborted();
      if (!entry.name.startsWith(namePrefix) || !keySegment.test(entry.name)) continue;
      if (dirKey === '' && entry.name === TMP_DIR) continue;
      const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
      const path = join(dirPath, entry.name);
      if (entry.isDirectory()) {
        yield* this.walk(path, key, '', signal);
      } else if (entry.isFile()) {
        const s = await stat(path).catch((err: unknown) => {
          if (isAbsent(err)) return null; // deleted while listing
          throw err;
        });
        if (s) yield { key, size: s.size, modifiedAt: s.mtime };
      }
    }
  }

  /** The file for `key`; refuses invalid keys, the temp dir, and anything resolving outside root. */
  private pathOf(key: string): string {
    validateBlobKey(key);
    if (key === TMP_DIR || key.startsWith(`${TMP_DIR}/`)) throw new Error(`invalid blob key: ${JSON.stringify(key)} (reserved)`);
    const path = resolve(this.root, ...key.split('/'));
    if (!path.startsWith(this.root + sep)) throw new Error(`invalid blob key: ${JSON.stringify(key)} (outside root)`);
    return path;
  }

  /**
   * mkdir -p, then fsync the parent of every directory it created so their entries are durable.
   * (A directory created by a concurrent put is fsynced by that put, possibly a little later.)
   */
  private async mkdirp(dir: string): Promise<void> {
    const first = await mkdir(dir, { recursive: true, mode: 0o700 });
    if (first === undefined) return;
    for (let d = dir; d.startsWith(this.root + sep); d = dirname(d)) {
      await fsyncDir(dirname(d));
      if (d === first) break;
    }
  }
}

/**
 * Throws unless `prefix` is '' or a prefix of some valid key: every '/'-separated segment but the
 * last is a valid key segment; the last may be partial (empty, or e.g. 'ab' for 'abcdef').
 */
export function validateBlobPrefix(prefix: string): void {
  if (prefix === '') return;
  const cut = prefix.lastIndexOf('/');
  const tail = prefix.slice(cut + 1);
  const headOk = cut < 0 || isValidKey(prefix.slice(0, cut));
  if (!headOk || !prefixTail.test(tail) || prefix.length > 512) {
    throw new Error(`invalid blob key prefix: ${JSON.stringify(prefix)}`);
  }
}

function isValidKey(key: string): boolean {
  try {
    validateBlobKey(key);
    return true;
  } catch {
    return false;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await openP(dir, 'r');
  try {
    await fsyncP(fd);
  } finally {
    await closeP(fd);
  }
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

/** Errors that mean "no blob at this path": missing, a file where a directory was expected, too long. */
function isAbsent(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG';
}
