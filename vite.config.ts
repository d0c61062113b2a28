import { defaultClientConditions, defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

export default defineConfig({
  plugins: [svelte()],
  // Names the service worker's cache: each build (and each dev server start) caches into its own and
  // deletes the older ones when it activates.
  define: { __BUILD_ID__: JSON.stringify(`${process.env.npm_package_version ?? '0'}-${Date.now().toString(36)}`) },
  worker: { format: 'es' },
  // @huggingface/transformers is here for its tokenizers and never runs ONNX; onnxruntime-web's own
  // switch keeps its 27 MB WebAssembly runtime out of the build (it would load it from elsewhere on first use).
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
  server: { host: '127.0.0.1' },
  build: { target: 'es2022' },
  // Pre-bundle what the app and its workers import, so the dev server never discovers a dependency
  // mid-session and reloads the page (which would interrupt a training run).
  optimizeDeps: { include: ['comlink', 'idb', 'fflate', '@huggingface/transformers', 'ml-pca', '@observablehq/plot', 'three'] },
});
