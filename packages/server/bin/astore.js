#!/usr/bin/env node
// The astore command: runs the compiled server (packages/server/dist, made by `npm run build`).
// During development `npm run dev` runs the TypeScript sources directly.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('astore: the server is not built yet; run `npm run build` (or `npm start`) first\n');
  process.exit(1);
}
await import(main.href);
