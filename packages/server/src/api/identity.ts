import { z } from 'zod';
import { AstoreError } from '../core/errors.ts';
import { generateAccessKey } from '../core/identity/keys.ts';
import { hashPassword, validatePassword } from '../core/identity/passwords.ts';
import type { SecretBox } from '../core/identity/secrets.ts';
import type { AccessKeyRecord, GroupRecord, MetaStore, UserRecord } from '../storage/meta/types.ts';
import { type ApiCall, changeEntry, intQuery, readJson, sendJson } from './http.ts';
import type { ApiRoute } from './router.ts';

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/, 'letters, digits and . _ @ -, up to 128 characters');

const newUser = z.strictObject({
  name,
  password: z.string().optional(),
  displayName: z.string().max(256).optional(),
  email: z.string().email().optional(),
  groups: z.array(name).max(100).optional(),
});
const userPatch = z.strictObject({
  password: z.string().optional(),
  displayName: z.string().max(256).optional(),
  email: z.string().email().optional(),
  disabled: z.boolean().optional(),
});
const newGroup = z.strictObject({ name, description: z.string().max(1024).optional() });
const newKey = z.strictObject({ description: z.string().max(256).optional(), expiresAt: z.iso.datetime({ offset: true }).optional() });

const userView = (u: UserRecord) => ({
  name: u.name,
  ...(u.displayName !== undefined && { displayName: u.displayName }),
  ...(u.email !== undefined && { email: u.email }),
  disabled: u.disabled,
  hasPassword: u.passwordHash !== undefined,
  groups: u.groups,
  createdAt: u.createdAt.toISOString(),
});
const groupView = (g: GroupRecord) => ({
  name: g.name,
  ...(g.description !== undefined && { description: g.description }),
  members: g.members,
  createdAt: g.createdAt.toISOString(),
});
/** A key as listed: never the secret, not even encrypted. */
const keyView = (k: AccessKeyRecord) => ({
  accessKeyId: k.accessKeyId,
  user: k.user,
  ...(k.description !== undefined && { description: k.description }),
  createdAt: k.createdAt.toISOString(),
  ...(k.expiresAt && { expiresAt: k.expiresAt.toISOString() }),
  ...(k.revokedAt && { revokedAt: k.revokedAt.toISOString() }),
  status: k.revokedAt ? 'revoked' : k.expiresAt && k.expiresAt.getTime() <= Date.now() ? 'expired' : 'active',
});

const notFound = (what: string) => new AstoreError('NoSuchEntity', `${what} does not exist`);

