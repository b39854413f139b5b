import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAstoreError } from '../errors.ts';
import { PolicyEngine } from './engine.ts';
import type { AuthorizationRequest, PolicyDocument, PolicyPrincipal, PolicyStatement } from './types.ts';

const now = new Date('2026-06-01T12:00:00Z');

const user = (name: string, groups: string[] = [], roles: string[] = []): PolicyPrincipal => ({ kind: 'user', name, groups, roles });
const role = (name: string, groups: string[] = [], roles: string[] = []): PolicyPrincipal => ({ kind: 'role', name, groups, roles });
const anonymous: PolicyPrincipal = { kind: 'anonymous', name: 'anonymous', groups: [], roles: [] };
const root: PolicyPrincipal = { kind: 'root', name: 'root', groups: [], roles: [] };

function request(principal: PolicyPrincipal, action: string, resource: string, context: Partial<AuthorizationRequest['context']> = {}): AuthorizationRequest {
  return { principal, action, resource, context: { time: now, ...context } };
}

function policy(name: string, ...statements: PolicyStatement[]): PolicyDocument {
  return { name, statements };
}

const allow = (principals: string[], actions: string[], resources: string[], extra: Partial<PolicyStatement> = {}): PolicyStatement => ({ effect: 'allow', principals, actions, resources, ...extra });
const deny = (principals: string[], actions: string[], resources: string[], extra: Partial<PolicyStatement> = {}): PolicyStatement => ({ effect: 'deny', principals, actions, resources, ...extra });

test('root is allowed everything without policies', () => {
  const engine = new PolicyEngine([policy('deny-all', deny(['*'], ['*'], ['*']))]);
  assert.deepEqual(engine.authorize(request(root, 'admin:DeleteUser', 'api:users/bob')), { allowed: true, reason: 'root' });
});

test('nothing applying is a default deny', () => {
  const engine = new PolicyEngine([policy('p', allow(['user:alice'], ['s3:GetObject'], ['s3:team-a/*']))]);
  assert.deepEqual(engine.authorize(request(user('bob'), 's3:GetObject', 's3:team-a/k')), { allowed: false, reason: 'default-deny' });
  assert.deepEqual(engine.authorize(request(user('alice'), 's3:PutObject', 's3:team-a/k')), { allowed: false, reason: 'default-deny' });
  assert.deepEqual(engine.authorize(request(user('alice'), 's3:GetObject', 's3:team-b/k')), { allowed: false, reason: 'default-deny' });
  assert.deepEqual(new PolicyEngine([]).authorize(request(user('alice'), 's3:GetObject', 's3:x')), { allowed: false, reason: 'default-deny' });
});

test('an allow reports the first applying statement in policy order', () => {
  const engine = new PolicyEngine([
    policy('unrelated', allow(['user:carol'], ['*'], ['*'])),
    policy('first', allow(['user:alice'], ['oci:push'], ['oci:*']), allow(['user:alice'], ['s3:*'], ['s3:team-a/*'], { sid: 'TeamA' })),
    policy('second', allow(['*'], ['s3:GetObject'], ['*'], { sid: 'Everyone' })),
  ]);
  assert.deepEqual(engine.authorize(request(user('alice'), 's3:GetObject', 's3:team-a/k')), {
    allowed: true,
    reason: 'allow',
    matched: { policy: 'first', sid: 'TeamA', statement: 1 },
  });
  assert.deepEqual(engine.authorize(request(user('bob'), 's3:GetObject', 's3:team-a/k')).matched, { policy: 'second', sid: 'Everyone', statement: 0 });
  assert.deepEqual(engine.authorize(request(user('alice'), 'oci:push', 'oci:app')).matched, { policy: 'first', statement: 0 });
});

test('an explicit deny beats any allow, across policies and in either order', () => {
  const allowAll = policy('allow-all', allow(['user:alice'], ['*'], ['*']));
  const denyDelete = policy('no-deletes', deny(['group:staff'], ['s3:Delete*'], ['s3:releases/*'], { sid: 'KeepReleases' }));
  for (const policies of [[allowAll, denyDelete], [denyDelete, allowAll]]) {
    const engine = new PolicyEngine(policies);
    assert.deepEqual(engine.authorize(request(user('alice', ['staff']), 's3:DeleteObject', 's3:releases/v1')), {
      allowed: false,
      reason: 'explicit-deny',
      matched: { policy: 'no-deletes', sid: 'KeepReleases', statement: 0 },
    });
    assert.equal(engine.authorize(request(user('alice', ['staff']), 's3:DeleteObject', 's3:scratch/v1')).reason, 'allow');
    assert.equal(engine.authorize(request(user('alice'), 's3:DeleteObject', 's3:releases/v1')).reason, 'allow');
  }
});

