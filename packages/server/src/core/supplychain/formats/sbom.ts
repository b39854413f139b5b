import { PackageURL } from 'packageurl-js';
import { z } from 'zod';
import { FormatError, type ParsedSbom, type SbomComponent } from '../types.ts';
import { checkShape, parseJson } from './encoding.ts';

/**
 * SBOM documents in JSON: SPDX 2.2 / 2.3 (packages) and CycloneDX 1.4–1.6 (components, nested
 * ones included). Components keep their purl as written (validated with packageurl-js), licenses
 * (SPDX ids, names or expressions; NOASSERTION and NONE dropped) and hashes with the algorithm named
 * the same way for both formats: lower case, "sha256", "sha512", "sha3-256", "md5", "blake2b-256".
 * Work is linear in the number of components.
 */

export const sbomMediaTypes = {
  spdxJson: 'application/spdx+json',
  /** What `cosign attach sbom --type spdx` gives a JSON SPDX layer. */
  spdxJsonText: 'text/spdx+json',
  cyclonedxJson: 'application/vnd.cyclonedx+json',
} as const;

export const spdxVersions = ['SPDX-2.2', 'SPDX-2.3'];
export const cycloneDxVersions = ['1.4', '1.5', '1.6'];

export type SbomFormat = ParsedSbom['format'];

/** The format a parsed JSON document declares (spdxVersion or bomFormat), if any. */
export function sbomFormatOf(value: unknown): SbomFormat | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('spdxVersion' in value) return 'spdx';
  if ('bomFormat' in value) return 'cyclonedx';
  return undefined;
}

/** Parses SBOM bytes; `format` is what the media type says, or undefined to go by the document. */
export function parseSbom(body: Buffer, format?: SbomFormat): ParsedSbom {
  return parseSbomValue(parseJson(body, format === 'cyclonedx' ? 'the CycloneDX SBOM' : format === 'spdx' ? 'the SPDX SBOM' : 'the SBOM'), format);
}

/** Parses a JSON value (an SBOM document, or the predicate of an SPDX / CycloneDX attestation). */
export function parseSbomValue(value: unknown, format?: SbomFormat): ParsedSbom {
  const declared = sbomFormatOf(value);
  const chosen = format ?? declared;
  if (chosen === 'spdx') return parseSpdx(value);
  if (chosen === 'cyclonedx') return parseCycloneDx(value);
  throw new FormatError('the document is neither SPDX JSON (spdxVersion) nor CycloneDX JSON (bomFormat)');
}

const spdxDocument = z.looseObject({
  spdxVersion: z.string(),
  name: z.string().optional(),
  packages: z.array(z.unknown()).optional(),
});
const spdxPackage = z.looseObject({
  name: z.string(),
  versionInfo: z.string().optional(),
  licenseConcluded: z.string().optional(),
  licenseDeclared: z.string().optional(),
  externalRefs: z.array(z.looseObject({ referenceType: z.string(), referenceLocator: z.string() })).optional(),
  checksums: z.array(z.looseObject({ algorithm: z.string(), checksumValue: z.string() })).optional(),
});

export function parseSpdx(value: unknown): ParsedSbom {
  if (typeof value !== 'object' || value === null || !('spdxVersion' in value)) throw new FormatError('the SPDX document has no spdxVersion (SPDX 3 JSON-LD is not supported)');
  const document = checkShape(spdxDocument, value, 'the SPDX document');
  if (!spdxVersions.includes(document.spdxVersion)) throw new FormatError(`the SPDX document has spdxVersion ${JSON.stringify(document.spdxVersion)}; supported: ${spdxVersions.join(', ')}`);
  const components: SbomComponent[] = [];
  for (const [i, item] of (document.packages ?? []).entries()) {
    const where = `packages[${i}]`;
    const pkg = checkShape(spdxPackage, item, `the SPDX package ${where}`);
    const purl = pkg.externalRefs?.find((ref) => ref.referenceType === 'purl')?.referenceLocator;
    if (purl !== undefined) checkPurl(purl, pkg.name, where);
    const licenses = uniqueLicenses([pkg.licenseConcluded, pkg.licenseDeclared]);
    components.push({
      name: pkg.name,
      ...(pkg.versionInfo !== undefined && { version: pkg.versionInfo }),
      ...(purl !== undefined && { purl }),
      licenses,
      hashes: (pkg.checksums ?? []).map((c) => ({ algorithm: hashAlgorithmName(c.algorithm), value: c.checksumValue.toLowerCase() })),
    });
  }
  return { format: 'spdx', specVersion: document.spdxVersion.slice('SPDX-'.length), ...(document.name !== undefined && { name: document.name }), components };
}

