import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTool } from './clients.ts';
import { PortInUse, onFreePort, tailOf } from './process.ts';

/** The realm every Keycloak started here imports: clients astore-cli and astore-ci, users alice and bob. */
export const realmFile = fileURLToPath(new URL('../identity/keycloak/realm-astore.json', import.meta.url));
const realm = 'astore';

export interface KeycloakServer {
  /** http://127.0.0.1:<port>, no trailing slash. */
  url: string;
  /** `${url}/realms/astore`, the `iss` of every token. */
  issuer: string;
  jwksUri: string;
  tokenEndpoint: string;
  /** An access token from the password grant (clients with direct access grants: astore-cli). */
  passwordToken(username: string, password: string, clientId?: string): Promise<string>;
  /** An access token from the client-credentials grant (confidential clients: astore-ci). */
  clientCredentialsToken(clientId?: string, secret?: string): Promise<string>;
  /** An access token for the admin REST API (master realm's bootstrap admin; lives 60 s). */
  adminToken(): Promise<string>;
  /**
   * Adds a new RS256 key with a higher priority, so new tokens carry a new `kid`, and returns that kid.
   * The previous RS256 keys are deleted (gone from the JWKS, so tokens they signed no longer verify) or,
   * with `keepPrevious`, made passive (still in the JWKS, no longer signing).
   */
  rotateKeys(options?: { keepPrevious?: boolean }): Promise<string>;
  /** Sets the realm's access token lifespan; tokens issued afterwards have exp - iat == seconds. */
  setAccessTokenLifespan(seconds: number): Promise<void>;
  /** The last lines Keycloak wrote (stdout and stderr). */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, SIGKILL after 15 s; removes the temp directory. Safe to call twice. */
  stop(): Promise<void>;
}

const startTimeoutMs = 180_000;
const stopTimeoutMs = 15_000;
const requestTimeoutMs = 30_000;

/**
 * Starts a Keycloak of its own on a free loopback port, with the `astore` realm imported, and waits until
 * the realm answers. Takes about 20 s (longer on a loaded machine) and 0.5 GB, so a test file starts one
 * in `before` and shares it among its tests, and stops it in `after`.
 *
 * The distribution (ASTORE_TEST_KEYCLOAK, from scripts/install-keycloak.sh) is pre-built and only read:
 * `kc.sh start --optimized` never re-augments, and kc.home.dir is a temp directory holding this run's
 * data (H2 database, realm import, Java temp files) with `lib` linked to the distribution's. So several
 * test files may each run a Keycloak at once.
 */