test('the deny reported is the first applying deny in policy order', () => {
  const engine = new PolicyEngine([
    policy('a', deny(['user:bob'], ['s3:PutObject'], ['s3:other/*'])),
    policy('b', deny(['*'], ['s3:*'], ['s3:locked/*'], { sid: 'Lock' })),
    policy('c', deny(['user:bob'], ['s3:PutObject'], ['s3:locked/*'], { sid: 'Bob' })),
  ]);
  assert.deepEqual(engine.authorize(request(user('bob'), 's3:PutObject', 's3:locked/k')).matched, { policy: 'b', sid: 'Lock', statement: 0 });
});

test('* applies to everyone, anonymous included; authenticated to everyone but anonymous', () => {
  const engine = new PolicyEngine([
    policy('public', allow(['*'], ['oci:pull'], ['oci:public/*'])),
    policy('internal', allow(['authenticated'], ['oci:pull'], ['oci:internal/*'])),
  ]);
  for (const principal of [anonymous, user('bob'), role('ci')]) assert.equal(engine.authorize(request(principal, 'oci:pull', 'oci:public/app')).allowed, true);
  assert.equal(engine.authorize(request(user('bob'), 'oci:pull', 'oci:internal/app')).allowed, true);
  assert.equal(engine.authorize(request(role('ci'), 'oci:pull', 'oci:internal/app')).allowed, true);
  assert.equal(engine.authorize(request(anonymous, 'oci:pull', 'oci:internal/app')).reason, 'default-deny');
});

test('anonymous applies to the anonymous principal only', () => {
  const engine = new PolicyEngine([policy('anon', allow(['anonymous'], ['s3:GetObject'], ['s3:public/*']))]);
  assert.equal(engine.authorize(request(anonymous, 's3:GetObject', 's3:public/k')).allowed, true);
  assert.equal(engine.authorize(request(user('bob'), 's3:GetObject', 's3:public/k')).allowed, false);
  // A deny for anonymous does not touch signed-in users.
  const denied = new PolicyEngine([policy('all', allow(['*'], ['*'], ['*'])), policy('no-anon', deny(['anonymous'], ['s3:PutObject'], ['*']))]);
  assert.equal(denied.authorize(request(anonymous, 's3:PutObject', 's3:b/k')).reason, 'explicit-deny');
  assert.equal(denied.authorize(request(user('bob'), 's3:PutObject', 's3:b/k')).reason, 'allow');
});

test('user, group and role principals', () => {
  const engine = new PolicyEngine([
    policy('u', allow(['user:alice'], ['s3:GetObject'], ['s3:u/*'])),
    policy('g', allow(['group:team-a'], ['s3:GetObject'], ['s3:g/*'])),
    policy('r', allow(['role:deployer'], ['s3:GetObject'], ['s3:r/*'])),
  ]);
  const decide = (principal: PolicyPrincipal, resource: string) => engine.authorize(request(principal, 's3:GetObject', resource)).allowed;
  assert.equal(decide(user('alice'), 's3:u/k'), true);
  assert.equal(decide(role('alice'), 's3:u/k'), false, 'a role named alice is not the user alice');
  assert.equal(decide(user('bob', ['team-b', 'team-a']), 's3:g/k'), true);
  assert.equal(decide(user('bob', ['team-b']), 's3:g/k'), false);
  assert.equal(decide(user('team-a'), 's3:g/k'), false, 'a user named like the group is not a member');
  assert.equal(decide(role('ci', ['team-a']), 's3:g/k'), true);
  assert.equal(decide(user('bob', [], ['deployer']), 's3:r/k'), true, 'a mapped role');
  assert.equal(decide(role('deployer'), 's3:r/k'), true, 'a principal of kind role');
  assert.equal(decide(role('builder'), 's3:r/k'), false);
  assert.equal(decide(anonymous, 's3:r/k'), false);
});

