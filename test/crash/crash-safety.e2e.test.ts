import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { freePort, spawnServer, type ServerProcess } from '../helpers/server.ts';
import { describeKill, MiB, objectBytes, partBytes, planCycle, type CompleteKill, type CyclePlan, type PutKill } from './plan.ts';
import {
  auditDataDir,
  blobPath,
  BufferReader,
  describeSeen,
  describeVersion,
  describeVersionBrief as brief,
  fileAppears,
  matchVersion,
  readBack,
  RunReader,
  runBytes,
  s3Client,
  sleepUntil,
  StreamedRequest,
  type ByteRun,
  type Version,
} from './harness.ts';

/*
 * Crash safety: an object is never visible half-written, replacing one is atomic, an acknowledged
 * write survives (DESIGN.md). Each cycle brings three writes to a chosen point, SIGKILLs the server
 * there, restarts it on the same data dir and checks what it shows:
 * - fresh-NN.bin, a ~64 MiB PUT of a new key: absent, or whole;
 * - overwrite.bin, a ~64 MiB PUT over a known version: that version or the new one, whole;
 * - multipart.bin, CompleteMultipartUpload (5 + 5 + 1-3 MiB) over a known version: the previous or
 *   the new object; if the previous, the upload is still listed with its parts, and is then
 *   completed again or aborted.
 * "Whole" is checked byte for byte: sha256 and length of GET, size and ETag of HEAD, GET and
 * ListObjectsV2. Where the kill lands, per write (planCycle, from a seeded PRNG):
 * - mid-body: after exactly N body bytes were sent: 0, all but the last, or anywhere between;
 * - after-body / after-request: d ms after the last byte, d spread over 0-1.5x the time the server
 *   takes to answer (median so far), so kills land while it hashes, fsyncs, moves the blob,
 *   commits, and after it answered;
 * - after-blob: d ms after the new blob appeared under its digest (the test watches the file), so
 *   the kill lands at the object commit itself, whatever the load; the Complete is sent then too;
 * - after-ack: once the 200 arrived, which the restarted server must honour.
 * One kill per cycle serves all three writes (they touch different keys), so a cycle costs one
 * restart (2-6 s of tsx start-up): 20 cycles took 110-200 s on 2 cores shared with other work.
 * Bodies are AES-CTR keystreams of a seed: generated again to compare, never held whole.
 * At the end: every key byte for byte; the data dir holds only what the server may leave there;
 * staging leftovers are counted, and a GC pass (grace 0) removes them and every unreferenced blob.
 */

const cycles = Number(process.env.ASTORE_TEST_CRASH_CYCLES ?? 20);
const seedBase = process.env.ASTORE_TEST_CRASH_SEED ?? 'astore-crash-1';
/** Held back until release in the after-body modes: small enough to go out in one write. */
const tailBytes = 64 * 1024;
/** Sent in the last moments before a mid-body kill. */
const runUpBytes = 4 * MiB;
const bucket = 'crash';
const overwriteKey = 'overwrite.bin';
const multipartKey = 'multipart.bin';

// ------------------------------------------------------------------------------------------ state

const root = await mkdtemp(join(tmpdir(), 'astore-crash-'));
const dataDir = join(root, 'data');
/** TMPDIR of the server: must stay empty (nothing may be written outside the data dir). */
const serverTmp = join(root, 'server-tmp');
await mkdir(serverTmp);
let server: ServerProcess | undefined;
let client: S3Client | undefined;
const inFlight: StreamedRequest[] = [];
/** Every key known to be whole, with the version it must show. */
const model = new Map<string, Version>();

