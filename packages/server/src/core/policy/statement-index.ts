import { AstoreError } from '../errors.ts';
import { type Glob, compileGlob, hasWildcard } from './match.ts';
import type { Effect, PolicyPrincipal } from './types.ts';

/**
 * The engine's statement index: three levels, so that a decision only looks at statements that could
 * apply to its principal, action and resource.
 *
 * 1. principal: everyone (`*`), authenticated, anonymous, and user / group / role names (a few wildcard
 *    principal patterns such as `role:ci-*` are kept aside and tested one by one);
 * 2. action: the exact action, the service for patterns such as `s3:Get*`, and `*`;
 * 3. resource: the first segment of the resource (`s3:team-a` for `s3:team-a/*`, `oci:team-a` for
 *    `oci:team-a/app`), when every resource pattern of the statement fixes it; otherwise unkeyed.
 *
 * Each bucket keeps denies and allows apart. Every list is in policy order (ascending ordinal), which
 * lets the search for the first applying statement stop at the best one found so far. The index only
 * narrows: the engine still tests each candidate's action pattern, resources and conditions.
 */

export interface IndexedStatement {
  /** Position in policy order, over all policies. */
  readonly ordinal: number;
  /** The resource keys every resource pattern of the statement fixes, or undefined if one does not. */
  readonly resourceKeys: readonly string[] | undefined;
}

export interface Entry<S extends IndexedStatement> {
  readonly statement: S;
  /** undefined when the list the entry sits in already implies the action matches. */
  readonly action: Glob | undefined;
}

/**
 * The key a pattern fixes: the part before the first `/`, if the pattern is literal up to there; the
 * whole pattern if it is literal and has no `/`. Any resource the pattern matches has that first segment.
 */
export function resourcePatternKey(pattern: string): string | undefined {
  const slash = pattern.indexOf('/');
  const literal = firstWildcard(pattern);
  if (slash >= 0) return literal < 0 || slash < literal ? pattern.slice(0, slash) : undefined;
  return literal < 0 ? pattern : undefined;
}

export function resourceKey(resource: string): string {
  const slash = resource.indexOf('/');
  return slash < 0 ? resource : resource.slice(0, slash);
}

function firstWildcard(pattern: string): number {
  const star = pattern.indexOf('*');
  const question = pattern.indexOf('?');
  return star < 0 ? question : question < 0 ? star : Math.min(star, question);
}

export interface Lists<S extends IndexedStatement> {
  /** By resource key; undefined until a keyed statement arrives. */
  keyed: Map<string, Entry<S>[]> | undefined;
  readonly unkeyed: Entry<S>[];
}

/** The statements of one (principal key, action key), denies and allows apart, split by resource key. */
export class ResourceBuckets<S extends IndexedStatement> {
  readonly deny: Lists<S> = { keyed: undefined, unkeyed: [] };
  readonly allow: Lists<S> = { keyed: undefined, unkeyed: [] };

  add(effect: Effect, entry: Entry<S>): void {
    const lists = effect === 'deny' ? this.deny : this.allow;
    const keys = entry.statement.resourceKeys;
    if (keys === undefined) return void lists.unkeyed.push(entry);
    lists.keyed ??= new Map();
    for (const key of keys) push(lists.keyed, key, entry);
  }
}

/** One principal key's statements, filed by action. */
export class ActionIndex<S extends IndexedStatement> {
  readonly exact = new Map<string, ResourceBuckets<S>>();
  readonly byService = new Map<string, ResourceBuckets<S>>();
  any: ResourceBuckets<S> | undefined;

  add(effect: Effect, statement: S, pattern: string): void {
    if (pattern === '*') return (this.any ??= new ResourceBuckets()).add(effect, { statement, action: undefined });
    const colon = pattern.indexOf(':');
    const service = colon > 0 ? pattern.slice(0, colon) : '';
    if (service === '' || hasWildcard(service)) return (this.any ??= new ResourceBuckets()).add(effect, { statement, action: compileGlob(pattern) });
    if (!hasWildcard(pattern)) return bucket(this.exact, pattern).add(effect, { statement, action: undefined });
    bucket(this.byService, service).add(effect, { statement, action: compileGlob(pattern) });
  }