test('wildcards in principal names', () => {
  const engine = new PolicyEngine([
    policy('ci', allow(['role:ci-*'], ['oci:push'], ['oci:*'])),
    policy('teams', deny(['group:contractors-?'], ['oci:push'], ['oci:prod/*'])),
    policy('users', allow(['user:*'], ['oci:pull'], ['oci:*'])),
  ]);
  assert.equal(engine.authorize(request(role('ci-web'), 'oci:push', 'oci:web')).allowed, true);
  assert.equal(engine.authorize(request(user('bob', [], ['ci-api']), 'oci:push', 'oci:web')).allowed, true);
  assert.equal(engine.authorize(request(role('ci-web', ['contractors-1']), 'oci:push', 'oci:prod/web')).reason, 'explicit-deny');
  assert.equal(engine.authorize(request(role('ci-web', ['contractors-12']), 'oci:push', 'oci:prod/web')).reason, 'allow');
  assert.equal(engine.authorize(request(user('anyone'), 'oci:pull', 'oci:web')).allowed, true);
  assert.equal(engine.authorize(request(role('ci-web'), 'oci:pull', 'oci:web')).allowed, false, 'user:* is users only');
  assert.equal(engine.authorize(request(anonymous, 'oci:pull', 'oci:web')).allowed, false);
});

test('action patterns: exact, service wildcards, and *', () => {
  const engine = new PolicyEngine([
    policy('get', allow(['user:a'], ['s3:Get*'], ['*'])),
    policy('q', allow(['user:b'], ['oci:p?ll', 's3:*Object'], ['*'])),
    policy('all', allow(['user:c'], ['*'], ['*'])),
  ]);
  const decide = (who: string, action: string) => engine.authorize(request(user(who), action, 's3:b/k')).allowed;
  assert.equal(decide('a', 's3:GetObject'), true);
  assert.equal(decide('a', 's3:GetBucketPolicy'), true);
  assert.equal(decide('a', 's3:PutObject'), false);
  assert.equal(decide('a', 'oci:Get'), false, 'the service is part of the action');
  assert.equal(decide('a', 's3:getObject'), false, 'actions are case-sensitive');
  assert.equal(decide('b', 'oci:pull'), true);
  assert.equal(decide('b', 'oci:push'), false);
  assert.equal(decide('b', 's3:DeleteObject'), true);
  assert.equal(decide('b', 's3:GetObjectAcl'), false);
  assert.equal(decide('c', 'admin:RunGc'), true);
  assert.equal(decide('c', 'weird-action-without-service'), true);
  assert.equal(decide('a', 'weird-action-without-service'), false);
});

test('resource patterns', () => {
  const engine = new PolicyEngine([policy('r', allow(['user:a'], ['*'], ['s3:team-a', 's3:team-a/*', 'oci:team-a/app-v?']))]);
  const decide = (resource: string) => engine.authorize(request(user('a'), 's3:GetObject', resource)).allowed;
  assert.equal(decide('s3:team-a'), true);
  assert.equal(decide('s3:team-a/dir/key'), true);
  assert.equal(decide('s3:team-ab/key'), false);
  assert.equal(decide('s3:Team-a/key'), false);
  assert.equal(decide('oci:team-a/app-v1'), true);
  assert.equal(decide('oci:team-a/app-v12'), false);
});

test('sourceIp conditions: IPv4 and IPv6 ranges, mapped addresses, missing address', () => {
  const office = { conditions: { sourceIp: ['10.20.0.0/16', '192.168.1.7', '2001:db8:abcd::/48'] } };
  const engine = new PolicyEngine([policy('office', allow(['user:a'], ['s3:PutObject'], ['*'], office))]);
  const decide = (sourceIp: string | undefined) => engine.authorize(request(user('a'), 's3:PutObject', 's3:b/k', { sourceIp })).allowed;
  assert.equal(decide('10.20.3.4'), true);
  assert.equal(decide('10.21.3.4'), false);
  assert.equal(decide('192.168.1.7'), true);
  assert.equal(decide('192.168.1.8'), false);
  assert.equal(decide('::ffff:10.20.3.4'), true, 'IPv4-mapped IPv6, as a dual-stack socket reports it');
  assert.equal(decide('2001:db8:abcd:12::1'), true);
  assert.equal(decide('2001:db8:abce::1'), false);
  assert.equal(decide('fe80::1%eth0'), false);
  assert.equal(decide('not-an-address'), false);
  assert.equal(decide(undefined), false, 'no address: the condition does not hold');
});

test('a deny whose condition fails does not apply', () => {
  const engine = new PolicyEngine([
    policy('all', allow(['*'], ['*'], ['*'])),
    policy('block', deny(['*'], ['*'], ['*'], { sid: 'BadNet', conditions: { sourceIp: ['203.0.113.0/24'] } })),
  ]);
  assert.equal(engine.authorize(request(user('a'), 's3:GetObject', 's3:b/k', { sourceIp: '203.0.113.9' })).reason, 'explicit-deny');
  assert.equal(engine.authorize(request(user('a'), 's3:GetObject', 's3:b/k', { sourceIp: '198.51.100.1' })).reason, 'allow');
  assert.equal(engine.authorize(request(user('a'), 's3:GetObject', 's3:b/k')).reason, 'allow');
});

