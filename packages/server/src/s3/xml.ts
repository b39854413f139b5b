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
  if (top === undefined) throw new AstoreError('MalformedXML', `The XML you provided was not well-formed or did not validate against our published schema: expected <${root}>`);
  return (typeof top === 'object' && top !== null ? top : {}) as Record<string, unknown>;
}


/** Reads a small request body (XML documents) with a hard cap; bigger bodies are refused. */
export async function readSmallBody(stream: AsyncIterable<Buffer | string>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > maxBytes) throw new AstoreError('MalformedXML', `The XML you provided is larger than ${maxBytes} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
