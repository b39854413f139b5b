import { open, rm } from 'node:fs/promises';
import { freePort } from './net.ts';

/** Thrown by a service's launch when its port was taken between freePort() and its bind. */
export class PortInUse extends Error {}

/**
 * Launches a service on a free loopback port, trying other ports when the chosen one was taken in the
 * meantime (`launch` throws PortInUse), up to three times. On failure `dir` (the service's temp home) is
 * removed; `beforeRetry` clears what a failed attempt left in it.
 */
export async function onFreePort<T>(dir: string, launch: (port: number) => Promise<T>, beforeRetry?: () => Promise<void>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(await freePort());
    } catch (err) {
      if (!(err instanceof PortInUse) || attempt === 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      await beforeRetry?.();
    }
  }
}

/** The last `lines` lines of a log file (reading at most its last 64 KiB), for failure messages. */
export async function tailOf(file: string, lines: number): Promise<string> {
  try {
    const handle = await open(file, 'r');
    try {
      const { size } = await handle.stat();
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').split('\n').slice(-lines - 1).join('\n');
    } finally {
      await handle.close();
    }
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  }
}