export async function startKeycloak(): Promise<KeycloakServer> {
  const dist = requireTool('ASTORE_TEST_KEYCLOAK');
  const home = await mkdtemp(join(tmpdir(), 'astore-keycloak-'));
  try {
    // Keycloak reads the persisted build options from <home>/lib/quarkus and realms to import from
    // <home>/data/import; it wants <home>/providers to exist.
    await symlink(join(dist, 'lib'), join(home, 'lib'));
    await mkdir(join(home, 'providers'));
    await mkdir(join(home, 'themes'));
    await mkdir(join(home, 'tmp'));
    await mkdir(join(home, 'data', 'import'), { recursive: true });
    await copyFile(realmFile, join(home, 'data', 'import', 'realm-astore.json'));
  } catch (err) {
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  // A failed start leaves Keycloak's H2 database half-made: the next attempt starts without it.
  return onFreePort(home, (port) => launch(dist, home, port), () => rm(join(home, 'data', 'h2'), { recursive: true, force: true }));
}


async function launch(dist: string, home: string, port: number): Promise<KeycloakServer> {
  const url = `http://127.0.0.1:${port}`;
  const issuer = `${url}/realms/${realm}`;
  const adminPassword = randomBytes(18).toString('base64url');
  const logFile = join(home, 'keycloak.log');

  // Keycloak takes KC_* (and QUARKUS_*) variables as configuration: none leaks in from the caller.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(KC_|QUARKUS_|JAVA_OPTS)/.test(k)));
  const log = openSync(logFile, 'w');
  // detached: kc.sh and its JVM form a process group of their own, stopped together. kc.sh 26.5 runs
  // java as a child (it only execs it after a re-augmentation, which --optimized rules out).
  const child = spawn(
    join(dist, 'bin', 'kc.sh'),
    [
      'start',
      '--optimized',
      '--http-enabled=true',
      '--http-host=127.0.0.1',
      `--http-port=${port}`,
      // A fixed issuer, whatever host name a client uses.
      `--hostname=${url}`,
      '--cache=local',
      '--import-realm',
      // kc.sh passes -D options to java after its own -Dkc.home.dir, so this one wins.
      `-Dkc.home.dir=${home}`,
    ],
    {
      cwd: home,
      detached: true,
      stdio: ['ignore', log, log],
      env: {
        ...inherited,
        KC_BOOTSTRAP_ADMIN_USERNAME: 'admin',
        KC_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
        // Quarkus writes a vertx-cache and uploads into java.io.tmpdir.
        JAVA_OPTS_APPEND: `-Djava.io.tmpdir=${join(home, 'tmp')}`,
      },
    },
  );
  closeSync(log);
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  if (child.pid === undefined) {
    await new Promise((r) => setImmediate(r));
    throw new Error(`cannot start ${join(dist, 'bin', 'kc.sh')}: ${spawnError?.message ?? 'no pid'}`);
  }
  const pgid: number = child.pid;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let stopped: Promise<void> | undefined;

  // If the test process exits without stop() (a failed before(), an uncaught error), Keycloak goes too.
  const killOnExit = () => {
    signalGroup(pgid, 'SIGKILL');
    rmSync(home, { recursive: true, force: true });
  };
  const killOnSignal = (signal: NodeJS.Signals) => {
    killOnExit();
    process.kill(process.pid, signal);
  };
  process.once('exit', killOnExit);
  process.once('SIGINT', killOnSignal);
  process.once('SIGTERM', killOnSignal);
  // The JVM must not keep the test process alive on its own.
  child.unref();

  const logTail = async (lines = 40) => tailOf(logFile, lines);

  // Stops the process group: SIGTERM (kc.sh forwards it to java as well; Keycloak stops in about 4 s),
  // SIGKILL after 15 s.
  async function terminate(): Promise<void> {
    process.removeListener('exit', killOnExit);
    process.removeListener('SIGINT', killOnSignal);
    process.removeListener('SIGTERM', killOnSignal);
    signalGroup(pgid, 'SIGTERM');
    const deadline = Date.now() + stopTimeoutMs;
    while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
    if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
    await exited;
    // A SIGKILLed JVM is reparented and reaped by init; give that a moment.
    const reaped = Date.now() + 5_000;
    while (groupAlive(pgid) && Date.now() < reaped) await sleep(50);
  }

  function stop(): Promise<void> {
    stopped ??= terminate().then(() => rm(home, { recursive: true, force: true }));
    return stopped;
  }

  // Ready when the realm's discovery document answers: the import has finished and the port is open.
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const tail = await logTail();
      await terminate();
      if (/Address already in use|Port .* already (in use|bound)/i.test(tail)) throw new PortInUse(`port ${port} is taken`);
      throw new Error(`Keycloak (${dist}, installed by scripts/install-keycloak.sh) exited during start-up (code ${child.exitCode ?? child.signalCode}); the last lines of its log:\n${tail}`);
    }
    try {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      const tail = await logTail();
      await terminate();
      throw new Error(`Keycloak did not serve realm ${realm} within ${startTimeoutMs / 1000} s; the last lines of its log:\n${tail}`);
    }
    await sleep(250);
  }

  const tokenEndpoint = `${issuer}/protocol/openid-connect/token`;

  async function token(endpoint: string, form: Record<string, string>): Promise<string> {
    const res = await fetch(endpoint, { method: 'POST', body: new URLSearchParams(form), signal: AbortSignal.timeout(requestTimeoutMs) });
    const text = await res.text();
    if (!res.ok) throw new Error(`Keycloak ${form.grant_type} token (${form.client_id}${form.username ? `, ${form.username}` : ''}): ${res.status} ${text}`);
    return (JSON.parse(text) as { access_token: string }).access_token;
  }

  const adminToken = () =>
    token(`${url}/realms/master/protocol/openid-connect/token`, { grant_type: 'password', client_id: 'admin-cli', username: 'admin', password: adminPassword });

  /** Calls the admin REST API under /admin/realms/astore; returns the response (JSON body parsed, if any). */
  async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; headers: Headers; json: unknown }> {
    const res = await fetch(`${url}/admin/realms/${realm}${path}`, {
      method,
      headers: { authorization: `Bearer ${await adminToken()}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Keycloak admin ${method} ${path}: ${res.status} ${text}`);
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
  }

  interface RealmKey {
    kid: string;
    algorithm: string;
    use: string;
    status: string;
    providerId: string;
    providerPriority: number;
  }
  const signingKeys = async () =>
    ((await admin('GET', '/keys')).json as { keys: RealmKey[] }).keys.filter((k) => k.algorithm === 'RS256' && k.use === 'SIG');

  return {
    url,
    issuer,
    jwksUri: `${issuer}/protocol/openid-connect/certs`,
    tokenEndpoint,
    passwordToken: (username, password, clientId = 'astore-cli') => token(tokenEndpoint, { grant_type: 'password', client_id: clientId, username, password }),
    clientCredentialsToken: (clientId = 'astore-ci', secret = 'astore-ci-secret') =>
      token(tokenEndpoint, { grant_type: 'client_credentials', client_id: clientId, client_secret: secret }),
    adminToken,
    async rotateKeys({ keepPrevious = false } = {}) {
      const previous = await signingKeys();
      const realmId = ((await admin('GET', '')).json as { id: string }).id;
      const priority = Math.max(0, ...previous.map((k) => k.providerPriority)) + 100;
      await admin('POST', '/components', {
        name: `rsa-rotated-${priority}`,
        providerId: 'rsa-generated',
        providerType: 'org.keycloak.keys.KeyProvider',
        parentId: realmId,
        config: { priority: [String(priority)], enabled: ['true'], active: ['true'], algorithm: ['RS256'], keySize: ['2048'] },
      });
      for (const providerId of new Set(previous.map((k) => k.providerId))) {
        if (keepPrevious) {
          const component = (await admin('GET', `/components/${providerId}`)).json as { config: Record<string, string[]> };
          await admin('PUT', `/components/${providerId}`, { ...component, config: { ...component.config, active: ['false'] } });
        } else {
          await admin('DELETE', `/components/${providerId}`);
        }
      }
      const active = (await signingKeys()).filter((k) => k.status === 'ACTIVE');
      const kid = active.find((k) => !previous.some((p) => p.kid === k.kid))?.kid;
      if (!kid || active.length !== 1) throw new Error(`Keycloak key rotation: expected one new active RS256 key, found ${JSON.stringify(active)}`);
      return kid;
    },
    async setAccessTokenLifespan(seconds) {
      await admin('PUT', '', { accessTokenLifespan: seconds });
    },
    logTail,
    stop,
  };
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

