import { AstoreError } from '../core/errors.ts';
import type { BucketCall, S3Call } from './context.ts';
import { readDocument } from './payload.ts';
import { parseXml, toXml } from './xml.ts';

export async function listBuckets({ reply, services }: S3Call) {
  const buckets = await services.buckets.list();
  return reply.type('application/xml').send(
    toXml('ListAllMyBucketsResult', {
      Owner: { ID: services.owner.id, DisplayName: services.owner.displayName },
      Buckets: { Bucket: buckets.map((b) => ({ Name: b.name, CreationDate: b.createdAt, BucketRegion: b.region })) },
    }),
  );
}

export async function createBucket({ req, reply, bucket, services, auth }: BucketCall) {
  const text = await readDocument(req.raw, auth, 64 * 1024);
  let region = services.region;
  if (text.trim() !== '') {
    const doc = parseXml(text, 'CreateBucketConfiguration');
    const constraint = doc.LocationConstraint;
    if (typeof constraint === 'string' && constraint !== '') region = constraint;
  }
  await services.buckets.create(bucket, region);
  return reply.header('location', `/${bucket}`).send();
}

export async function headBucket({ reply, bucket, services }: BucketCall) {
  const record = await services.buckets.get(bucket);
  return reply.header('x-amz-bucket-region', record.region).send();
}

export async function deleteBucket({ reply, bucket, services }: BucketCall) {
  await services.buckets.delete(bucket);
  return reply.code(204).send();
}

export async function getBucketLocation({ reply, bucket, services }: BucketCall) {
  const record = await services.buckets.get(bucket);
  // us-east-1 is reported as an empty LocationConstraint, as S3 does.
  const region = record.region === 'us-east-1' ? '' : record.region;
  return reply.type('application/xml').send(toXml('LocationConstraint', { '#text': region }));
}

export async function getBucketVersioning({ reply, bucket, services }: BucketCall) {
  await services.buckets.get(bucket);
  return reply.type('application/xml').send(toXml('VersioningConfiguration', {}));
}

export function notImplemented(what: string): never {
  throw new AstoreError('NotImplemented', `${what} is not implemented`);
}

/** The one ACL astore has: the owner holds FULL_CONTROL (access is decided by credentials, not ACLs). */
export function ownerAcl(owner: { id: string; displayName: string }) {
  const o = { ID: owner.id, DisplayName: owner.displayName };
  return toXml('AccessControlPolicy', {
    Owner: o,
    AccessControlList: {
      Grant: {
        Grantee: { '@xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance', '@xsi:type': 'CanonicalUser', ...o },
        Permission: 'FULL_CONTROL',
      },
    },
  });
}

export async function getAcl({ reply, bucket, services }: BucketCall) {
  await services.buckets.get(bucket);
  return reply.type('application/xml').send(ownerAcl(services.owner));
}

/** GetBucketPolicy: the IAM JSON as it was put. */
export async function getBucketPolicy({ reply, bucket, services }: BucketCall) {
  return reply.header('content-type', 'application/json').send(Buffer.from(await services.bucketPolicies.get(bucket)));
}

/** PutBucketPolicy: validated (MalformedPolicy) and enforced by the policy engine from then on. */
export async function putBucketPolicy(call: BucketCall) {
  const { req, reply, bucket, services } = call;
  const json = await readDocument(req.raw, call.auth, 20 * 1024, { bodyChecksum: true });
  await services.bucketPolicies.put(bucket, json);
  return reply.code(204).send();
}

export async function deleteBucketPolicy(call: BucketCall) {
  await call.services.bucketPolicies.delete(call.bucket);
  return call.reply.code(204).send();
}
