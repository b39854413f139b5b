import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FormatError } from '../types.ts';
import { hashAlgorithmName, parseSbom, parseSbomValue } from './sbom.ts';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const log4j = 'pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1';

const spdx = {
  spdxVersion: 'SPDX-2.3',
  SPDXID: 'SPDXRef-DOCUMENT',
  name: 'app-1.0',
  packages: [
    {
      SPDXID: 'SPDXRef-log4j',
      name: 'log4j-core',
      versionInfo: '2.14.1',
      licenseConcluded: 'Apache-2.0',
      licenseDeclared: 'Apache-2.0',
      externalRefs: [
        { referenceCategory: 'SECURITY', referenceType: 'cpe23Type', referenceLocator: 'cpe:2.3:a:apache:log4j:2.14.1:*:*:*:*:*:*:*' },
        { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: log4j },
      ],
      checksums: [{ algorithm: 'SHA256', checksumValue: 'ABCDEF' }, { algorithm: 'SHA1', checksumValue: '0123' }],
    },
    { SPDXID: 'SPDXRef-os', name: 'alpine-baselayout', licenseConcluded: 'NOASSERTION', licenseDeclared: 'NONE' },
  ],
};

const cyclonedx = {
  bomFormat: 'CycloneDX',
  specVersion: '1.5',
  metadata: { component: { type: 'application', name: 'shop-api' } },
  components: [
    {
      type: 'library',
      name: 'spring-boot',
      version: '3.2.0',
      purl: 'pkg:maven/org.springframework.boot/spring-boot@3.2.0',
      licenses: [{ license: { id: 'Apache-2.0' } }],
      hashes: [{ alg: 'SHA-256', content: 'AA11' }, { alg: 'SHA3-512', content: 'bb22' }],
      components: [{ type: 'library', name: 'log4j-core', version: '2.14.1', purl: log4j, licenses: [{ expression: 'Apache-2.0 OR MIT' }] }],
    },
    { type: 'library', name: 'internal-lib', licenses: [{ license: { name: 'Proprietary' } }] },
  ],
};

test('SPDX 2.3: packages with version, purl, licenses (NOASSERTION/NONE dropped) and checksums', () => {
  const sbom = parseSbom(json(spdx));
  assert.equal(sbom.format, 'spdx');
  assert.equal(sbom.specVersion, '2.3');
  assert.equal(sbom.name, 'app-1.0');
  assert.deepEqual(sbom.components, [
    { name: 'log4j-core', version: '2.14.1', purl: log4j, licenses: ['Apache-2.0'], hashes: [{ algorithm: 'sha256', value: 'abcdef' }, { algorithm: 'sha1', value: '0123' }] },
    { name: 'alpine-baselayout', licenses: [], hashes: [] },
  ]);
  assert.equal(parseSbom(json({ ...spdx, spdxVersion: 'SPDX-2.2' })).specVersion, '2.2');
});

test('CycloneDX 1.5: nested components in document order, licenses by id, name or expression, hashes', () => {
  const sbom = parseSbom(json(cyclonedx), 'cyclonedx');
  assert.equal(sbom.format, 'cyclonedx');
  assert.equal(sbom.specVersion, '1.5');
  assert.equal(sbom.name, 'shop-api');
  assert.deepEqual(sbom.components, [
    { name: 'spring-boot', version: '3.2.0', purl: 'pkg:maven/org.springframework.boot/spring-boot@3.2.0', licenses: ['Apache-2.0'], hashes: [{ algorithm: 'sha256', value: 'aa11' }, { algorithm: 'sha3-512', value: 'bb22' }] },
    { name: 'log4j-core', version: '2.14.1', purl: log4j, licenses: ['Apache-2.0 OR MIT'], hashes: [] },
    { name: 'internal-lib', licenses: ['Proprietary'], hashes: [] },
  ]);
  for (const specVersion of ['1.4', '1.6']) assert.equal(parseSbom(json({ ...cyclonedx, specVersion })).specVersion, specVersion);
});

