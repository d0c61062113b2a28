import { register } from 'node:module';
register('./raw-loader.js', import.meta.url);
