// The policy engine's benchmark: decisions per second and per-decision latency with 1,000 realistic
// policies, single-threaded, in about five seconds. Prints a markdown report on stdout.
//
//   npm run bench:policy            (node --import tsx bench/policy/run.ts)
//
// Policies: per-team S3 buckets and OCI repositories (groups), CI roles restricted by source address,
// public prefixes for anonymous readers, time-limited auditors, and guards (denies for contractors and
// for deleting releases). Requests: allowed, denied by default (another team's data) and explicitly
// denied, each checked against its expected outcome before anything is measured. CI requests come from
// a fleet of 16 runner addresses per team (the engine caches parsed client addresses; a first sighting
// costs about 2 µs more).

import { cpus } from 'node:os';
import { parsePolicyDocument } from '../../packages/server/src/core/policy/document.ts';
import { PolicyEngine } from '../../packages/server/src/core/policy/engine.ts';
import type { AuthorizationRequest, Decision, PolicyDocument, PolicyPrincipal } from '../../packages/server/src/core/policy/types.ts';

const policiesPerTeam = 5;

function teamPolicies(t: number): PolicyDocument[] {
  const team = `team-${t}`;
  return [
    {
      name: `${team}.s3`,
      statements: [
        { sid: 'TeamBucket', effect: 'allow', principals: [`group:${team}`], actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:ListBucket', 's3:AbortMultipartUpload'], resources: [`s3:${team}`, `s3:${team}/*`] },
        { sid: 'SharedRead', effect: 'allow', principals: [`group:${team}`], actions: ['s3:Get*', 's3:ListBucket'], resources: [`s3:shared/${team}/*`] },
      ],
    },
    {
      name: `${team}.oci`,
      statements: [
        { sid: 'TeamRepos', effect: 'allow', principals: [`group:${team}`], actions: ['oci:pull', 'oci:push'], resources: [`oci:${team}/*`] },
        { sid: 'CiPush', effect: 'allow', principals: [`role:ci-${team}`], actions: ['oci:push', 'oci:pull', 's3:PutObject'], resources: [`oci:${team}/*`, `s3:${team}/builds/*`], conditions: { sourceIp: [`10.${t % 256}.0.0/16`, `fd00:${t.toString(16)}::/32`] } },
      ],
    },
    {
      name: `${team}.public`,
      statements: [
        { sid: 'InternalPull', effect: 'allow', principals: ['authenticated'], actions: ['oci:pull'], resources: [`oci:${team}/public/*`] },
        { sid: 'PublicDownloads', effect: 'allow', principals: ['anonymous'], actions: ['s3:GetObject'], resources: [`s3:${team}/public/*`] },
      ],
    },
    {
      name: `${team}.guard`,
      statements: [
        { sid: 'Contractors', effect: 'deny', principals: [`group:${team}-contractors`], actions: ['s3:Delete*', 'oci:delete'], resources: [`s3:${team}/*`, `oci:${team}/*`] },
        { sid: 'KeepReleases', effect: 'deny', principals: ['authenticated'], actions: ['s3:DeleteObject'], resources: [`s3:${team}/releases/*`] },
      ],
    },
    {
      name: `${team}.audit`,
      statements: [
        { sid: 'Auditor', effect: 'allow', principals: [`user:auditor-${t}`], actions: ['s3:Get*', 's3:List*', 'oci:pull'], resources: [`s3:${team}*`, `oci:${team}/*`], conditions: { notBefore: '2026-01-01T00:00:00Z', notAfter: '2026-12-31T23:59:59Z' } },
        { sid: 'Admins', effect: 'allow', principals: [`role:admin-${team}`], actions: ['*'], resources: [`s3:${team}*`, `oci:${team}/*`] },
      ],
    },
  ];
}

function buildPolicies(count: number): PolicyDocument[] {
  const policies: PolicyDocument[] = [];
  for (let t = 0; policies.length < count; t++) policies.push(...teamPolicies(t));
  return policies.slice(0, count);
}

/** mulberry32: the same requests on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'allowed' | 'default-deny' | 'explicit-deny';
interface Case { request: AuthorizationRequest; expect: Decision['reason'] }

const time = new Date('2026-06-01T12:00:00Z');
const member = (t: number, extraGroups: string[] = []): PolicyPrincipal => ({ kind: 'user', name: `dev-${t}`, groups: [`team-${t}`, 'staff', ...extraGroups], roles: [] });
const anonymous: PolicyPrincipal = { kind: 'anonymous', name: 'anonymous', groups: [], roles: [] };

function makeCases(kind: Kind, teams: number, n: number, seed: number): Case[] {
  const rnd = random(seed);
  const pick = (k: number) => Math.floor(rnd() * k);
  const key = () => `builds/${pick(1000)}/artifact-${pick(100000)}.tar.gz`;
  const cases: Case[] = [];
  while (cases.length < n) {
    const t = pick(teams);
    const u = (t + 1 + pick(teams - 1)) % teams; // another team
    const variant = pick(4);
    const req = (principal: PolicyPrincipal, action: string, resource: string, sourceIp?: string): AuthorizationRequest => ({ principal, action, resource, context: { time, ...(sourceIp === undefined ? {} : { sourceIp }) } });
    if (kind === 'allowed') {
      if (variant === 0) cases.push({ request: req(member(t), 's3:GetObject', `s3:team-${t}/${key()}`), expect: 'allow' });
      if (variant === 1) cases.push({ request: req(member(t), 'oci:pull', `oci:team-${t}/service-${pick(20)}`), expect: 'allow' });
      if (variant === 2) cases.push({ request: req({ kind: 'role', name: `ci-team-${t}`, groups: [], roles: [] }, 'oci:push', `oci:team-${t}/service-${pick(20)}`, `10.${t % 256}.0.${1 + pick(16)}`), expect: 'allow' });
      if (variant === 3) cases.push({ request: req(anonymous, 's3:GetObject', `s3:team-${t}/public/${key()}`), expect: 'allow' });
    } else if (kind === 'default-deny') {
      if (variant === 0) cases.push({ request: req(member(t), 's3:GetObject', `s3:team-${u}/${key()}`), expect: 'default-deny' });
      if (variant === 1) cases.push({ request: req(member(t), 'oci:push', `oci:team-${u}/service-${pick(20)}`), expect: 'default-deny' });
      if (variant === 2) cases.push({ request: req({ kind: 'role', name: `ci-team-${t}`, groups: [], roles: [] }, 'oci:push', `oci:team-${t}/service-${pick(20)}`, `192.0.2.${pick(256)}`), expect: 'default-deny' });
      if (variant === 3) cases.push({ request: req(anonymous, 's3:GetObject', `s3:team-${t}/${key()}`), expect: 'default-deny' });
    } else {
      if (variant < 2) cases.push({ request: req(member(t, [`team-${t}-contractors`]), 's3:DeleteObject', `s3:team-${t}/${key()}`), expect: 'explicit-deny' });
      else cases.push({ request: req(member(t), 's3:DeleteObject', `s3:team-${t}/releases/v${pick(50)}/app.tar.gz`), expect: 'explicit-deny' });
    }
  }
  return cases;
}

function verify(engine: PolicyEngine, cases: readonly Case[], label: string): void {
  for (const { request, expect } of cases) {
    const got = engine.authorize(request).reason;
    if (got !== expect) throw new Error(`${label}: ${request.principal.name} ${request.action} ${request.resource} decided ${got}, expected ${expect}`);
  }
}

let sink = 0;

/** Decisions per second over `ms` of back-to-back decisions. */
function throughput(engine: PolicyEngine, requests: readonly AuthorizationRequest[], ms: number): number {
  const started = performance.now();
  let done = 0;
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 1024; i++) if (engine.authorize(requests[(done + i) % requests.length]!).allowed) sink++;
    done += 1024;
    elapsed = performance.now() - started;
  }
  return (done / elapsed) * 1000;
}

