import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { AstoreError } from '../core/errors.ts';

export const s3Namespace = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', suppressEmptyNode: false, processEntities: true });

/** `<?xml ...?><root xmlns=S3>...</root>`; arrays become repeated elements, undefined fields are left out. */
export function toXml(root: string, body: Record<string, unknown>, options: { namespace?: boolean } = {}): string {
  const content = options.namespace === false ? body : { '@xmlns': s3Namespace, ...body };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: stripUndefined(content) }) as string}`;
}

function stripUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripUndefined);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, stripUndefined(v)]));
  }
  return value;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  isArray: (name) => ['Object', 'Part'].includes(name),
});

/** Parses a request body; MalformedXML for anything that is not well-formed XML with `root` at the top. */
export function parseXml(text: string, root: string): Record<string, unknown> {
  let doc: Record<string, unknown>;
  try {
    if (text.trim() === '' || XMLValidator.validate(text) !== true) throw new Error('not well-formed');
    doc = parser.parse(text) as Record<string, unknown>;
  } catch {
    throw new AstoreError('MalformedXML');
  }
  const top = doc[root];
  // XMLValidator accepts several top-level elements ("<Delete>...</Delete><Delete>...</Delete>"); XML does not.
  const elements = Object.keys(doc).filter((name) => !name.startsWith('?'));
  if (elements.length !== 1 || Array.isArray(top)) throw new AstoreError('MalformedXML', 'The XML you provided was not well-formed: it must have exactly one root element');
  if (top === undefined) throw new AstoreError('MalformedXML', `The XML you provided was not well-formed or did not validate against our published schema: expected <${root}>`);
  return (typeof top === 'object' && top !== null ? top : {}) as Record<string, unknown>;
}


