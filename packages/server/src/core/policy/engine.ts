import { type BlockList, SocketAddress, isIP } from 'node:net';
import { AstoreError } from '../errors.ts';
import { buildBlockList } from './document.ts';
import { type Entry, type IndexedStatement, type Lists, PrincipalIndex, type ResourceBuckets, resourceKey, resourcePatternKey } from './statement-index.ts';
import { compileGlob } from './match.ts';
import type { AuthorizationRequest, Decision, PolicyDocument, PolicyStatement } from './types.ts';

/**
 * The policy engine: compiles every statement once, then decides requests without scanning them all.
 *
 * Semantics (types.ts): root is allowed everything; otherwise a statement applies when one of its
 * principals, one of its actions and one of its resources match and its conditions hold; any applying
 * deny wins (`explicit-deny`, reporting the first applying deny in policy order), else the first applying
 * allow in policy order (`allow`), else `default-deny`.
 *
 * Statements are filed by principal, action and resource key (statement-index.ts); a decision reads
 * the few lists its principal's names, its action and its resource select, and tests resource patterns
 * and conditions only there.
 *
 * Decisions are shared frozen objects: do not mutate them. The engine does not change after
 * construction (build a new one when policies change); `authorize` is synchronous and cheap.
 * Construction throws `AstoreError('MalformedPolicy')` on what it cannot compile (an invalid address,
 * instant or principal), naming the policy and statement; documents from parsePolicyDocument or
 * bucketPolicyToDocument always compile.
 */
export class PolicyEngine {
  private readonly index = new PrincipalIndex<CompiledStatement>();
  /** Marks the statements already evaluated in the current decision (one statement sits in several lists). */
  private epoch = 0;
  readonly policyCount: number;
  readonly statementCount: number;

  constructor(policies: readonly PolicyDocument[]) {
    let ordinal = 0;
    for (const policy of policies) {
      policy.statements.forEach((statement, index) => {
        const compiled = compileStatement(policy.name, index, statement, ordinal++);
        try {
          for (const principal of statement.principals) this.index.add(principal, statement.effect, compiled, statement.actions);
        } catch (err) {
          throw new AstoreError('MalformedPolicy', `policy ${policy.name} statement ${index}: ${(err as Error).message}`);
        }
      });
    }
    this.policyCount = policies.length;
    this.statementCount = ordinal;
  }

  authorize(request: AuthorizationRequest): Decision {
    if (request.principal.kind === 'root') return rootDecision;
    const epoch = ++this.epoch;
    const key = resourceKey(request.resource);
    const buckets = this.index.lookup(request.principal, request.action);
    const deny = first(buckets, 'deny', key, request, epoch);
    if (deny !== undefined) return deny.denied;
    const allow = first(buckets, 'allow', key, request, epoch);
    return allow === undefined ? defaultDeny : allow.allowed;
  }
}

/** The applying statement of lowest ordinal among the buckets' `effect` lists for resource key `key`. */
function first(buckets: readonly ResourceBuckets<CompiledStatement>[], effect: 'deny' | 'allow', key: string, request: AuthorizationRequest, epoch: number): CompiledStatement | undefined {
  let best: CompiledStatement | undefined;
  for (const bucket of buckets) {
    const lists: Lists<CompiledStatement> = bucket[effect];
    const keyed = lists.keyed?.get(key);
    if (keyed !== undefined) best = scan(keyed, request, epoch, best);
    best = scan(lists.unkeyed, request, epoch, best);
  }
  return best;
}

/** `best`, or an applying statement of `entries` that comes before it. */
function scan(entries: readonly Entry<CompiledStatement>[], request: AuthorizationRequest, epoch: number, best: CompiledStatement | undefined): CompiledStatement | undefined {
  for (const entry of entries) {
    const statement = entry.statement;
    if (best !== undefined && statement.ordinal >= best.ordinal) break; // lists are in policy order
    if (statement.epoch === epoch) continue;
    if (entry.action !== undefined && !entry.action(request.action)) continue;
    statement.epoch = epoch;
    if (statement.applies(request.resource, request.context)) return statement; // the first applying one here
  }
  return best;
}

