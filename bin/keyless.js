#!/usr/bin/env node
// Runs the compiled build when there is one (the container image), else the TypeScript
// sources directly: Node >= 22.18 strips types itself.
import { existsSync } from 'node:fs';
const built = new URL('../dist/main.js', import.meta.url);
await import(existsSync(built) ? built.href : new URL('../src/main.ts', import.meta.url).href);
