import { open } from 'node:fs/promises';

/** Makes a new directory entry (a file just created or renamed into `dir`) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
