#!/usr/bin/env node
// Entry point: runs the TypeScript sources through tsx so that `npx astore` works without a build step.
import { register } from 'tsx/esm/api';
register();
await import('../src/main.ts');
