import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createRequire } from 'node:module';
import { configSchema, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Environment rule: `ASTORE_` + path segments joined by `__`, each segment in SNAKE_CASE of the
 * camelCase key. `ASTORE_SERVER__PORT=9000` sets server.port; `ASTORE_AUTH__ROOT_SECRET_KEY` sets
 * auth.rootSecretKey. Values are parsed as JSON when they parse (numbers, booleans, arrays), else
 * taken as strings. `ASTORE_CONFIG` names a config file (YAML or JSON); `ASTORE_TOOLS_DIR`,
 * `ASTORE_TEST_*` and `ASTORE_BENCH_*` belong to the test and benchmark scripts and are ignored.
 */
/** ASTORE_ variables that are not configuration keys: the config file, and the project's scripts' own. */
const notConfiguration = /^ASTORE_(CONFIG|TOOLS_DIR|TEST_.*|BENCH_.*)$/;

export function envToConfig(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('ASTORE_') || notConfiguration.test(name) || raw === undefined) continue;
    const path = name.slice('ASTORE_'.length).split('__').map(snakeToCamel);
    let node = out;
    for (const seg of path.slice(0, -1)) {
      const next = node[seg];
      node = (typeof next === 'object' && next !== null ? next : (node[seg] = {})) as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = parseEnvValue(raw);
  }
  return out;
}

function snakeToCamel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(raw: string): unknown {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? raw : value;
  } catch {
    return raw;
  }
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  // yaml is loaded only when a YAML file is given: it costs resident memory for every server otherwise.
  const parsed: unknown = path.endsWith('.json') ? JSON.parse(text) : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
  if (parsed == null) return {};
  if (!isPlainObject(parsed)) throw new ConfigError(`config file ${path} must hold a mapping`);
  return parsed;
}

/** Validates and freezes a configuration; errors name every offending key. */
export function parseConfig(input: unknown): Readonly<Config> {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const path = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        const prefix = path ? `${path}.` : '';
        return `unknown key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => prefix + k).join(', ')}`;
      }
      return `${path || '(root)'}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return deepFreeze(result.data);
}

/** File (ASTORE_CONFIG or `file`), then environment on top, then validation. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> } = {}): Readonly<Config> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.ASTORE_CONFIG;
  const fromFile = file ? readConfigFile(file) : {};
  return parseConfig(deepMerge(deepMerge(fromFile, envToConfig(env)), options.overrides ?? {}));
}

export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input' });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Keys whose values are secrets: never printed (`astore config show`) or logged. */
const secretKey = /(secret|password|accountKey|connectionString|serverKey)/i;

/** A copy of a configuration value with every secret replaced by `[REDACTED]`. */
export function redactSecrets<T>(value: T): T {
  if (Array.isArray(value)) return value.map(redactSecrets) as T;
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, v !== undefined && v !== null && typeof v !== 'object' && secretKey.test(k) ? '[REDACTED]' : redactSecrets(v)]),
  ) as T;
}
