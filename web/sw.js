// Service worker: keeps the app shell so the page opens offline (the offline queue and
// the last list live in IndexedDB). Network first, so a deploy is seen at once; the
// cache only answers when the network does not. The API is never cached.
const CACHE = 'tasksync-shell-v2';
const SHELL = ['./', 'index.html', 'app.js', 'tasksync.js', 'style.css', 'config.json'];

self.addEventListener('install', (e) => {
  e.waitUntil(
    caches
      .open(CACHE)
      .then((c) => Promise.all(SHELL.map((u) => c.add(new Request(u, { cache: 'no-store' })).catch(() => {}))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (e) => {
  e.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  const scope = new URL(self.registration.scope);
  const rel = url.pathname.slice(scope.pathname.length);
  const shell = req.mode === 'navigate' || rel === '' || SHELL.includes(rel);
  if (!shell) return; // the API and everything else: straight to the network
  e.respondWith(
    fetch(req, { cache: 'no-store' })
      .then((res) => {
        if (res.ok) {
          const copy = res.clone();
          const key = req.mode === 'navigate' ? new Request(scope.href) : new Request(url.origin + url.pathname);
          caches.open(CACHE).then((c) => c.put(key, copy));
        }
        return res;
      })
      .catch(() =>
        caches.match(req.mode === 'navigate' ? scope.href : url.origin + url.pathname).then((r) => r || Response.error()),
      ),
  );
});