after(async () => {
  for (const r of inFlight) r.destroy();
  client?.destroy();
  await server?.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

const startMs: number[] = [];

async function start(env: NodeJS.ProcessEnv = {}): Promise<void> {
  const t0 = performance.now();
  server = await spawnServer(dataDir, await freePort(), { TMPDIR: serverTmp, ...env });
  startMs.push(performance.now() - t0);
  client?.destroy();
  client = s3Client(server.endpoint);
}

const s3 = () => client!;
const port = () => Number(new URL(server!.endpoint).port);

function fail(message: string): never {
  const log = server?.stderr().trim();
  assert.fail(log ? `${message}\n  server stderr (tail):\n${log}` : message);
}

// --------------------------------------------------------------------------------------- writes

function openPut(key: string, version: Version, unsigned: boolean): Promise<StreamedRequest> {
  return StreamedRequest.open(port(), {
    method: 'PUT',
    path: `/${bucket}/${key}`,
    body: new RunReader(version.parts[0]!),
    payloadSha256: unsigned ? 'UNSIGNED-PAYLOAD' : version.sha256,
    headers: { 'content-type': 'application/octet-stream' },
  });
}

function openComplete(uploadId: string, version: Version): Promise<StreamedRequest> {
  const parts = version.partEtags.map((etag, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${etag}</ETag></Part>`);
  const xml = Buffer.from(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${parts.join('')}</CompleteMultipartUpload>`);
  return StreamedRequest.open(port(), {
    method: 'POST',
    path: `/${bucket}/${multipartKey}`,
    query: { uploadId },
    body: new BufferReader(xml),
    payloadSha256: createHash('sha256').update(xml).digest('hex'),
  });
}

/** Creates the upload and sends every part (each acknowledged, with the ETag it must have). */
async function uploadParts(version: Version): Promise<string> {
  const created = await s3().send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: multipartKey }));
  const UploadId = created.UploadId ?? fail('CreateMultipartUpload returned no UploadId');
  for (const [i, run] of version.parts.entries()) {
    const part = await s3().send(new UploadPartCommand({ Bucket: bucket, Key: multipartKey, UploadId, PartNumber: i + 1, Body: runBytes(run) }));
    assert.equal(part.ETag, version.partEtags[i], `UploadPart ${i + 1} of ${version.label}`);
  }
  return UploadId;
}

/** The 200 a write got, checked; false when it got none (cut by the kill). */
function acknowledged(context: string, name: string, request: StreamedRequest, kill: PutKill | CompleteKill, version: Version): boolean {
  const response = request.response;
  if (!response) return false;
  if (kill.at === 'mid-body') fail(`${context}: ${name} was answered (${response.status}) although only ${request.bytesSent} body bytes were sent: ${response.body}`);
  if (response.status !== 200) fail(`${context}: ${name} was refused with ${response.status}: ${response.body}`);
  const etag = response.headers.etag ?? /<ETag>(.*?)<\/ETag>/.exec(response.body)?.[1]?.replaceAll('&quot;', '"');
  if (etag !== version.etag) fail(`${context}: ${name} was acknowledged with ETag ${etag}, expected ${version.etag}: ${response.body}`);
  return true;
}

/**
 * Releases the held writes so that each meets the kill at its planned point, then SIGKILLs the
 * server. The kill lands at t0 + lead: t0 is now, or when the blob of an after-blob write appears
 * (it and after-ack writes are released first; the kill also waits for the after-ack 200s).
 * After-body writes get their last bytes `delayMs` before the kill; mid-body ones stream their
 * run-up so that byte N goes out just before it, while the server is still taking bytes in.
 * Returns when the after-blob write's blob appeared.
 */
