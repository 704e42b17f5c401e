/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

declare const process: { env: Record<string, string | undefined> };

// The app is served by clew under /ui/ (internal/webui). `npm run dev`
// proxies the APIs to a clew on localhost:3200 (CLEW_URL overrides it).
const clew = process.env.CLEW_URL ?? 'http://127.0.0.1:3200';

export default defineConfig({
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
  server: {
    proxy: { '/api': clew, '/tempo': clew },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