const rootDecision: Decision = Object.freeze({ allowed: true, reason: 'root' });
const defaultDeny: Decision = Object.freeze({ allowed: false, reason: 'default-deny' });

interface CompiledStatement extends IndexedStatement {
  readonly allowed: Decision;
  readonly denied: Decision;
  epoch: number;
  applies(resource: string, context: AuthorizationRequest['context']): boolean;
}

function compileStatement(policy: string, index: number, statement: PolicyStatement, ordinal: number): CompiledStatement {
  const where = `policy ${policy} statement ${index}`;
  const matched = Object.freeze(statement.sid === undefined ? { policy, statement: index } : { policy, sid: statement.sid, statement: index });
  const resources = statement.resources.includes('*') ? undefined : statement.resources.map(compileGlob);
  const keys = statement.resources.map(resourcePatternKey);
  const resourceKeys = keys.every((k) => k !== undefined) ? [...new Set(keys)] : undefined;
  const conditions = statement.conditions;
  let sourceIps: BlockList | undefined;
  try {
    if (conditions?.sourceIp !== undefined) sourceIps = buildBlockList(conditions.sourceIp);
  } catch (err) {
    throw new AstoreError('MalformedPolicy', `${where}: ${(err as Error).message}`);
  }
  const notBefore = conditions?.notBefore === undefined ? Number.NEGATIVE_INFINITY : parseInstant(conditions.notBefore, `${where}: notBefore`);
  const notAfter = conditions?.notAfter === undefined ? Number.POSITIVE_INFINITY : parseInstant(conditions.notAfter, `${where}: notAfter`);
  const timed = notBefore !== Number.NEGATIVE_INFINITY || notAfter !== Number.POSITIVE_INFINITY;
  return {
    ordinal,
    resourceKeys,
    allowed: Object.freeze({ allowed: true, reason: 'allow', matched }),
    denied: Object.freeze({ allowed: false, reason: 'explicit-deny', matched }),
    epoch: 0,
    applies(resource, context) {
      if (resources !== undefined && !resources.some((glob) => glob(resource))) return false;
      if (sourceIps !== undefined && !addressIn(sourceIps, context.sourceIp)) return false;
      if (timed) {
        const now = context.time.getTime(); // an invalid Date is NaN: the window does not hold
        if (!(now >= notBefore && now <= notAfter)) return false;
      }
      return true;
    },
  };
}

function parseInstant(text: string, where: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new AstoreError('MalformedPolicy', `${where}: ${JSON.stringify(text)} is not an instant`);
  return ms;
}

/** A missing or unparseable client address is in no range. IPv4-mapped IPv6 addresses match IPv4 ranges. */
function addressIn(list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const parsed = clientAddress(address);
  return parsed !== null && list.check(parsed);
}

/**
 * Client addresses, parsed once: `BlockList.check` with a string builds a SocketAddress each time (about
 * 2 µs, twenty times the check itself), and clients recur. Bounded; emptied when full.
 */
const clientAddresses = new Map<string, SocketAddress | null>();
const maxClientAddresses = 4096;

function clientAddress(text: string): SocketAddress | null {
  let parsed = clientAddresses.get(text);
  if (parsed === undefined) {
    const zone = text.indexOf('%');
    const bare = zone < 0 ? text : text.slice(0, zone);
    const version = isIP(bare);
    parsed = version === 0 ? null : new SocketAddress({ address: bare, family: version === 4 ? 'ipv4' : 'ipv6' });
    if (clientAddresses.size >= maxClientAddresses) clientAddresses.clear();
    clientAddresses.set(text, parsed);
  }
  return parsed;
}
