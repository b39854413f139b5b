// CPU time of the processes a benchmark run involves (the server, its backends, the load generator
// itself), per phase: on a machine where client and servers share a few cores, where the CPU went says
// more than any single figure. Linux only: utime + stime of /proc/<pid>/stat, plus the same of the
// process's descendants (PostgreSQL runs a process per connection) and of children they already reaped
// (cutime + cstime). A process that is gone counts as 0 from then on.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** One process (and, with `tree`, its descendants) whose CPU time a phase records under `name`. */
export interface CpuTarget {
  name: string;
  pids: number[];
  tree: boolean;
}

/** What one phase used: wall time and CPU seconds per name, `client` being the load generator. */
export interface CpuUsage {
  wallMs: number;
  seconds: Record<string, number>;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Parses `--watch name=pid[+pid...],name=pid`: the load generator's extra processes to account. */
export function parseWatch(spec: string | undefined): CpuTarget[] {
  if (spec === undefined || spec === '') return [];
  return spec.split(',').map((item) => {
    const [name, pids] = item.split('=');
    const list = (pids ?? '').split('+').map(Number);
    if (!name || list.length === 0 || list.some((p) => !Number.isInteger(p) || p <= 0)) {
      throw new Error(`--watch: expected name=pid[+pid],..., got ${item}`);
    }
    return { name, pids: list, tree: true };
  });
}

export class CpuWatch {
  constructor(private readonly targets: readonly CpuTarget[]) {}

  /** CPU seconds so far of every target and of this process, and the time now. */
  snapshot(): { at: number; seconds: Record<string, number> } {
    const seconds: Record<string, number> = {};
    const children = this.targets.some((t) => t.tree) ? childMap() : new Map<number, number[]>();
    for (const target of this.targets) {
      let ticks = 0;
      for (const pid of target.pids) ticks += target.tree ? treeTicks(pid, children) : ownTicks(pid);
      seconds[target.name] = (seconds[target.name] ?? 0) + ticks / ticksPerSecond();
    }
    const own = process.cpuUsage();
    seconds['client'] = (own.user + own.system) / 1e6;
    return { at: performance.now(), seconds };
  }

  /** What was used since `before` (a snapshot). */
  since(before: { at: number; seconds: Record<string, number> }): CpuUsage {
    const now = this.snapshot();
    const seconds: Record<string, number> = {};
    for (const [name, value] of Object.entries(now.seconds)) {
      seconds[name] = Math.max(0, value - (before.seconds[name] ?? 0));
    }
    return { wallMs: now.at - before.at, seconds };
  }
}

/** utime + stime + cutime + cstime of one process, in clock ticks; 0 when it is gone. */
function ownTicks(pid: number): number {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // pid (comm) state ppid ... ; fields 14-17 (1-based) are utime stime cutime cstime. comm may hold
  // spaces and parentheses, so count from after the last ')': there, field 3 (state) is index 0.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(rest[i] ?? 0), 0);
}

function treeTicks(root: number, children: Map<number, number[]>): number {
  let ticks = 0;
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    ticks += ownTicks(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return ticks;
}

function childMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry));
    children.set(ppid, list);
  }
  return children;
}
