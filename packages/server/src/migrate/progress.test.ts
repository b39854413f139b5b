import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProgressDisplay, RateMeter, formatBytes, formatDuration, render, type MigrationProgress } from './progress.ts';

const blobs = (over: Partial<Extract<MigrationProgress, { phase: 'blobs' }>> = {}): MigrationProgress => ({
  phase: 'blobs',
  done: 0,
  total: 10,
  doneBytes: 0,
  totalBytes: 100 * 1024 ** 2,
  copied: 0,
  present: 0,
  problems: 0,
  transferredBytes: 0,
  ...over,
});

describe('progress formatting', () => {
  test('bytes in binary units, three significant digits', () => {
    assert.deepEqual(
      [0, 1023, 1024, 1536, 10.25 * 1024 ** 2, 123.4 * 1024 ** 3, 5 * 1024 ** 4].map(formatBytes),
      ['0 B', '1023 B', '1.00 KiB', '1.50 KiB', '10.3 MiB', '123 GiB', '5.00 TiB'],
    );
  });

  test('durations as m:ss or h:mm:ss, rounded up', () => {
    assert.deepEqual([0, 1, 7_000, 59_001, 754_000, 3_723_000].map(formatDuration), ['0:00', '0:01', '0:07', '1:00', '12:34', '1:02:03']);
  });

  test('a blob line has counts, bytes, rate and the ETA of the bytes left at that rate', () => {
    const line = render(blobs({ done: 4, copied: 3, present: 1, doneBytes: 40 * 1024 ** 2 }), 20 * 1024 ** 2);
    assert.equal(line, 'blobs  4/10  40.0 MiB/100 MiB (40%)  20.0 MiB/s  ETA 0:03  (copied 3, present 1)');
    assert.match(render(blobs({ problems: 2 }), 0), /ETA \? {2}\(copied 0, present 0, problems 2\)$/);
  });

  test('a metadata line names the table and counts rows', () => {
    const line = render({ phase: 'metadata', table: 'objects', tableNumber: 3, tables: 27, rows: 1500, totalRows: 6000 }, 0);
    assert.equal(line, 'metadata  table 3/27 objects  rows 1,500/6,000 (25%)');
  });
});

describe('RateMeter', () => {
  test('measures over the sliding window only', () => {
    let now = 0;
    const meter = new RateMeter(5_000, () => now);
    for (; now <= 10_000; now += 1_000) meter.sample(now < 5_000 ? now * 1000 : 5_000_000 + (now - 5_000) * 100);
    // The first 5 s ran at 1 MB/s, the last 5 s at 100 KB/s: the window sees only the latter.
    assert.ok(Math.abs(meter.perSecond() - 100_000) < 1, String(meter.perSecond()));
  });
});

describe('ProgressDisplay', () => {
  test('on a terminal: one line redrawn in place, throttled, ended by the phase summary', () => {
    let now = 0;
    const written: string[] = [];
    const display = new ProgressDisplay({ isTTY: true, columns: 200, write: (text) => written.push(text) }, { now: () => now });
    display.update(blobs({ done: 1 }));
    now += 50;
    display.update(blobs({ done: 2 })); // within 200 ms: not drawn
    now += 200;
    display.update(blobs({ done: 3 }));
    display.finish('blobs copied');
    assert.equal(written.length, 4);
    assert.ok(written.slice(0, 3).every((text) => text.startsWith('\r') && text.endsWith('\x1b[K')));
    assert.match(written[0]!, /blobs {2}1\/10/);
    assert.match(written[1]!, /blobs {2}3\/10/);
    assert.equal(written[3], '\n');

    // A terminal that does not say its width (columns 0) is taken as 120 wide, not as zero.
    const unsized: string[] = [];
    new ProgressDisplay({ isTTY: true, columns: 0, write: (text) => unsized.push(text) }).update(blobs());
    assert.match(unsized[0]!, /ETA \? {2}\(copied 0, present 0\)\x1b\[K$/);
  });

  test('elsewhere: a plain line per interval', () => {
    let now = 0;
    const written: string[] = [];
    const display = new ProgressDisplay({ write: (text) => written.push(text) }, { now: () => now, intervalMs: 10_000 });
    for (let i = 0; i < 30; i++, now += 1_000) display.update(blobs({ done: i % 10 }));
    assert.equal(written.length, 3);
    assert.ok(written.every((line) => line.endsWith('\n') && !line.includes('\r')));
  });
});
