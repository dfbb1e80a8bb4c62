// The web app's build: a static folder (dist/) that the API serves under /app. No dev server is
// part of the product: `npm start` serves this build, so the API's Content-Security-Policy holds
// there as in production (Vite's dev server would need inline scripts).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/app/',
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // Every script is a file of its own under /app/assets (script-src 'self', nothing inline).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2022',
  },
});
