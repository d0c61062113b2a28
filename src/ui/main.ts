import { enableOffline } from './offline.ts';

// The app's modules load after the service worker controls the page, so they are cached for offline use.
await enableOffline();
const [{ mount }, { default: App }] = await Promise.all([import('svelte'), import('./App.svelte')]);
mount(App, { target: document.getElementById('app')! });
