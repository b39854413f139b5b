import type { PolicyDocument } from '../policy/types.ts';

/**
 * The policies configuration implies, always in force beside the stored ones: anonymous reads of the
 * buckets in `s3.anonymousReadBuckets` and anonymous pulls of `oci.anonymousPullRepositories`.
 */
export function configuredPolicies(options: { anonymousReadBuckets: readonly string[]; anonymousPullRepositories: readonly string[] }): PolicyDocument[] {
  const documents: PolicyDocument[] = [];
  if (options.anonymousReadBuckets.length > 0) {
    documents.push({
      name: 'config.anonymous-read-buckets',
      description: 'from s3.anonymousReadBuckets',
      statements: [
        {
          sid: 'AnonymousRead',
          effect: 'allow',
          principals: ['*'],
          actions: ['s3:GetObject', 's3:ListBucket', 's3:GetBucketLocation'],
          resources: options.anonymousReadBuckets.flatMap((bucket) => [`s3:${bucket}`, `s3:${bucket}/*`]),
        },
      ],
    });
  }
  if (options.anonymousPullRepositories.length > 0) {
    documents.push({
      name: 'config.anonymous-pull-repositories',
      description: 'from oci.anonymousPullRepositories',
      statements: [
        {
          sid: 'AnonymousPull',
          effect: 'allow',
          principals: ['*'],
          actions: ['oci:pull'],
          resources: options.anonymousPullRepositories.map((pattern) => `oci:${pattern}`),
        },
      ],
    });
  }
  return documents;
}

/** The policy that makes the configured bootstrap administrator an administrator. */
export function bootstrapAdminPolicy(user: string): PolicyDocument {
  return {
    name: 'bootstrap-admin',
    description: 'from auth.bootstrapAdmin: everything, everywhere',
    statements: [{ sid: 'Admin', effect: 'allow', principals: [`user:${user}`], actions: ['*'], resources: ['*'] }],
  };
}