test('time windows are inclusive at both ends', () => {
  const window = { conditions: { notBefore: '2026-06-01T00:00:00Z', notAfter: '2026-06-30T23:59:59.999Z' } };
  const engine = new PolicyEngine([policy('june', allow(['user:a'], ['*'], ['*'], window))]);
  const at = (iso: string) => engine.authorize(request(user('a'), 's3:GetObject', 's3:b/k', { time: new Date(iso) })).allowed;
  assert.equal(at('2026-05-31T23:59:59.999Z'), false);
  assert.equal(at('2026-06-01T00:00:00Z'), true);
  assert.equal(at('2026-06-15T00:00:00+02:00'), true);
  assert.equal(at('2026-06-30T23:59:59.999Z'), true);
  assert.equal(at('2026-07-01T00:00:00Z'), false);
  assert.equal(engine.authorize(request(user('a'), 's3:GetObject', 's3:b/k', { time: new Date(Number.NaN) })).allowed, false);
  const open = new PolicyEngine([policy('from', allow(['user:a'], ['*'], ['*'], { conditions: { notBefore: '2026-01-01T00:00:00Z' } }))]);
  assert.equal(open.authorize(request(user('a'), 's3:GetObject', 's3:b/k', { time: new Date('2099-01-01T00:00:00Z') })).allowed, true);
});

test('all conditions of a statement must hold', () => {
  const engine = new PolicyEngine([
    policy('p', allow(['user:a'], ['*'], ['*'], { conditions: { sourceIp: ['10.0.0.0/8'], notAfter: '2026-12-31T00:00:00Z' } })),
  ]);
  assert.equal(engine.authorize(request(user('a'), 'x:y', 's3:b', { sourceIp: '10.1.1.1' })).allowed, true);
  assert.equal(engine.authorize(request(user('a'), 'x:y', 's3:b', { sourceIp: '10.1.1.1', time: new Date('2027-01-01T00:00:00Z') })).allowed, false);
  assert.equal(engine.authorize(request(user('a'), 'x:y', 's3:b', { sourceIp: '11.1.1.1' })).allowed, false);
});

test('a statement filed under several keys is decided once and correctly', () => {
  // Alice matches through her user, her group, her role and `*`; the statement lists two action patterns
  // for the same action. Only the resource or condition may exclude it, whichever path finds it.
  const statement = allow(['*', 'user:alice', 'group:g', 'role:r'], ['s3:Get*', 's3:GetObject', '*'], ['s3:b/*'], { sid: 'Many' });
  const engine = new PolicyEngine([policy('p', statement)]);
  const alice = user('alice', ['g', 'g'], ['r']);
  assert.deepEqual(engine.authorize(request(alice, 's3:GetObject', 's3:b/k')).matched, { policy: 'p', sid: 'Many', statement: 0 });
  assert.equal(engine.authorize(request(alice, 's3:GetObject', 's3:c/k')).reason, 'default-deny');
  // Decisions in sequence do not leak state: the same statement is evaluated afresh each time.
  assert.equal(engine.authorize(request(alice, 's3:GetObject', 's3:b/k')).reason, 'allow');
});

test('an earlier statement that only matches by action does not hide a later applying one', () => {
  const engine = new PolicyEngine([
    policy('p1', allow(['group:g'], ['s3:Put*', 's3:Get*'], ['s3:b/*'])),
    policy('p2', allow(['group:g'], ['s3:GetObject'], ['s3:c/*'])),
  ]);
  assert.deepEqual(engine.authorize(request(user('x', ['g']), 's3:GetObject', 's3:c/k')).matched, { policy: 'p2', statement: 0 });
  assert.deepEqual(engine.authorize(request(user('x', ['g']), 's3:GetObject', 's3:b/k')).matched, { policy: 'p1', statement: 0 });
});

test('decisions are frozen', () => {
  const engine = new PolicyEngine([policy('p', allow(['*'], ['*'], ['*']))]);
  const decision = engine.authorize(request(anonymous, 's3:GetObject', 's3:b'));
  assert.ok(Object.isFrozen(decision) && Object.isFrozen(decision.matched));
  assert.ok(Object.isFrozen(engine.authorize(request(anonymous, 'x:y', 'oci:z'))));
  assert.equal(engine.policyCount, 1);
  assert.equal(engine.statementCount, 1);
});