test('wrong versions and formats are refused, saying which', () => {
  const refuses = (body: Buffer, pattern: RegExp, format?: 'spdx' | 'cyclonedx') => assert.throws(() => parseSbom(body, format), (err) => err instanceof FormatError && pattern.test(err.message), String(pattern));
  refuses(json({ ...spdx, spdxVersion: 'SPDX-3.0' }), /spdxVersion "SPDX-3.0"; supported: SPDX-2.2, SPDX-2.3/);
  refuses(json({ '@context': 'https://spdx.org/rdf/3.0.1/spdx-context.jsonld' }), /SPDX document has no spdxVersion/, 'spdx');
  refuses(json({ ...cyclonedx, specVersion: '1.3' }), /specVersion "1.3"; supported: 1.4, 1.5, 1.6/);
  refuses(json({ ...cyclonedx, bomFormat: 'cyclonedx' }), /bomFormat "cyclonedx", not "CycloneDX"/);
  refuses(json(spdx), /CycloneDX document is malformed at bomFormat/, 'cyclonedx');
  refuses(Buffer.from('SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n'), /SPDX SBOM is not JSON/, 'spdx');
  refuses(Buffer.from('<bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>'), /SBOM is not JSON/);
  refuses(json({ hello: 'world' }), /neither SPDX JSON .* nor CycloneDX JSON/);
  refuses(json({ ...spdx, packages: [{ SPDXID: 'x' }] }), /SPDX package packages\[0\] is malformed at name/);
  refuses(json({ ...cyclonedx, components: [{ type: 'library', name: 'a', components: [{ type: 'library' }] }] }), /CycloneDX component components\[0\]\.components\[0\] is malformed at name/);
});

test('an invalid purl is refused, naming the component and where it is', () => {
  const bad = { ...cyclonedx, components: [{ type: 'library', name: 'a', components: [{ type: 'library', name: 'leftpad', purl: 'npm:leftpad@1.0' }] }] };
  assert.throws(() => parseSbom(json(bad)), (err) => err instanceof FormatError && /component "leftpad" \(components\[0\]\.components\[0\]\) has an invalid purl "npm:leftpad@1.0": Invalid purl/.test(err.message));
  const badSpdx = { ...spdx, packages: [{ name: 'core', externalRefs: [{ referenceType: 'purl', referenceLocator: 'pkg:maven/core@1' }] }] };
  assert.throws(() => parseSbom(json(badSpdx)), /component "core" \(packages\[0\]\) has an invalid purl "pkg:maven\/core@1": Invalid purl: maven requires a "namespace"/);
  // packageurl-js 2.0.1 throws a ReferenceError for this one: still a FormatError here.
  const golang = { ...cyclonedx, components: [{ type: 'library', name: 'y', purl: 'pkg:golang/github.com/x/y@v1' }] };
  assert.throws(() => parseSbom(json(golang)), (err) => err instanceof FormatError && /invalid purl "pkg:golang\/github.com\/x\/y@v1"/.test(err.message));
  const goodGolang = { ...cyclonedx, components: [{ type: 'library', name: 'y', purl: 'pkg:golang/github.com/x/y@v0.0.0-20210101000000-abcdef123456' }] };
  assert.equal(parseSbom(json(goodGolang)).components[0]!.purl, 'pkg:golang/github.com/x/y@v0.0.0-20210101000000-abcdef123456');
});

test('100k components, flat and nested 10k deep, parse in linear time', () => {
  const flat = { bomFormat: 'CycloneDX', specVersion: '1.6', components: Array.from({ length: 100_000 }, (_, i) => ({ type: 'library', name: `pkg${i}`, version: '1.0.0', purl: `pkg:npm/pkg${i}@1.0.0`, hashes: [{ alg: 'SHA-256', content: 'ab' }] })) };
  let started = performance.now();
  const sbom = parseSbomValue(flat);
  const flatMs = performance.now() - started;
  assert.equal(sbom.components.length, 100_000);
  assert.equal(sbom.components[99_999]!.name, 'pkg99999');
  assert.ok(flatMs < 5_000, `100k CycloneDX components took ${flatMs} ms`);

  let nested: Record<string, unknown> = { type: 'library', name: 'leaf' };
  for (let i = 0; i < 10_000; i++) nested = { type: 'library', name: `level${i}`, components: [nested] };
  assert.equal(parseSbomValue({ bomFormat: 'CycloneDX', specVersion: '1.6', components: [nested] }).components.length, 10_001);

  const packages = Array.from({ length: 100_000 }, (_, i) => ({ name: `pkg${i}`, versionInfo: '1', licenseConcluded: 'MIT', externalRefs: [{ referenceType: 'purl', referenceLocator: `pkg:pypi/pkg${i}@1` }] }));
  started = performance.now();
  assert.equal(parseSbomValue({ spdxVersion: 'SPDX-2.3', packages }).components.length, 100_000);
  assert.ok(performance.now() - started < 5_000);
});

test('hash algorithm names agree across formats', () => {
  assert.deepEqual(['SHA256', 'SHA-256', 'SHA-1', 'SHA1', 'SHA3-256', 'MD5', 'BLAKE2b-256'].map(hashAlgorithmName), ['sha256', 'sha256', 'sha1', 'sha1', 'sha3-256', 'md5', 'blake2b-256']);
});
