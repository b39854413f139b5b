import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe } from 'node:test';
import { auditTests } from './conformance/audit.ts';
import { blobTests } from './conformance/blobs.ts';
import { bucketTests } from './conformance/buckets.ts';
import { identityTests } from './conformance/identity.ts';
import { leaseTests } from './conformance/leases.ts';
import { objectTests } from './conformance/objects.ts';
import { registryTests } from './conformance/registry.ts';
import { registryGcTests } from './conformance/registry-gc.ts';
import { registryUploadTests } from './conformance/registry-uploads.ts';
import { supplyChainTests } from './conformance/supplychain.ts';
import { supplyChainQueryTests } from './conformance/supplychain-queries.ts';
import { uploadTests } from './conformance/uploads.ts';
import type { MetaStore } from './types.ts';

/**
 * The MetaStore contract as tests. Every dialect joins with one line, e.g.
 * `runMetaStoreConformance('postgres', () => openPostgresForTest(server))`. `open` returns a fresh,
 * empty, migrated store per test and `cleanup` closes and removes it.
 */
export function runMetaStoreConformance(name: string, open: () => Promise<{ store: MetaStore; cleanup: () => Promise<void> }>): void {
  describe(`MetaStore conformance: ${name}`, () => {
    let opened: { store: MetaStore; cleanup: () => Promise<void> } | undefined;
    const store = (): MetaStore => {
      assert.ok(opened, 'store not open');
      return opened.store;
    };
    beforeEach(async () => {
      opened = await open();
    });
    afterEach(async () => {
      await opened?.cleanup();
      opened = undefined;
    });

    describe('buckets', () => bucketTests(store));
    describe('objects', () => objectTests(store));
    describe('uploads', () => uploadTests(store));
    describe('blobs', () => blobTests(store));
    describe('registry', () => registryTests(store));
    describe('registry uploads', () => registryUploadTests(store));
    describe('registry garbage collection', () => registryGcTests(store));
    describe('identity', () => identityTests(store));
    describe('audit', () => auditTests(store));
    describe('supply chain', () => supplyChainTests(store));
    describe('supply-chain queries', () => supplyChainQueryTests(store));
    describe('leases', () => leaseTests(store));
  });
}