test('malformed statements are refused at construction', () => {
  const refused = (statement: PolicyStatement, pattern: RegExp) =>
    assert.throws(() => new PolicyEngine([policy('bad', allow(['*'], ['*'], ['*']), statement)]), (e) => isAstoreError(e, 'MalformedPolicy') && pattern.test(e.message));
  refused(allow(['*'], ['*'], ['*'], { conditions: { sourceIp: ['10.0.0.0/40'] } }), /^policy bad statement 1: "10\.0\.0\.0\/40" is not an IP address/);
  refused(allow(['*'], ['*'], ['*'], { conditions: { notAfter: 'soon' } }), /^policy bad statement 1: notAfter: "soon" is not an instant/);
  refused(allow(['people:bob'], ['*'], ['*']), /unknown principal "people:bob"/);
});

test('with many policies, a decision is cheap', () => {
  const policies: PolicyDocument[] = [];
  for (let t = 0; t < 2000; t++) {
    policies.push(policy(`team-${t}`, allow([`group:team-${t}`], ['s3:GetObject', 's3:PutObject'], [`s3:team-${t}/*`]), deny([`group:team-${t}-guests`], ['s3:PutObject'], [`s3:team-${t}/*`])));
  }
  const engine = new PolicyEngine(policies);
  const member = user('m', ['team-1999']);
  assert.deepEqual(engine.authorize(request(member, 's3:GetObject', 's3:team-1999/k')).matched, { policy: 'team-1999', statement: 0 });
  const started = performance.now();
  for (let i = 0; i < 20_000; i++) engine.authorize(request(member, 's3:GetObject', 's3:team-1998/k'));
  // A scan of 4,000 statements per decision would take seconds; the index makes it microseconds.
  assert.ok(performance.now() - started < 1000);
});

test('resource keys never hide a statement that matches', () => {
  const engine = new PolicyEngine([
    policy('prefix', allow(['user:a'], ['s3:GetObject'], ['s3:team-a*'], { sid: 'Prefix' })),
    policy('mixed', allow(['user:b'], ['s3:GetObject'], ['s3:b/*', 'oci:*'], { sid: 'Mixed' })),
    policy('question', allow(['user:c'], ['s3:GetObject'], ['s3:bucket?/*', 's3:x/y/z'], { sid: 'Question' })),
    policy('bucket', allow(['user:d'], ['s3:ListBucket'], ['s3:logs'], { sid: 'Bucket' })),
  ]);
  const decide = (who: string, action: string, resource: string) => engine.authorize(request(user(who), action, resource)).allowed;
  assert.equal(decide('a', 's3:GetObject', 's3:team-a'), true);
  assert.equal(decide('a', 's3:GetObject', 's3:team-ab/k'), true);
  assert.equal(decide('a', 's3:GetObject', 's3:team-a/k/l'), true);
  assert.equal(decide('b', 's3:GetObject', 's3:b/k'), true);
  assert.equal(decide('b', 's3:GetObject', 'oci:anything/else'), true);
  assert.equal(decide('b', 's3:GetObject', 's3:b'), false);
  assert.equal(decide('c', 's3:GetObject', 's3:bucket1/k'), true);
  assert.equal(decide('c', 's3:GetObject', 's3:x/y/z'), true);
  assert.equal(decide('c', 's3:GetObject', 's3:x/y'), false);
  assert.equal(decide('d', 's3:ListBucket', 's3:logs'), true);
  assert.equal(decide('d', 's3:ListBucket', 's3:logs/k'), false);
  assert.equal(decide('d', 's3:ListBucket', 's3:log'), false);
});

test('many distinct client addresses decide correctly past the address cache', () => {
  const engine = new PolicyEngine([policy('net', allow(['*'], ['*'], ['*'], { conditions: { sourceIp: ['10.1.0.0/16', '2001:db8::/32'] } }))]);
  for (let i = 0; i < 5000; i++) {
    const inside = i % 2 === 0;
    const v4 = `10.${inside ? 1 : 2}.${(i >> 8) & 255}.${i & 255}`;
    const v6 = `2001:${inside ? 'db8' : 'db9'}::${i.toString(16)}`;
    assert.equal(engine.authorize(request(user('a'), 'x:y', 's3:b', { sourceIp: v4 })).allowed, inside, v4);
    assert.equal(engine.authorize(request(user('a'), 'x:y', 's3:b', { sourceIp: v6 })).allowed, inside, v6);
  }
});
