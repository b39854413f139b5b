import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAstoreError } from '../core/errors.ts';
import { parseXml } from './xml.ts';

const malformed = (err: unknown) => isAstoreError(err, 'MalformedXML');

test('parseXml: one root element, with or without an XML declaration', () => {
  const doc = parseXml('<?xml version="1.0" encoding="UTF-8"?>\n<Delete><Object><Key>a</Key></Object><Quiet>true</Quiet></Delete>', 'Delete');
  assert.deepEqual(doc, { Object: [{ Key: 'a' }], Quiet: 'true' });
  assert.deepEqual(parseXml('<Delete><Object><Key>b</Key></Object></Delete>', 'Delete').Object, [{ Key: 'b' }]);
});

test('parseXml: several top-level elements, another root, or no XML at all are MalformedXML', () => {
  for (const text of [
    '<Delete><Object><Key>a</Key></Object></Delete><extra/>',
    '<Delete><Object><Key>a</Key></Object></Delete><Delete><Object><Key>b</Key></Object></Delete>',
    '<Nope/>',
    '<Delete><Object><Key>a</Key></Object',
    'not xml',
    '',
  ]) {
    assert.throws(() => parseXml(text, 'Delete'), malformed, JSON.stringify(text));
  }
});