async function releaseAndKill(writes: Array<{ request: StreamedRequest; kill: PutKill | CompleteKill; blob?: string }>): Promise<number | undefined> {
  const early = writes.filter(({ kill }) => kill.at === 'after-ack' || kill.at === 'after-blob').map(({ request }) => request.finish());
  let t0 = performance.now();
  const anchor = writes.find(({ kill }) => kill.at === 'after-blob');
  const blobSeenAt = anchor && (await fileAppears(anchor.blob!, anchor.request.settled));
  if (anchor && blobSeenAt === undefined) fail(`the blob ${anchor.blob} of an after-blob write never appeared; response: ${anchor.request.response?.status}`);
  t0 = blobSeenAt ?? t0;
  const lead = Math.max(0, ...writes.map(({ kill }) => ('delayMs' in kill ? kill.delayMs : 0)));
  await Promise.all([
    ...early,
    ...writes.map(({ request, kill }) => {
      if (kill.at === 'mid-body') return request.sendPaced(kill.bytes, t0 + lead);
      if (kill.at === 'after-body' || kill.at === 'after-request') return sleepUntil(t0 + lead - kill.delayMs).then(() => request.finish());
      return undefined;
    }),
  ]);
  await sleepUntil(t0 + lead);
  const acks = writes.filter(({ kill }) => kill.at === 'after-ack').map(({ request }) => request.answered);
  const waited = await Promise.race([Promise.all(acks), sleep(120_000, 'timeout' as const, { ref: false })]);
  if (waited === 'timeout') fail('an after-ack write got no response in 120 s');
  await server!.kill('SIGKILL');
  await Promise.race([Promise.all(writes.map(({ request }) => request.settled)), sleep(5000, undefined, { ref: false })]);
  for (const r of inFlight.splice(0)) r.destroy();
  return blobSeenAt;
}

// ---------------------------------------------------------------------------------------- checks

/** `key` after a restart: `previous` (or absent when undefined) or `next`, whole; `next` if it was acknowledged. */
async function expectVersion(context: string, key: string, previous: Version | undefined, next: Version, acked: boolean): Promise<Version | undefined> {
  const seen = await readBack(s3(), bucket, key);
  const found = matchVersion(seen, [previous, next]);
  const absent = !seen.head && !seen.get && seen.errors.length === 0;
  if (!found && !(absent && previous === undefined)) {
    fail(`${context}: ${key} is neither ${previous ? 'the previous version' : 'absent'} nor the new one, whole\n  seen: ${describeSeen(seen)}\n  previous: ${brief(previous)}\n  new: ${brief(next)}`);
  }
  if (acked && found !== next) fail(`${context}: lost an acknowledged write: ${key} got a 200 for ${brief(next)} before the kill, but shows ${brief(found)}`);
  return found;
}

async function listedUploads(): Promise<string[]> {
  const { Uploads = [], IsTruncated } = await s3().send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  assert.ok(!IsTruncated);
  return Uploads.map((u) => `${u.Key} ${u.UploadId}`);
}

/** An upload whose Complete was cut is still there whole; it is then completed again or aborted. */
async function resolveUpload(context: string, uploadId: string, next: Version, landed: boolean, retry: boolean): Promise<'landed' | 'completed again' | 'aborted'> {
  const listed = (await listedUploads()).includes(`${multipartKey} ${uploadId}`);
  if (landed) {
    if (listed) fail(`${context}: ${multipartKey} shows the completed object, yet upload ${uploadId} is still listed`);
    return 'landed';
  }
  if (!listed) fail(`${context}: the Complete did not land (${multipartKey} shows the previous version), yet upload ${uploadId} is gone`);
  const { Parts = [] } = await s3().send(new ListPartsCommand({ Bucket: bucket, Key: multipartKey, UploadId: uploadId }));
  assert.deepEqual(
    Parts.map((p) => `${p.PartNumber} ${p.Size} ${p.ETag}`),
    next.parts.map((run, i) => `${i + 1} ${run.size} ${next.partEtags[i]}`),
    `${context}: the parts of the interrupted upload ${uploadId}`,
  );
  if (!retry) {
    await s3().send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: multipartKey, UploadId: uploadId }));
    return 'aborted';
  }
  const parts = next.partEtags.map((ETag, i) => ({ PartNumber: i + 1, ETag }));
  const done = await s3().send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: multipartKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  assert.equal(done.ETag, next.etag, `${context}: completing ${uploadId} again after the restart`);
  const seen = await readBack(s3(), bucket, multipartKey);
  if (matchVersion(seen, [next]) !== next) fail(`${context}: completing ${uploadId} again after the restart left ${describeSeen(seen)}, expected ${brief(next)}`);
  return 'completed again';
}

