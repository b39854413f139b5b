// The supply-chain benchmark's data: artifacts (S3 objects and OCI manifests) with CycloneDX-like SBOMs
// drawn from a package catalogue with a long-tailed popularity, and SLSA provenance for most of them.
// Deterministic (seeded), so runs compare.

import { createHash } from 'node:crypto';
import type { ComponentRow } from '../../packages/server/src/storage/meta/types.ts';

export const LOG4J = 'pkg:maven/org.apache.logging.log4j/log4j-core';
export const PROVENANCE = 'https://slsa.dev/provenance/v1';
export const BUCKETS = ['releases', 'nightly', 'builds'] as const;

export interface Package {
  name: string;
  /** The purl without version. */
  purl: string;
  versions: string[];
}

export interface Artifact {
  index: number;
  subject: string;
  place: { bucket: string; key: string } | { repository: string };
  components: ComponentRow[];
  /** Has a provenance attestation (and by which builder). */
  builderId?: string;
}

/** mulberry32. */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Well-known packages first (the most popular), then a long synthetic tail per ecosystem. */
export function catalogue(tail: number): Package[] {
  const maven = (group: string, artifact: string, versions: string[]): Package => ({ name: artifact, purl: `pkg:maven/${group}/${artifact}`, versions });
  const npm = (name: string, versions: string[]): Package => ({ name, purl: `pkg:npm/${name.replace('@', '%40')}`, versions });
  const pypi = (name: string, versions: string[]): Package => ({ name, purl: `pkg:pypi/${name}`, versions });
  const known: Package[] = [
    maven('org.slf4j', 'slf4j-api', ['1.7.30', '1.7.36', '2.0.7', '2.0.9']),
    npm('lodash', ['4.17.15', '4.17.19', '4.17.20', '4.17.21']),
    pypi('requests', ['2.25.1', '2.28.2', '2.31.0', '2.32.3']),
    maven('com.fasterxml.jackson.core', 'jackson-databind', ['2.9.10.8', '2.12.7', '2.13.4.2', '2.15.2', '2.17.0']),
    npm('debug', ['2.6.9', '3.2.7', '4.3.4']),
    pypi('urllib3', ['1.26.5', '1.26.18', '2.0.7', '2.2.1']),
    maven('com.google.guava', 'guava', ['30.1-jre', '31.1-jre', '32.0.1-jre', '33.0.0-jre']),
    npm('minimist', ['0.0.8', '1.2.5', '1.2.8']),
    maven('org.apache.commons', 'commons-lang3', ['3.9', '3.12.0', '3.14.0']),
    pypi('pyyaml', ['5.3.1', '5.4.1', '6.0.1']),
    maven('io.netty', 'netty-handler', ['4.1.77.Final', '4.1.86.Final', '4.1.94.Final', '4.1.100.Final']),
    npm('express', ['4.17.1', '4.18.2', '4.19.2']),
    maven('org.springframework', 'spring-core', ['5.2.22.RELEASE', '5.3.20', '5.3.27', '6.0.9', '6.1.2']),
    npm('@angular/core', ['14.3.0', '15.2.9', '16.0.0-rc.4', '16.2.12', '17.0.8']),
    maven('org.yaml', 'snakeyaml', ['1.26', '1.30', '1.33', '2.0', '2.2']),
    pypi('django', ['3.2.19', '4.2.7', '5.0.1', '5.0rc1']),
    maven('org.apache.logging.log4j', 'log4j-api', ['2.11.1', '2.13.3', '2.17.1', '2.20.0']),
    // log4j-core@2.14.1 is planted in chosen artifacts only (see artifacts()), so its count is known.
    maven('org.apache.logging.log4j', 'log4j-core', ['2.0-beta9', '2.11.1', '2.13.3', '2.15.0', '2.16.0', '2.17.1', '2.20.0']),
    npm('axios', ['0.21.1', '0.27.2', '1.6.2']),
    pypi('numpy', ['1.21.6', '1.24.4', '1.26.2', '2.0.0b1']),
  ];
  const rnd = random(1);
  const versionsOf = (): string[] => {
    const major = Math.floor(rnd() * 5);
    const count = 3 + Math.floor(rnd() * 5);
    const versions: string[] = [];
    let minor = Math.floor(rnd() * 10);
    for (let v = 0; v < count; v++) {
      minor += 1 + Math.floor(rnd() * 3);
      const patch = Math.floor(rnd() * 12);
      const kind = rnd();
      versions.push(kind < 0.08 ? `${major}.${minor}.0-rc${1 + Math.floor(rnd() * 3)}` : kind < 0.12 ? `${major}.${minor}.${patch}.Final` : `${major}.${minor}.${patch}`);
    }
    return versions;
  };
  const synthetic: Package[] = [];
  for (let i = 0; i < tail; i++) {
    const ecosystem = i % 3;
    if (ecosystem === 0) synthetic.push(maven(`com.example.g${i % 97}`, `lib-${i}`, versionsOf()));
    else if (ecosystem === 1) synthetic.push(npm(i % 5 === 0 ? `@scope${i % 13}/pkg-${i}` : `pkg-${i}`, versionsOf()));
    else synthetic.push(pypi(`py-${i}`, versionsOf()));
  }
  return [...known, ...synthetic];
}