const cycloneDxDocument = z.looseObject({
  bomFormat: z.string(),
  specVersion: z.string(),
  metadata: z.looseObject({ component: z.looseObject({ name: z.string().optional() }).optional() }).optional(),
  components: z.array(z.unknown()).optional(),
});
/** A license choice: {license: {id | name}} or {expression}. */
const cycloneDxLicense = z.looseObject({
  license: z.looseObject({ id: z.string().optional(), name: z.string().optional() }).optional(),
  expression: z.string().optional(),
});
const cycloneDxComponent = z.looseObject({
  name: z.string(),
  version: z.string().optional(),
  purl: z.string().optional(),
  licenses: z.array(cycloneDxLicense).optional(),
  hashes: z.array(z.looseObject({ alg: z.string(), content: z.string() })).optional(),
  components: z.array(z.unknown()).optional(),
});

export function parseCycloneDx(value: unknown): ParsedSbom {
  const document = checkShape(cycloneDxDocument, value, 'the CycloneDX document');
  if (document.bomFormat !== 'CycloneDX') throw new FormatError(`the CycloneDX document has bomFormat ${JSON.stringify(document.bomFormat)}, not "CycloneDX"`);
  if (!cycloneDxVersions.includes(document.specVersion)) throw new FormatError(`the CycloneDX document has specVersion ${JSON.stringify(document.specVersion)}; supported: ${cycloneDxVersions.join(', ')}`);
  const components: SbomComponent[] = [];
  // Depth-first in document order, with an explicit stack: nesting depth costs no call stack.
  const stack: { item: unknown; where: string }[] = [];
  const pushAll = (items: unknown[] | undefined, prefix: string) => {
    if (!items) return;
    for (let i = items.length - 1; i >= 0; i--) stack.push({ item: items[i], where: `${prefix}components[${i}]` });
  };
  pushAll(document.components, '');
  while (stack.length > 0) {
    const { item, where } = stack.pop()!;
    const component = checkShape(cycloneDxComponent, item, `the CycloneDX component ${where}`);
    if (component.purl !== undefined) checkPurl(component.purl, component.name, where);
    const licenses = uniqueLicenses((component.licenses ?? []).map((l) => l.license?.id ?? l.license?.name ?? l.expression));
    components.push({
      name: component.name,
      ...(component.version !== undefined && { version: component.version }),
      ...(component.purl !== undefined && { purl: component.purl }),
      licenses,
      hashes: (component.hashes ?? []).map((h) => ({ algorithm: hashAlgorithmName(h.alg), value: h.content.toLowerCase() })),
    });
    pushAll(component.components, `${where}.`);
  }
  const name = document.metadata?.component?.name;
  return { format: 'cyclonedx', specVersion: document.specVersion, ...(name !== undefined && { name }), components };
}

/** Refuses a package URL packageurl-js cannot parse, naming the component. */
function checkPurl(purl: string, component: string, where: string): void {
  try {
    PackageURL.fromString(purl);
  } catch (err) {
    // packageurl-js 2.0.1 throws a ReferenceError (not its PurlError) for a golang version
    // starting with "v" that is not semver: still an invalid purl for that library.
    const reason = err instanceof Error && err.message.startsWith('Invalid purl') ? err.message : 'it is not a valid package URL';
    throw new FormatError(`component ${JSON.stringify(component)} (${where}) has an invalid purl ${JSON.stringify(purl)}: ${reason}`);
  }
}

function uniqueLicenses(candidates: (string | undefined)[]): string[] {
  const licenses: string[] = [];
  for (const license of candidates) {
    if (license === undefined || license === '' || license === 'NOASSERTION' || license === 'NONE' || licenses.includes(license)) continue;
    licenses.push(license);
  }
  return licenses;
}

/** SPDX "SHA256" and CycloneDX "SHA-256" both become "sha256"; "SHA3-256" becomes "sha3-256". */
export function hashAlgorithmName(name: string): string {
  return name.toLowerCase().replace(/^sha-(\d)/, 'sha$1');
}