/** ListObjectsV2 shows exactly the keys known to be whole, each with its size and ETag. */
async function expectListing(context: string): Promise<void> {
  const listed: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3().send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) listed.push(`${o.Key} ${o.Size} ${o.ETag}`);
    token = page.NextContinuationToken;
  } while (token);
  const expected = [...model].map(([key, v]) => `${key} ${v.size} ${v.etag}`).sort();
  assert.deepEqual(listed.sort(), expected, `${context}: ListObjectsV2 differs from the objects known to be whole`);
  assert.deepEqual(await listedUploads(), [], `${context}: multipart uploads left listed`);
}

const referencedBlobs = () => new Set([...model.values()].flatMap((v) => v.blobDigests));

// ------------------------------------------------------------------------------------------ cycle

const tally = new Map<string, number>();
/** How long the server took to answer, per kind of write, from the last body byte (put, complete) or from the blob's appearance: what delays scale with. */
const answers = { put: [] as number[], blob: [] as number[], complete: [] as number[] };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const count = (what: string) => tally.set(what, (tally.get(what) ?? 0) + 1);

async function runCycle(plan: CyclePlan): Promise<void> {
  const c = plan.cycle;
  const context = `cycle ${c} (seed ${seedBase}; kill: fresh ${describeKill(plan.fresh)}, overwrite ${describeKill(plan.overwrite)}, complete ${describeKill(plan.complete)})`;
  const freshKey = `fresh-${String(c).padStart(2, '0')}.bin`;
  const previous = { overwrite: model.get(overwriteKey)!, multipart: model.get(multipartKey)! };
  const next = {
    fresh: plan.freshDedupe
      ? { ...previous.overwrite, label: `${freshKey} (the bytes of ${previous.overwrite.label})` }
      : describeVersion(`${freshKey} of cycle ${c}`, [{ seed: `${seedBase}/fresh/${c}`, size: plan.freshSize }], false),
    overwrite: describeVersion(`${overwriteKey} of cycle ${c}`, [{ seed: `${seedBase}/overwrite/${c}`, size: plan.overwriteSize }], false),
    multipart: describeVersion(`${multipartKey} of cycle ${c}`, multipartRuns(c, plan.lastPartSize), true),
  };
  const uploadId = await uploadParts(next.multipart);

  const fresh = await openPut(freshKey, next.fresh, plan.unsignedPayload);
  const overwrite = await openPut(overwriteKey, next.overwrite, plan.unsignedPayload);
  const complete = await openComplete(uploadId, next.multipart);
  inFlight.push(fresh, overwrite, complete);
  const holdAt = (kill: PutKill, size: number) => (kill.at === 'mid-body' ? Math.max(0, kill.bytes - runUpBytes) : size - tailBytes);
  await Promise.all([fresh.sendUntil(holdAt(plan.fresh, next.fresh.size)), overwrite.sendUntil(holdAt(plan.overwrite, next.overwrite.size))]);
  await sleep(100); // the server takes in what was sent and waits for the rest
  if (fresh.response || overwrite.response || complete.response) fail(`${context}: a write was answered before its body was complete`);
  const blobSeenAt = await releaseAndKill([
    { request: fresh, kill: plan.fresh, blob: blobPath(dataDir, next.fresh.blobDigests[0]!) },
    { request: overwrite, kill: plan.overwrite, blob: blobPath(dataDir, next.overwrite.blobDigests[0]!) },
    { request: complete, kill: plan.complete },
  ]);
  const acked = {
    fresh: acknowledged(context, `PUT ${freshKey}`, fresh, plan.fresh, next.fresh),
    overwrite: acknowledged(context, `PUT ${overwriteKey}`, overwrite, plan.overwrite, next.overwrite),
    complete: acknowledged(context, `CompleteMultipartUpload ${multipartKey}`, complete, plan.complete, next.multipart),
  };
  for (const [request, kind] of [[fresh, 'put'], [overwrite, 'put'], [complete, 'complete']] as const) {
    if (request.releasedAt !== undefined && request.answeredAt !== undefined) answers[kind].push(request.answeredAt - request.releasedAt);
  }
  const anchor = plan.fresh.at === 'after-blob' ? fresh : plan.overwrite.at === 'after-blob' ? overwrite : undefined;
  if (anchor?.answeredAt !== undefined && blobSeenAt !== undefined) answers.blob.push(anchor.answeredAt - blobSeenAt);

  await start();
  const audit = await auditDataDir(dataDir);
  if (audit.tmpFiles.length || audit.unexpected.length) fail(`${context}: after the restart the data dir holds ${[...audit.tmpFiles, ...audit.unexpected].join(', ')}`);
  const freshFound = await expectVersion(context, freshKey, undefined, next.fresh, acked.fresh);
  const overwriteFound = await expectVersion(context, overwriteKey, previous.overwrite, next.overwrite, acked.overwrite);
  const multipartFound = await expectVersion(context, multipartKey, previous.multipart, next.multipart, acked.complete);
  const upload = await resolveUpload(context, uploadId, next.multipart, multipartFound === next.multipart, plan.retryComplete);

  if (freshFound) model.set(freshKey, freshFound);
  model.set(overwriteKey, overwriteFound!);
  model.set(multipartKey, upload === 'completed again' ? next.multipart : multipartFound!);
  await expectListing(context);

  const outcome = (found: Version | undefined, newVersion: Version, ack: boolean) => (found !== newVersion ? (found ? 'previous' : 'absent') : ack ? 'new, acknowledged' : 'new');
  count(`fresh ${outcome(freshFound, next.fresh, acked.fresh)}`);
  count(`overwrite ${outcome(overwriteFound, next.overwrite, acked.overwrite)}`);
  count(`complete ${upload === 'landed' ? outcome(multipartFound, next.multipart, acked.complete) : `previous, upload ${upload}`}`);
}

