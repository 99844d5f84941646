// No JSX and no React plugin: the app calls createElement (src/h.js), so plain Vite
// builds it. `tasksync` is web/ linked into node_modules: React must resolve from
// this project, not from web/ (which has no node_modules).
import { defineConfig } from 'vite';

export default defineConfig({
  resolve: { dedupe: ['react', 'react-dom'] },
  // Every file at the top of dist/: backend-api's STATIC_DIR serves no subfolders,
  // so `STATIC_DIR=examples/react/dist` serves the app on the API's own origin.
  build: { assetsDir: '', outDir: 'dist', emptyOutDir: true },
  server: {
    // `npm run dev` against a local stack (tools/run-stack.sh): the API on 8000.
    proxy: { '/api': 'http://127.0.0.1:8000', '/config.json': 'http://127.0.0.1:8000' },
  },
});
