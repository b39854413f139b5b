import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UserRecord } from '../types.ts';
import {
  type StoreRef,
  T0,
  accessKeyRecord,
  byteOrder,
  groupRecord,
  identityChanges,
  identityNonChanges,
  identityNonChangesSetup,
  policyRecord,
  readIdentity,
  rejectsWith,
  userRecord,
} from './fixtures.ts';

/** IdentityMeta: users, groups, memberships, access keys and policies. */
export function identityTests(store: StoreRef): void {
  const identity = () => store().identity;
  const withGroups = (user: Omit<UserRecord, 'groups'>, groups: string[] = []): UserRecord => ({ ...user, groups });

  // ------------------------------------------------------------ users

  test('createUser returns true, then false for a taken name without changing the user', async () => {
    const alice = userRecord('alice', { email: 'alice@example.com' });
    assert.equal(await identity().createUser(alice), true);
    assert.equal(await identity().createUser(userRecord('alice', { email: 'mallory@example.com', disabled: true })), false);
    assert.deepEqual(await identity().getUser('alice'), withGroups(alice));
  });

  test('getUser returns every field to the millisecond, leaves unset ones absent, null when absent', async () => {
    const full = userRecord('full', { passwordHash: '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA', displayName: 'Full Name', email: 'f@example.com', disabled: true, createdAt: new Date(T0 + 1) });
    const bare = userRecord('bare');
    await identity().createUser(full);
    await identity().createUser({ ...bare, groups: ['ignored'] } as Omit<UserRecord, 'groups'>);
    assert.deepEqual(await identity().getUser('full'), withGroups(full));
    assert.deepEqual(await identity().getUser('bare'), withGroups(bare), 'no optional field, groups ignored on create');
    assert.equal(await identity().getUser('nobody'), null);
    assert.equal(await identity().getUser('FULL'), null, 'names are case-sensitive');
  });

  test('listUsers pages in byte order: next is the last name while more remain, absent on the last page', async () => {
    const names = ['bob', 'Bob', 'alice', 'bob.smith', 'bob@x', 'é', '😀', 'zed'];
    for (const name of names) await identity().createUser(userRecord(name));
    await identity().createGroup(groupRecord('ops'));
    await identity().addMember('ops', 'bob');
    const all = [...names].sort(byteOrder);

    const everything = await identity().listUsers(undefined, 100);
    assert.deepEqual(everything.items.map((user) => user.name), all);
    assert.equal(everything.next, undefined);
    assert.deepEqual(everything.items.find((user) => user.name === 'bob'), withGroups(userRecord('bob'), ['ops']), 'groups are filled');

    const first = await identity().listUsers(undefined, 3);
    assert.deepEqual(first.items.map((user) => user.name), all.slice(0, 3));
    assert.equal(first.next, all[2]);
    const exact = await identity().listUsers(all[4], 3);
    assert.deepEqual(exact.items.map((user) => user.name), all.slice(5));
    assert.equal(exact.next, undefined, 'no next when the page ends exactly at the last user');
    assert.deepEqual((await identity().listUsers('bob.', 2)).items.map((user) => user.name), ['bob.smith', 'bob@x'], 'after a name that does not exist');
    assert.deepEqual(await identity().listUsers(all.at(-1), 10), { items: [] });
    assert.deepEqual((await identity().listUsers(undefined, 0)).items, []);

    const paged: string[] = [];
    for (let after: string | undefined, pages = 0; ; pages++) {
      assert.ok(pages < all.length, 'paging terminates');
      const page = await identity().listUsers(after, 2);
      paged.push(...page.items.map((user) => user.name));
      if (page.next === undefined) break;
      after = page.next;
    }
    assert.deepEqual(paged, all);
  });

  test('updateUser changes the fields given, keeps the others and returns the user; null when absent', async () => {
    const carol = userRecord('carol', { displayName: 'Carol', email: 'carol@example.com' });
    await identity().createUser(carol);
    await identity().createGroup(groupRecord('devs'));
    await identity().addMember('devs', 'carol');

    const updated = await identity().updateUser('carol', { email: 'c@example.com', disabled: true, displayName: undefined });
    const expected = withGroups({ ...carol, email: 'c@example.com', disabled: true }, ['devs']);
    assert.deepEqual(updated, expected);
    assert.deepEqual(await identity().getUser('carol'), expected);

    const withPassword = await identity().updateUser('carol', { passwordHash: '$argon2id$new', disabled: false });
    assert.deepEqual(withPassword, { ...expected, passwordHash: '$argon2id$new', disabled: false });
    assert.deepEqual(await identity().updateUser('carol', {}), withPassword, 'an empty patch returns the user unchanged');

    assert.equal(await identity().updateUser('nobody', { email: 'x@example.com' }), null);
    assert.equal(await identity().getUser('nobody'), null, 'updateUser does not create');
  });

  test('deleteUser removes the user, its access keys and memberships, nobody else’s; false when absent', async () => {
    for (const name of ['dave', 'erin']) await identity().createUser(userRecord(name));
    for (const name of ['a', 'b']) await identity().createGroup(groupRecord(name));
    await identity().addMember('a', 'dave');
    await identity().addMember('b', 'dave');
    await identity().addMember('a', 'erin');
    await identity().createAccessKey(accessKeyRecord('AKDAVE1', 'dave'));
    await identity().createAccessKey(accessKeyRecord('AKDAVE2', 'dave', { revokedAt: new Date(T0 + 5) }));
    await identity().createAccessKey(accessKeyRecord('AKERIN1', 'erin'));

    assert.equal(await identity().deleteUser('dave'), true);
    assert.equal(await identity().getUser('dave'), null);
    assert.equal(await identity().getAccessKey('AKDAVE1'), null);
    assert.equal(await identity().getAccessKey('AKDAVE2'), null);
    assert.deepEqual(await identity().listAccessKeys('dave'), []);
    assert.deepEqual((await identity().getGroup('a'))?.members, ['erin']);
    assert.deepEqual((await identity().getGroup('b'))?.members, []);
    assert.deepEqual(await identity().listAccessKeys(), [accessKeyRecord('AKERIN1', 'erin')]);
    assert.equal(await identity().deleteUser('dave'), false);

    assert.equal(await identity().createUser(userRecord('dave')), true, 'the name is free again');
    assert.deepEqual(await identity().getUser('dave'), withGroups(userRecord('dave')), 'a new user inherits nothing');
  });

  // ------------------------------------------------------------ groups

  test('createGroup returns true, then false for a taken name; getGroup returns it, null when absent', async () => {
    const admins = groupRecord('admins', { description: 'Administrators', createdAt: new Date(T0 + 7) });
    assert.equal(await identity().createGroup(admins), true);
    assert.equal(await identity().createGroup(groupRecord('admins', { description: 'other' })), false);
    assert.equal(await identity().createGroup(groupRecord('bare')), true);
    assert.deepEqual(await identity().getGroup('admins'), { ...admins, members: [] });
    assert.deepEqual(await identity().getGroup('bare'), { ...groupRecord('bare'), members: [] }, 'no description');
    assert.equal(await identity().getGroup('nobody'), null);
    assert.equal(await identity().createUser(userRecord('admins')), true, 'users and groups have separate names');
  });

  test('listGroups pages in byte order and fills members', async () => {
    const names = ['ops', 'Ops', 'dev', 'dev-x', 'dev.y', 'é'];
    for (const name of names) await identity().createGroup(groupRecord(name));
    for (const user of ['zoe', 'amy']) {
      await identity().createUser(userRecord(user));
      await identity().addMember('dev', user);
    }
    const all = [...names].sort(byteOrder);

    const everything = await identity().listGroups(undefined, 100);
    assert.deepEqual(everything.items.map((group) => group.name), all);
    assert.equal(everything.next, undefined);
    assert.deepEqual(everything.items.find((group) => group.name === 'dev')?.members, ['amy', 'zoe']);

    const first = await identity().listGroups(undefined, 4);
    assert.deepEqual(first.items.map((group) => group.name), all.slice(0, 4));
    assert.equal(first.next, all[3]);
    const rest = await identity().listGroups(first.next, 4);
    assert.deepEqual(rest.items.map((group) => group.name), all.slice(4));
    assert.equal(rest.next, undefined);
    assert.deepEqual((await identity().listGroups(undefined, 0)).items, []);
  });

  test('addMember is idempotent and keeps both sides sorted; removeMember true, then false', async () => {
    for (const user of ['u2', 'u1', 'U3']) await identity().createUser(userRecord(user));
    for (const group of ['g2', 'g1']) await identity().createGroup(groupRecord(group));
    for (const [group, user] of [['g2', 'u1'], ['g1', 'u1'], ['g1', 'u2'], ['g1', 'U3'], ['g1', 'u1']] as const) await identity().addMember(group, user);

    assert.deepEqual((await identity().getGroup('g1'))?.members, ['U3', 'u1', 'u2']);
    assert.deepEqual((await identity().getUser('u1'))?.groups, ['g1', 'g2']);

    assert.equal(await identity().removeMember('g1', 'u1'), true);
    assert.equal(await identity().removeMember('g1', 'u1'), false);
    assert.equal(await identity().removeMember('g1', 'nobody'), false);
    assert.equal(await identity().removeMember('nogroup', 'u1'), false);
    assert.deepEqual((await identity().getUser('u1'))?.groups, ['g2']);
    assert.deepEqual((await identity().getGroup('g1'))?.members, ['U3', 'u2']);
  });

  test('addMember throws NoSuchEntity when the group or the user is missing, and adds nothing', async () => {
    await identity().createUser(userRecord('frank'));
    await identity().createGroup(groupRecord('team'));
    await rejectsWith(identity().addMember('nogroup', 'frank'), 'NoSuchEntity');
    await rejectsWith(identity().addMember('team', 'nobody'), 'NoSuchEntity');
    await rejectsWith(identity().addMember('nogroup', 'nobody'), 'NoSuchEntity');
    assert.deepEqual((await identity().getUser('frank'))?.groups, []);
    assert.deepEqual((await identity().getGroup('team'))?.members, []);
  });

  test('deleteGroup removes the group and its memberships, users keep their other groups; false when absent', async () => {
    await identity().createUser(userRecord('gina'));
    for (const group of ['old', 'kept']) {
      await identity().createGroup(groupRecord(group));
      await identity().addMember(group, 'gina');
    }
    assert.equal(await identity().deleteGroup('old'), true);
    assert.equal(await identity().getGroup('old'), null);
    assert.deepEqual((await identity().getUser('gina'))?.groups, ['kept']);
    assert.equal(await identity().deleteGroup('old'), false);
    assert.equal(await identity().createGroup(groupRecord('old')), true);
    assert.deepEqual((await identity().getGroup('old'))?.members, [], 'a new group inherits no members');
  });

  // ------------------------------------------------------------ access keys

  test('createAccessKey stores every field; getAccessKey returns it, null when absent', async () => {
    await identity().createUser(userRecord('hank'));
    const full = accessKeyRecord('AKFULL', 'hank', { description: 'CI', createdAt: new Date(T0 + 1), expiresAt: new Date(T0 + 86_400_000), revokedAt: new Date(T0 + 2) });
    const bare = accessKeyRecord('AKBARE', 'hank');
    await identity().createAccessKey(full);
    await identity().createAccessKey(bare);
    assert.deepEqual(await identity().getAccessKey('AKFULL'), full);
    assert.deepEqual(await identity().getAccessKey('AKBARE'), bare);
    assert.equal(await identity().getAccessKey('AKNONE'), null);
  });

  test('createAccessKey throws NoSuchEntity for a missing user and EntityAlreadyExists for a taken id', async () => {
    await rejectsWith(identity().createAccessKey(accessKeyRecord('AKORPHAN', 'nobody')), 'NoSuchEntity');
    assert.equal(await identity().getAccessKey('AKORPHAN'), null);

    for (const name of ['ivy', 'jack']) await identity().createUser(userRecord(name));
    await identity().createAccessKey(accessKeyRecord('AKTAKEN', 'ivy'));
    await rejectsWith(identity().createAccessKey(accessKeyRecord('AKTAKEN', 'jack', { secretCiphertext: 'other' })), 'EntityAlreadyExists');
    assert.deepEqual(await identity().getAccessKey('AKTAKEN'), accessKeyRecord('AKTAKEN', 'ivy'));
  });

  test('listAccessKeys returns one user’s keys, or everyone’s, ordered by creation', async () => {
    for (const name of ['kim', 'lou']) await identity().createUser(userRecord(name));
    const keys = [
      accessKeyRecord('AKZ', 'kim', { createdAt: new Date(T0 + 1) }),
      accessKeyRecord('AKY', 'lou', { createdAt: new Date(T0 + 2) }),
      accessKeyRecord('AKX', 'kim', { createdAt: new Date(T0 + 3) }),
      accessKeyRecord('AKW', 'kim', { createdAt: new Date(T0 + 4), revokedAt: new Date(T0 + 5) }),
    ];
    for (const key of [keys[2]!, keys[0]!, keys[3]!, keys[1]!]) await identity().createAccessKey(key);
    assert.deepEqual(await identity().listAccessKeys('kim'), [keys[0], keys[2], keys[3]]);
    assert.deepEqual(await identity().listAccessKeys('lou'), [keys[1]]);
    assert.deepEqual(await identity().listAccessKeys('nobody'), []);
    assert.deepEqual(await identity().listAccessKeys(), keys);
  });

  test('revokeAccessKey records when; revoking again keeps the first time; false when absent', async () => {
    await identity().createUser(userRecord('max'));
    await identity().createAccessKey(accessKeyRecord('AKMAX', 'max'));
    assert.equal(await identity().revokeAccessKey('AKMAX', new Date(T0 + 10)), true);
    assert.deepEqual(await identity().getAccessKey('AKMAX'), accessKeyRecord('AKMAX', 'max', { revokedAt: new Date(T0 + 10) }));
    assert.equal(await identity().revokeAccessKey('AKMAX', new Date(T0 + 20)), true);
    assert.deepEqual((await identity().getAccessKey('AKMAX'))?.revokedAt, new Date(T0 + 10));
    assert.equal(await identity().revokeAccessKey('AKNONE', new Date(T0)), false);
    assert.equal(await identity().getAccessKey('AKNONE'), null);
  });

  test('deleteAccessKey removes the key only; true, then false', async () => {
    await identity().createUser(userRecord('ned'));
    await identity().createAccessKey(accessKeyRecord('AKNED1', 'ned'));
    await identity().createAccessKey(accessKeyRecord('AKNED2', 'ned'));
    assert.equal(await identity().deleteAccessKey('AKNED1'), true);
    assert.equal(await identity().getAccessKey('AKNED1'), null);
    assert.equal(await identity().deleteAccessKey('AKNED1'), false);
    assert.deepEqual(await identity().listAccessKeys('ned'), [accessKeyRecord('AKNED2', 'ned')]);
    assert.notEqual(await identity().getUser('ned'), null);
  });

  // ------------------------------------------------------------ policies

  test('putPolicy creates, then updates the document and updatedAt, keeping createdAt', async () => {
    const policy = policyRecord('readers', { createdAt: new Date(T0 + 1), updatedAt: new Date(T0 + 1) });
    assert.equal(await identity().putPolicy(policy), 'created');
    assert.deepEqual(await identity().getPolicy('readers'), policy);

    const replacement = policyRecord('readers', { document: '{"name":"readers","statements":[]}', createdAt: new Date(T0 + 50), updatedAt: new Date(T0 + 60) });
    assert.equal(await identity().putPolicy(replacement), 'updated');
    assert.deepEqual(await identity().getPolicy('readers'), { ...replacement, createdAt: new Date(T0 + 1) });
  });

  test('listPolicies returns all in byte order; getPolicy null when absent; deletePolicy true, then false', async () => {
    const names = ['writers', 'bucket:b', 'Admins', 'bucket:a', 'é'];
    for (const name of names) await identity().putPolicy(policyRecord(name));
    assert.deepEqual(await identity().listPolicies(), [...names].sort(byteOrder).map((name) => policyRecord(name)));
    assert.equal(await identity().getPolicy('nobody'), null);
    assert.equal(await identity().deletePolicy('writers'), true);
    assert.equal(await identity().getPolicy('writers'), null);
    assert.equal(await identity().deletePolicy('writers'), false);
    assert.equal((await identity().listPolicies()).length, names.length - 1);
  });

  // ------------------------------------------------------------ generation

  test('generation goes up with every change and stays with every read', async () => {
    let last = await identity().generation();
    for (const step of identityChanges) {
      await step.run(identity());
      const now = await identity().generation();
      assert.ok(now > last, `${step.action}: ${now} > ${last}`);
      last = now;
      await readIdentity(identity());
      assert.equal(await identity().generation(), last, `reads after ${step.action}`);
    }
  });

  test('a call that changes nothing, or fails, leaves the generation as it was', async () => {
    await identityNonChangesSetup(identity());
    const before = await identity().generation();
    for (const step of identityNonChanges) {
      await step.run(identity()).catch(() => {});
      assert.equal(await identity().generation(), before, step.action);
    }
  });

  test('concurrent changes each advance the generation', async () => {
    const before = await identity().generation();
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => identity().createUser(userRecord(`user-${i}`))));
    assert.deepEqual(created, Array(20).fill(true));
    assert.equal(await identity().generation(), before + 20);
  });
}