/** Per-decision latency in ns, each decision timed on its own (the timer's cost included; reported apart). */
function latencies(engine: PolicyEngine, requests: readonly AuthorizationRequest[], ms: number): Float64Array {
  const samples: number[] = [];
  const deadline = performance.now() + ms;
  for (let i = 0; ; i++) {
    const request = requests[i % requests.length]!;
    const t0 = process.hrtime.bigint();
    if (engine.authorize(request).allowed) sink++;
    samples.push(Number(process.hrtime.bigint() - t0));
    if ((i & 1023) === 0 && performance.now() > deadline) break;
  }
  return Float64Array.from(samples).sort();
}

function timerOverhead(): number {
  const samples = new Float64Array(100_000);
  for (let i = 0; i < samples.length; i++) {
    const t0 = process.hrtime.bigint();
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return samples.sort()[samples.length >> 1]!;
}

const percentile = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const micros = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;
const perSecond = (n: number) => `${Math.round(n).toLocaleString('en-US')}`;

function build(count: number): { engine: PolicyEngine; parseMs: number; compileMs: number } {
  const texts = buildPolicies(count).map((p) => JSON.stringify(p));
  // What the server does on a cache miss: parse and validate each stored document, then compile them all.
  const t0 = performance.now();
  const documents = texts.map((text) => parsePolicyDocument(JSON.parse(text)));
  const t1 = performance.now();
  const engine = new PolicyEngine(documents);
  const t2 = performance.now();
  return { engine, parseMs: t1 - t0, compileMs: t2 - t1 };
}

function main(): void {
  const policyCount = 1000;
  const teams = Math.ceil(policyCount / policiesPerTeam);
  // Construction: the first (cold) build, then the median of warm ones; each replaces the last.
  const cold = build(policyCount);
  const warm: { parseMs: number; compileMs: number }[] = [];
  let { engine } = cold;
  for (let i = 0; i < 9; i++) {
    const b = build(policyCount);
    warm.push(b);
    engine = b.engine;
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
  const parseMs = median(warm.map((b) => b.parseMs));
  const compileMs = median(warm.map((b) => b.compileMs));
  const firstMs = cold.parseMs + cold.compileMs;

  const kinds: Kind[] = ['allowed', 'default-deny', 'explicit-deny'];
  const cases = new Map(kinds.map((kind, i) => [kind, makeCases(kind, teams, 4096, 1 + i)]));
  for (const [kind, list] of cases) verify(engine, list, kind);
  const mixRandom = random(99);
  const all = [...cases.values()];
  // The mix: mostly allowed, as a working system sees; some default denials, a few explicit ones.
  const mix = Array.from({ length: 8192 }, () => {
    const r = mixRandom();
    const list = r < 0.8 ? all[0]! : r < 0.95 ? all[1]! : all[2]!;
    return list[Math.floor(mixRandom() * list.length)]!.request;
  });

  throughput(engine, mix, 300); // warm-up
  const overhead = timerOverhead();
  const rows: string[] = [];
  const measure = (label: string, requests: readonly AuthorizationRequest[], e = engine, tMs = 350, lMs = 200) => {
    const rate = throughput(e, requests, tMs);
    const lat = latencies(e, requests, lMs);
    rows.push(`| ${label} | ${perSecond(rate)} | ${micros(percentile(lat, 50))} | ${micros(percentile(lat, 99))} | ${micros(percentile(lat, 99.9))} |`);
  };
  for (const [kind, list] of cases) measure(kind, list.map((c) => c.request));
  measure('mix (80/15/5)', mix);

  // Scaling: the same mix against 100 and 10,000 policies; an index that works keeps these close.
  const scaling: string[] = [];
  for (const count of [100, 10_000]) {
    const built = build(count);
    const t = Math.ceil(count / policiesPerTeam);
    const scaled = kinds.map((kind, i) => makeCases(kind, t, 2048, 11 + i));
    scaled.forEach((list, i) => verify(built.engine, list, `${kinds[i]} @${count}`));
    const scaledMix = scaled.flatMap((list, i) => list.slice(0, [1600, 300, 100][i]).map((c) => c.request));
    throughput(built.engine, scaledMix, 100);
    const rate = throughput(built.engine, scaledMix, 250);
    const lat = latencies(built.engine, scaledMix, 150);
    scaling.push(`| ${count.toLocaleString('en-US')} | ${built.engine.statementCount.toLocaleString('en-US')} | ${(built.parseMs + built.compileMs).toFixed(1)} ms | ${perSecond(rate)} | ${micros(percentile(lat, 50))} | ${micros(percentile(lat, 99))} |`);
  }

  const out = [
    `## Policy engine: ${engine.policyCount.toLocaleString('en-US')} policies, ${engine.statementCount.toLocaleString('en-US')} statements`,
    '',
    `${cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}, one thread. Latency is each decision timed on its own, including the timer (${micros(overhead)} per reading).`,
    '',
    `Construction, warm (median of 9): parse + validate ${parseMs.toFixed(1)} ms, compile ${compileMs.toFixed(1)} ms (${((compileMs / engine.policyCount) * 1000).toFixed(1)} µs per policy); the first, cold build: ${firstMs.toFixed(1)} ms.`,
    '',
    '| requests | decisions/s | p50 | p99 | p99.9 |',
    '|---|---:|---:|---:|---:|',
    ...rows,
    '',
    '| policies | statements | build, cold (parse + compile) | mix decisions/s | p50 | p99 |',
    '|---:|---:|---:|---:|---:|---:|',
    ...scaling,
    '',
  ];
  process.stdout.write(out.join('\n'));
  if (sink < 0) process.stdout.write(String(sink)); // keeps the decisions observable
}

main();
