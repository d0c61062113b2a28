#!/usr/bin/env node
// The CLI runs the TypeScript sources directly (tsx) with `?raw` WGSL imports resolved as Vite does.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

register('./raw-loader.js', import.meta.url);
registerTsx();
await import('../src/cli/main.ts');
