import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  worker: { format: 'es' },
  server: { host: '127.0.0.1' },
  build: { target: 'es2022' },
  // Pre-bundle what the app and its workers import, so the dev server never discovers a dependency
  // mid-session and reloads the page (which would interrupt a training run).
  optimizeDeps: { include: ['comlink', 'idb', 'fflate', '@huggingface/transformers', 'ml-pca', '@observablehq/plot', 'three'] },
});
