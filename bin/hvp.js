#!/usr/bin/env node
// The `hvp` command: runs the bundled CLI (build it with `npm run build`).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/hvp.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('hvp: dist/hvp.js is missing; run `npm run build` in the project first.');
  process.exit(1);
}
await import(entry.href);
