import { parseArgs } from 'node:util';
import { openApp } from './app.ts';
import { ConfigError, configJsonSchema, loadConfig, redactSecrets } from './config/load.ts';
import { createLogger } from './observability/logger.ts';
import { buildServer } from './server.ts';

const usage = `Usage: astore <command> [options]

Commands:
  serve                 start the server (S3 at /, health at /healthz and /readyz)
  config schema         print the configuration JSON Schema
  config show           print the effective configuration (secrets redacted)
  migrate               copy everything into another configuration's stores (astore migrate --help)

Options:
  -c, --config <file>   configuration file (YAML or JSON); also ASTORE_CONFIG
  -h, --help            show this help

Environment: ASTORE_<SECTION>__<KEY> overrides any key, e.g. ASTORE_SERVER__PORT=9000.`;

async function serve(configFile: string | undefined): Promise<void> {
  const config = loadConfig({ file: configFile });
  const log = createLogger(config.log.level);
  const app = await openApp(config, log);
  const server = await buildServer(app);
  app.gc.start();
  await server.listen({ host: config.server.host, port: config.server.port });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : config.server.port;
  const endpoint = `http://${config.server.host === '0.0.0.0' ? '127.0.0.1' : config.server.host}:${port}`;
  if (app.root.source === 'config') {
    log.info({ endpoint, accessKeyId: app.root.accessKeyId }, 'astore is ready; root credentials from configuration');
  } else {
    // The secret is printed to the terminal (stderr) only, never into the structured log.
    process.stderr.write(
      `\nastore is ready at ${endpoint}\n` +
        `  root credentials ${app.root.generated ? 'generated and stored' : 'read from'} ${app.root.source} (mode 0600)\n` +
        `  export AWS_ACCESS_KEY_ID=${app.root.accessKeyId}\n` +
        `  export AWS_SECRET_ACCESS_KEY=$(node -p "require('${app.root.source.replace(/'/g, "\\'")}').secretKey")\n` +
        `  aws --endpoint-url ${endpoint} s3 ls\n\n`,
    );
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing in-flight requests');
    const deadline = setTimeout(() => {
      log.warn('shutdown grace period over; exiting with requests still in flight');
      process.exit(1);
    }, config.server.shutdownGraceSeconds * 1000);
    deadline.unref();
    server
      .close()
      .then(() => app.close())
      .then(() => {
        log.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<number> {
  // Commands with options of their own parse them themselves.
  // Loaded only for this command: it brings both dialects' drivers.
  if (argv[0] === 'migrate') return (await import('./migrate/command.ts')).migrateCommand(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, sub] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${usage}\n`);
    return command || values.help ? 0 : 2;
  }
  if (command === 'serve') {
    await serve(values.config);
    return -1; // keep running
  }
  if (command === 'config' && sub === 'schema') {
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  if (command === 'config' && sub === 'show') {
    const config = loadConfig({ file: values.config });
    process.stdout.write(`${JSON.stringify(redactSecrets(config), null, 2)}\n`);
    return 0;
  }
  process.stderr.write(`unknown command: ${positionals.join(' ')}\n\n${usage}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`astore: ${err instanceof ConfigError ? err.message : ((err as Error).stack ?? String(err))}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