/**
 * Sends all but the last bytes, lets the server take them in, sends the rest: ms from there to the
 * 200, and from the appearance of the blob at `blob` (if given) to the 200.
 */
async function timedWrite(request: StreamedRequest, holdAt: number, blob?: string): Promise<{ answerMs: number; blobMs?: number }> {
  await request.sendUntil(holdAt);
  await sleep(100);
  const t0 = performance.now();
  const [blobSeenAt] = await Promise.all([blob && fileAppears(blob, request.settled), request.finish()]);
  const response = await request.answered;
  if (response.status !== 200) fail(`setup write refused: ${response.status} ${response.body}`);
  return { answerMs: request.answeredAt! - t0, blobMs: blobSeenAt ? request.answeredAt! - blobSeenAt : undefined };
}

function multipartRuns(c: number | string, lastPartSize: number): ByteRun[] {
  return [partBytes, partBytes, lastPartSize].map((size, i) => ({ seed: `${seedBase}/multipart/${c}/${i + 1}`, size }));
}

// ------------------------------------------------------------------------------------------- test

test(`crash safety: SIGKILL during a large upload, an overwrite and CompleteMultipartUpload, ${cycles} cycles`, { timeout: 20 * 60_000 }, async (t) => {
  const began = Date.now();
  await start();
  await s3().send(new CreateBucketCommand({ Bucket: bucket }));

  // The previous versions, written whole, twice each: the second write of each measures how long
  // the (by then warm) server takes from the last body byte to its answer.
  for (const round of ['warm-up', 'initial']) {
    const put = describeVersion(`${overwriteKey} ${round}`, [{ seed: `${seedBase}/overwrite/${round}`, size: objectBytes }], false);
    const putTimes = await timedWrite(await openPut(overwriteKey, put, false), put.size - tailBytes, blobPath(dataDir, put.blobDigests[0]!));
    const mpu = describeVersion(`${multipartKey} ${round}`, multipartRuns(round, 2 * MiB), true);
    const completeTimes = await timedWrite(await openComplete(await uploadParts(mpu), mpu), 0);
    model.set(overwriteKey, put).set(multipartKey, mpu);
    if (round === 'initial') {
      answers.put.push(putTimes.answerMs);
      answers.blob.push(putTimes.blobMs ?? fail('the blob of the initial PUT never appeared'));
      answers.complete.push(completeTimes.answerMs);
    }
  }
  await expectListing('initial versions');

  let passed = 0;
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      await runCycle(planCycle(cycle, seedBase, { put: median(answers.put), blob: median(answers.blob), complete: median(answers.complete) }));
      passed++;
    }
  } finally {
    console.log(`crash-safety: ${passed}/${cycles} cycles passed`);
  }
  const cyclesMs = Date.now() - began;

  // A last crash with nothing in flight, then: what is left besides the objects.
  await server!.kill('SIGKILL');
  const leftovers = await auditDataDir(dataDir);
  assert.deepEqual(leftovers.unexpected, [], 'files in the data dir that the server should not have left');
  assert.deepEqual(leftovers.tmpFiles, [], 'temp files of puts although none was in flight at the last kill');
  const referenced = referencedBlobs();
  for (const digest of referenced) assert.ok(leftovers.blobFiles.has(digest), `blob ${digest} named by an object is missing`);
  const garbageBlobs = [...leftovers.blobFiles.keys()].filter((d) => !referenced.has(d)).length;

  // GC with no grace removes every staging leftover and every unreferenced blob, and nothing else.
  await start({ ASTORE_GC__ENABLED: 'true', ASTORE_GC__GRACE_SECONDS: '0', ASTORE_GC__INTERVAL_SECONDS: '1' });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const audit = await auditDataDir(dataDir);
    const blobs = [...audit.blobFiles.keys()].sort();
    if (audit.stagingFiles.length === 0 && audit.unexpected.length === 0 && JSON.stringify(blobs) === JSON.stringify([...referenced].sort())) break;
    if (Date.now() > deadline) {
      fail(`GC did not converge in 60 s: staging ${audit.stagingFiles.length}, unexpected ${audit.unexpected.join(', ')}, blobs ${blobs.length} (referenced ${referenced.size})`);
    }
    await sleep(250);
  }
  for (const [key, version] of model) {
    const seen = await readBack(s3(), bucket, key);
    if (matchVersion(seen, [version]) !== version) fail(`after GC: ${key} shows ${describeSeen(seen)}, expected ${brief(version)}`);
  }
  await expectListing('after GC');
  await server!.kill('SIGTERM');

  const db = new Database(join(dataDir, 'meta.db'), { readonly: true, fileMustExist: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    assert.deepEqual(db.pragma('foreign_key_check'), []);
    assert.deepEqual(db.prepare('select digest from blobs order by digest').pluck().all(), [...referenced].sort(), 'blob rows after GC');
  } finally {
    db.close();
  }
  // tsx-*: the TypeScript loader's transform cache (the test runs the server from source), not the server's.
  const outside = (await readdir(serverTmp)).filter((name) => !name.startsWith('tsx-'));
  assert.deepEqual(outside, [], 'the server wrote to its TMPDIR, outside the data dir');

  t.diagnostic(
    `crash-safety: ${[...tally].sort().map(([what, n]) => `${what}: ${n}`).join('; ')}; ` +
      `at the end ${leftovers.stagingFiles.length} staging leftovers and ${garbageBlobs} unreferenced blobs, all removed by GC; ` +
      `median answer times: put ${median(answers.put).toFixed(1)} ms after the last byte, ${median(answers.blob).toFixed(1)} ms after its blob appeared; ` +
      `complete ${median(answers.complete).toFixed(1)} ms; ` +
      `setup and cycles took ${(cyclesMs / 1000).toFixed(0)} s, of which server start-up ${(startMs.reduce((a, b) => a + b, 0) / 1000).toFixed(0)} s`,
  );
});
