// Peak RSS of a server process: VmRSS from /proc/<pid>/status polled every ~100 ms on a worker thread
// (its own event loop, so a load generator busy moving bytes does not delay the samples), with a
// per-phase peak the main thread resets and reads through shared memory. Several processes (replicas
// of one server) are sampled together: a sample is the sum of their VmRSS. Linux only.

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

const PHASE_PEAK = 0;
const RUN_PEAK = 1;
const STOP = 2;
const SLOTS = 3;

// Plain JS, evaluated in the worker, so it needs no TypeScript loader there.
const SAMPLER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { pids, intervalMs, shared } = workerData;
const slots = new Int32Array(shared);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const raise = (slot, value) => {
  for (;;) {
    const seen = Atomics.load(slots, slot);
    if (value <= seen || Atomics.compareExchange(slots, slot, seen, value) === seen) return;
  }
};
while (Atomics.load(slots, ${STOP}) === 0) {
  let kib = 0;
  let gone = false;
  for (const pid of pids) {
    try {
      const m = /^VmRSS:\\s+(\\d+) kB/m.exec(readFileSync('/proc/' + pid + '/status', 'utf8'));
      if (m) kib += Number(m[1]);
    } catch { gone = true; } // the process is gone
  }
  if (gone) break;
  raise(${PHASE_PEAK}, kib); raise(${RUN_PEAK}, kib);
  Atomics.wait(sleeper, 0, 0, intervalMs);
}
`;

export class RssSampler {
  private readonly slots: Int32Array;
  private readonly worker: Worker;

  /** The processes sampled; their VmRSS is summed. */
  readonly pids: readonly number[];

  constructor(pids: number | readonly number[], intervalMs = 100) {
    this.pids = typeof pids === 'number' ? [pids] : [...pids];
    const shared = new SharedArrayBuffer(SLOTS * 4);
    this.slots = new Int32Array(shared);
    this.worker = new Worker(SAMPLER_SOURCE, { eval: true, execArgv: [], workerData: { pids: this.pids, intervalMs, shared } });
    this.worker.unref();
  }

  /** The summed VmRSS (KiB) of the processes now; 0 for one that is gone. */
  now(): number {
    return this.pids.reduce((sum, pid) => sum + (currentRssKiB(pid) ?? 0), 0);
  }

  /** The summed VmHWM of the processes; undefined when none can be read. */
  hwmKiB(): number | undefined {
    const values = this.pids.map(hwmKiB).filter((v): v is number => v !== undefined);
    return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
  }

  /** Starts a new per-phase window (the next phasePeakKiB() covers it); returns the RSS now. */
  resetPhase(): number {
    const now = this.now();
    Atomics.store(this.slots, PHASE_PEAK, now);
    return now;
  }

  /** Peak RSS (KiB) since the last resetPhase(), including one sample taken now. */
  phasePeakKiB(): number {
    return Math.max(Atomics.load(this.slots, PHASE_PEAK), this.now());
  }

  runPeakKiB(): number {
    return Math.max(Atomics.load(this.slots, RUN_PEAK), this.now());
  }

  async stop(): Promise<void> {
    Atomics.store(this.slots, STOP, 1);
    await this.worker.terminate();
  }
}

export function currentRssKiB(pid: number): number | undefined {
  return statusField(pid, 'VmRSS');
}

/** The kernel's RSS high-water mark of the process since it started (VmHWM). */
export function hwmKiB(pid: number): number | undefined {
  return statusField(pid, 'VmHWM');
}

function statusField(pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The process that serves `port`: the one, among `rootPid` and its descendants, holding the listening
 * socket. A launcher (a shell, `npx`, a tsx wrapper that spawns a child) would otherwise have its own
 * small RSS measured instead of the server's. Falls back to `rootPid` when no owner is found.
 */
export function servingPid(rootPid: number, port: number): { pid: number; how: string } {
  const inodes = listeningInodes(port);
  const candidates = [rootPid, ...descendants(rootPid)];
  for (const pid of candidates) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1] ?? '')) {
        return { pid, how: pid === rootPid ? 'started process owns the listening socket' : `child ${pid} of ${rootPid} owns the listening socket` };
      }
    }
  }
  return { pid: rootPid, how: `no owner of a socket listening on ${port} found; measuring the started process` };
}

function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const local = cols[1];
      if (cols[3] === '0A' && local?.endsWith(`:${hexPort}`) && cols[9]) inodes.add(cols[9]);
    }
  }
  return inodes;
}

function descendants(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...; comm may contain spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