/** Users, groups and access keys under /api/v1/. */
export function identityRoutes(meta: MetaStore, box: SecretBox): ApiRoute[] {
  const user = (c: ApiCall) => c.params.name!;
  return [
    {
      method: 'POST',
      url: '/api/v1/users',
      action: 'admin:CreateUser',
      resource: () => 'api:users',
      handler: async (call) => {
        const body = await readJson(call.req, newUser);
        if (body.password !== undefined) validatePassword(body.password);
        // Groups first, so a missing one refuses the request before the user exists.
        for (const group of body.groups ?? []) {
          if (!(await meta.identity.getGroup(group))) throw notFound(`group ${group}`);
        }
        const record = {
          name: body.name,
          ...(body.password !== undefined && { passwordHash: await hashPassword(body.password) }),
          ...(body.displayName !== undefined && { displayName: body.displayName }),
          ...(body.email !== undefined && { email: body.email }),
          disabled: false,
          createdAt: new Date(),
        };
        if (!(await meta.identity.createUser(record, changeEntry(call, 'admin:CreateUser', `api:users/${body.name}`)))) {
          throw new AstoreError('EntityAlreadyExists', `user ${body.name} already exists`);
        }
        for (const group of body.groups ?? []) {
          await meta.identity.addMember(group, body.name, changeEntry(call, 'admin:AddGroupMember', `api:groups/${group}`, { user: body.name }));
        }
        return sendJson(call.reply, 201, userView((await meta.identity.getUser(body.name))!));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/users',
      action: 'admin:ListUsers',
      resource: () => 'api:users',
      handler: async (call) => {
        const page = await meta.identity.listUsers(call.query.get('after') ?? undefined, intQuery(call.query, 'limit', 100, 1000));
        return sendJson(call.reply, 200, { users: page.items.map(userView), ...(page.next !== undefined && { next: page.next }) });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/users/:name',
      action: 'admin:GetUser',
      resource: (c) => `api:users/${user(c)}`,
      handler: async (call) => {
        const found = await meta.identity.getUser(user(call));
        if (!found) throw notFound(`user ${user(call)}`);
        return sendJson(call.reply, 200, userView(found));
      },
    },
    {
      method: 'PATCH',
      url: '/api/v1/users/:name',
      action: 'admin:UpdateUser',
      resource: (c) => `api:users/${user(c)}`,
      handler: async (call) => {
        const body = await readJson(call.req, userPatch);
        if (body.password !== undefined) validatePassword(body.password);
        const { password, ...rest } = body;
        const patch = { ...rest, ...(password !== undefined && { passwordHash: await hashPassword(password) }) };
        const changed = Object.keys(body).map((k) => (k === 'password' ? 'password' : k));
        const updated = await meta.identity.updateUser(user(call), patch, changeEntry(call, 'admin:UpdateUser', `api:users/${user(call)}`, { changed }));
        if (!updated) throw notFound(`user ${user(call)}`);
        return sendJson(call.reply, 200, userView(updated));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/users/:name',
      action: 'admin:DeleteUser',
      resource: (c) => `api:users/${user(c)}`,
      handler: async (call) => {
        if (!(await meta.identity.deleteUser(user(call), changeEntry(call, 'admin:DeleteUser', `api:users/${user(call)}`)))) throw notFound(`user ${user(call)}`);
        return call.reply.code(204).send();
      },
    },
    {
      method: 'POST',
      url: '/api/v1/users/:name/access-keys',
      action: 'admin:CreateAccessKey',
      resource: (c) => `api:users/${user(c)}`,
      handler: async (call) => {
        const body = await readJson(call.req, newKey);
        const expiresAt = body.expiresAt !== undefined ? new Date(body.expiresAt) : undefined;
        if (expiresAt && expiresAt.getTime() <= Date.now()) throw new AstoreError('InvalidArgument', 'expiresAt must be in the future');
        const { accessKeyId, secret } = generateAccessKey();
        const record: AccessKeyRecord = {
          accessKeyId,
          user: user(call),
          secretCiphertext: box.seal(secret),
          ...(body.description !== undefined && { description: body.description }),
          createdAt: new Date(),
          ...(expiresAt && { expiresAt }),
        };
        await meta.identity.createAccessKey(record, changeEntry(call, 'admin:CreateAccessKey', `api:users/${user(call)}`, { accessKeyId }));
        // The one time the secret leaves the server.
        return sendJson(call.reply, 201, { ...keyView(record), secretAccessKey: secret });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/users/:name/access-keys',
      action: 'admin:ListAccessKeys',
      resource: (c) => `api:users/${user(c)}`,
      handler: async (call) => {
        if (!(await meta.identity.getUser(user(call)))) throw notFound(`user ${user(call)}`);
        return sendJson(call.reply, 200, { accessKeys: (await meta.identity.listAccessKeys(user(call))).map(keyView) });
      },
    },
    {
      method: 'POST',
      url: '/api/v1/access-keys/:id/revoke',
      action: 'admin:RevokeAccessKey',
      resource: (c) => `api:access-keys/${c.params.id}`,
      handler: async (call) => {
        const id = call.params.id!;
        if (!(await meta.identity.revokeAccessKey(id, new Date(), changeEntry(call, 'admin:RevokeAccessKey', `api:access-keys/${id}`)))) throw notFound(`access key ${id}`);
        return sendJson(call.reply, 200, keyView((await meta.identity.getAccessKey(id))!));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/access-keys/:id',
      action: 'admin:DeleteAccessKey',
      resource: (c) => `api:access-keys/${c.params.id}`,
      handler: async (call) => {
        const id = call.params.id!;
        if (!(await meta.identity.deleteAccessKey(id, changeEntry(call, 'admin:DeleteAccessKey', `api:access-keys/${id}`)))) throw notFound(`access key ${id}`);
        return call.reply.code(204).send();
      },
    },
    {
      method: 'POST',
      url: '/api/v1/groups',
      action: 'admin:CreateGroup',
      resource: () => 'api:groups',
      handler: async (call) => {
        const body = await readJson(call.req, newGroup);
        const record = { name: body.name, ...(body.description !== undefined && { description: body.description }), createdAt: new Date() };
        if (!(await meta.identity.createGroup(record, changeEntry(call, 'admin:CreateGroup', `api:groups/${body.name}`)))) {
          throw new AstoreError('EntityAlreadyExists', `group ${body.name} already exists`);
        }
        return sendJson(call.reply, 201, groupView((await meta.identity.getGroup(body.name))!));
      },
    },
    {
      method: 'GET',
      url: '/api/v1/groups',
      action: 'admin:ListGroups',
      resource: () => 'api:groups',
      handler: async (call) => {
        const page = await meta.identity.listGroups(call.query.get('after') ?? undefined, intQuery(call.query, 'limit', 100, 1000));
        return sendJson(call.reply, 200, { groups: page.items.map(groupView), ...(page.next !== undefined && { next: page.next }) });
      },
    },
    {
      method: 'GET',
      url: '/api/v1/groups/:name',
      action: 'admin:GetGroup',
      resource: (c) => `api:groups/${c.params.name}`,
      handler: async (call) => {
        const found = await meta.identity.getGroup(call.params.name!);
        if (!found) throw notFound(`group ${call.params.name}`);
        return sendJson(call.reply, 200, groupView(found));
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/groups/:name',
      action: 'admin:DeleteGroup',
      resource: (c) => `api:groups/${c.params.name}`,
      handler: async (call) => {
        const group = call.params.name!;
        if (!(await meta.identity.deleteGroup(group, changeEntry(call, 'admin:DeleteGroup', `api:groups/${group}`)))) throw notFound(`group ${group}`);
        return call.reply.code(204).send();
      },
    },
    {
      method: 'PUT',
      url: '/api/v1/groups/:name/members/:user',
      action: 'admin:AddGroupMember',
      resource: (c) => `api:groups/${c.params.name}`,
      handler: async (call) => {
        const { name: group, user: member } = call.params as { name: string; user: string };
        await meta.identity.addMember(group, member, changeEntry(call, 'admin:AddGroupMember', `api:groups/${group}`, { user: member }));
        return call.reply.code(204).send();
      },
    },
    {
      method: 'DELETE',
      url: '/api/v1/groups/:name/members/:user',
      action: 'admin:RemoveGroupMember',
      resource: (c) => `api:groups/${c.params.name}`,
      handler: async (call) => {
        const { name: group, user: member } = call.params as { name: string; user: string };
        if (!(await meta.identity.removeMember(group, member, changeEntry(call, 'admin:RemoveGroupMember', `api:groups/${group}`, { user: member })))) {
          throw notFound(`member ${member} of group ${group}`);
        }
        return call.reply.code(204).send();
      },
    },
  ];
}