  /** Appends the buckets that can hold statements for `action` (whose service is `service`). */
  collect(action: string, service: string | undefined, out: ResourceBuckets<S>[]): void {
    pushPresent(out, this.exact.get(action));
    if (service !== undefined) pushPresent(out, this.byService.get(service));
    pushPresent(out, this.any);
  }
}

type PrincipalKind = 'user' | 'group' | 'role';

/** Statements filed by the principal names they apply to. */
export class PrincipalIndex<S extends IndexedStatement> {
  private everyone: ActionIndex<S> | undefined;
  private authenticated: ActionIndex<S> | undefined;
  private anonymous: ActionIndex<S> | undefined;
  private readonly names = { user: new Map<string, ActionIndex<S>>(), group: new Map<string, ActionIndex<S>>(), role: new Map<string, ActionIndex<S>>() };
  private readonly patterns = new Map<string, { kind: PrincipalKind; glob: Glob; actions: ActionIndex<S> }>();

  add(principal: string, effect: Effect, statement: S, actions: readonly string[]): void {
    const index = this.indexFor(principal);
    for (const action of actions) index.add(effect, statement, action);
  }

  private indexFor(principal: string): ActionIndex<S> {
    if (principal === '*') return (this.everyone ??= new ActionIndex());
    if (principal === 'authenticated') return (this.authenticated ??= new ActionIndex());
    if (principal === 'anonymous') return (this.anonymous ??= new ActionIndex());
    const colon = principal.indexOf(':');
    const kind = principal.slice(0, colon);
    const name = principal.slice(colon + 1);
    if ((kind !== 'user' && kind !== 'group' && kind !== 'role') || colon < 0 || name === '') {
      throw new AstoreError('MalformedPolicy', `unknown principal ${JSON.stringify(principal)}`);
    }
    if (hasWildcard(name)) {
      let entry = this.patterns.get(principal);
      if (entry === undefined) this.patterns.set(principal, (entry = { kind, glob: compileGlob(name), actions: new ActionIndex() }));
      return entry.actions;
    }
    const byName = this.names[kind];
    let index = byName.get(name);
    if (index === undefined) byName.set(name, (index = new ActionIndex()));
    return index;
  }

  /** The buckets filed under any name the principal goes by and under the action. */
  lookup(principal: PolicyPrincipal, action: string): ResourceBuckets<S>[] {
    const colon = action.indexOf(':');
    const service = colon > 0 ? action.slice(0, colon) : undefined;
    const found: ResourceBuckets<S>[] = [];
    this.everyone?.collect(action, service, found);
    if (principal.kind === 'anonymous') this.anonymous?.collect(action, service, found);
    else this.authenticated?.collect(action, service, found);
    const { user, group, role } = this.names;
    if (principal.kind === 'user' && user.size > 0) user.get(principal.name)?.collect(action, service, found);
    if (group.size > 0) for (const g of principal.groups) group.get(g)?.collect(action, service, found);
    if (role.size > 0) {
      if (principal.kind === 'role') role.get(principal.name)?.collect(action, service, found);
      for (const r of principal.roles) role.get(r)?.collect(action, service, found);
    }
    for (const { kind, glob, actions } of this.patterns.values()) if (principalMatches(principal, kind, glob)) actions.collect(action, service, found);
    return found;
  }
}

function principalMatches(principal: PolicyPrincipal, kind: PrincipalKind, glob: Glob): boolean {
  switch (kind) {
    case 'user':
      return principal.kind === 'user' && glob(principal.name);
    case 'group':
      return principal.groups.some(glob);
    case 'role':
      return (principal.kind === 'role' && glob(principal.name)) || principal.roles.some(glob);
  }
}

function bucket<S extends IndexedStatement>(map: Map<string, ResourceBuckets<S>>, key: string): ResourceBuckets<S> {
  let found = map.get(key);
  if (found === undefined) map.set(key, (found = new ResourceBuckets()));
  return found;
}

function pushPresent<T>(list: T[], value: T | undefined): void {
  if (value !== undefined) list.push(value);
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