/**
 * `count` artifacts of `minComponents`..`maxComponents` distinct packages each. Popularity is
 * long-tailed (index = n * u^3), so the well-known packages appear in a large share of the SBOMs.
 * Every `log4jEvery`-th artifact carries log4j-core@2.14.1. Two artifacts in three are S3 objects,
 * the others manifests in `repositories` repositories; `attested` of them have provenance.
 */
export function artifacts(packages: readonly Package[], options: { count: number; minComponents: number; maxComponents: number; log4jEvery: number; repositories: number; attested: number }): Artifact[] {
  const rnd = random(2);
  const result: Artifact[] = [];
  for (let index = 0; index < options.count; index++) {
    const subject = `sha256:${sha256(`artifact ${index}`)}`;
    const place = index % 3 === 2 ? { repository: `team-${index % options.repositories}/service-${index % 7}` } : { bucket: BUCKETS[Math.floor(index / 3) % BUCKETS.length]!, key: `builds/${index % 50}/artifact-${index}.tar.gz` };
    const wanted = options.minComponents + Math.floor(rnd() * (options.maxComponents - options.minComponents + 1));
    const chosen = new Set<number>();
    const log4j = index % options.log4jEvery === 0;
    while (chosen.size < wanted) {
      const p = Math.floor(packages.length * rnd() ** 3);
      if (log4j && packages[p]!.purl === LOG4J) continue;
      chosen.add(p);
    }
    const components: ComponentRow[] = [];
    if (log4j) components.push(component(packages.find((p) => p.purl === LOG4J)!, '2.14.1', rnd));
    for (const p of chosen) {
      const pkg = packages[p]!;
      components.push(component(pkg, pkg.versions[Math.floor(rnd() * pkg.versions.length)]!, rnd));
    }
    const attested = rnd() < options.attested;
    result.push({ index, subject, place, components, ...(attested && { builderId: rnd() < 0.9 ? 'https://github.com/actions/runner' : 'https://cloudbuild.googleapis.com/GoogleHostedWorker' }) });
  }
  return result;
}

function component(pkg: Package, version: string, rnd: () => number): ComponentRow {
  // CycloneDX from Maven plugins adds ?type=jar to some purls.
  const qualifiers = pkg.purl.startsWith('pkg:maven/') && rnd() < 0.3 ? '?type=jar' : '';
  return {
    name: pkg.name,
    version,
    purl: `${pkg.purl}@${version}${qualifiers}`,
    licenses: rnd() < 0.7 ? ['Apache-2.0'] : ['MIT'],
    hashes: [{ algorithm: 'SHA-256', value: sha256(`${pkg.purl}@${version}`) }],
  };
}
