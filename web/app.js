// The demo page on tasksync.js: sign-in (dev login), the list with add, edit, toggle,
// delete and reorder (buttons and drag), a connection indicator and toasts for changes
// made on another device. Query parameters (for tests and odd networks):
//   ?gateway=ws://host:port   use this gateway instead of /config.json's
//   ?poll=MS                  polling period when the socket cannot be opened
import { TaskSync, STATE } from './tasksync.js';

const $ = (s) => document.querySelector(s);
const params = new URLSearchParams(location.search);
const SESSION_KEY = 'tasksync.session';

const STATE_LABEL = {
  [STATE.CONNECTING]: 'Connecting…',
  [STATE.CATCHING_UP]: 'Catching up…',
  [STATE.LIVE]: 'Live',
  [STATE.POLLING]: 'Polling (no push)',
  [STATE.OFFLINE]: 'Offline',
  [STATE.STOPPED]: 'Not signed in',
};

let config = { gateway_url: null, dev_login: false };
let client = null;
let editingId = null;
const titles = new Map(); // id -> last shown title (for the toast of a delete)

async function loadConfig() {
  try {
    const r = await fetch('config.json', { cache: 'no-store' });
    if (r.ok) {
      config = { ...config, ...(await r.json()) };
      localStorage.setItem('tasksync.config', JSON.stringify(config));
    }
  } catch {
    const saved = localStorage.getItem('tasksync.config');
    if (saved) config = { ...config, ...JSON.parse(saved) };
  }
  if (params.get('gateway')) config.gateway_url = params.get('gateway');
}

function readSession() {
  for (const s of [sessionStorage, localStorage]) {
    try {
      const v = JSON.parse(s.getItem(SESSION_KEY) || 'null');
      if (v && v.token && v.user) return v;
    } catch {
      /* ignore */
    }
  }
  return null;
}

function saveSession(v) {
  const j = JSON.stringify(v);
  sessionStorage.setItem(SESSION_KEY, j);
  localStorage.setItem(SESSION_KEY, j);
}

function jwtSubject(token) {
  try {
    const p = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(p + '='.repeat((4 - (p.length % 4)) % 4))).sub || null;
  } catch {
    return null;
  }
}

function showSignIn(message) {
  if (client) client.stop();
  client = null;
  window.tasksync = null;
  $('#app').hidden = true;
  $('#who').hidden = true;
  $('#signin').hidden = false;
  $('#signin-form').hidden = !config.dev_login;
  $('#token-form').hidden = !!config.dev_login;
  const err = $('#signin-error');
  err.hidden = !message;
  err.textContent = message || '';
  setStatus(STATE.STOPPED);
  (config.dev_login ? $('#signin-user') : $('#signin-token')).focus();
}

async function devLogin(user) {
  const r = await fetch('api/v1/dev/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok || !body || !body.token) {
    throw new Error((body && body.error && body.error.message) || `sign-in failed (HTTP ${r.status})`);
  }
  return { user: body.user_id || user, token: body.token };
}

function start(session) {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#who').hidden = false;
  $('#who-name').textContent = session.user;
  const poll = Number(params.get('poll'));
  client = new TaskSync({
    token: session.token,
    userId: session.user,
    apiBase: '',
    gatewayUrl: config.gateway_url,
    pollIntervalMs: poll > 0 ? poll : 3000,
    // The gateway closes a socket whose token expired (4001): with dev login a fresh
    // token is one sign-in away; a pasted token cannot be renewed (sign in again).
    refreshToken: config.dev_login
      ? async () => {
          const s = await devLogin(session.user);
          saveSession(s);
          return s.token;
        }
      : null,
  });
  window.tasksync = client; // for the console and the browser tests
  client.addEventListener('tasks', render);
  client.addEventListener('state', (e) => setStatus(e.detail.state));
  client.addEventListener('change', onChange);
  client.addEventListener('rejected', (e) => toast(`Change refused: ${e.detail.error.message}`, 'error'));
  client.addEventListener('auth-error', () => {
    localStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(SESSION_KEY);
    showSignIn('Your session has expired: sign in again.');
  });
  client.start();
  render();
  $('#new-title').focus();
}

function setStatus(state) {
  const el = $('#status');
  el.dataset.state = state;
  el.querySelector('.label').textContent = STATE_LABEL[state] || state;
}

// ---- toasts ------------------------------------------------------------------

const VERB = {
  'task.created': 'Task created',
  'task.updated': 'Task updated',
  'task.completed': 'Task completed',
  'task.deleted': 'Task deleted',
};

let batch = null; // changes that came in one catch-up, shown as one toast

function describe(event, task) {
  if (event.event_type === 'task.reordered') return 'Tasks reordered';
  if (event.event_type === 'task.moved') return `Task moved${titles.get(event.task && event.task.id) ? `: ${titles.get(event.task.id)}` : ''}`;
  const title = (task && task.title) || (event.task && titles.get(event.task.id)) || '';
  let verb = VERB[event.event_type] || 'Task changed';
  if (event.event_type === 'task.completed' && task && task.completed === false) verb = 'Task reopened';
  return title ? `${verb}: ${title}` : verb;
}

function onChange(e) {
  const { event, own, task, source } = e.detail;
  if (own) return; // our own echo: no toast
  const text = describe(event, task);
  if (source !== 'catchup') return toast(text);
  // A catch-up (after a reconnect, or a poll) can bring many at once: one toast.
  if (!batch) {
    batch = [];
    setTimeout(() => {
      const b = batch;
      batch = null;
      toast(b.length === 1 ? b[0] : `${b.length} changes from another device`);
    }, 0);
  }
  batch.push(text);
}

function toast(text, kind) {
  const box = $('#toasts');
  while (box.children.length >= 3) box.firstElementChild.remove(); // the newest stay
  const el = document.createElement('div');
  el.className = `toast${kind ? ` ${kind}` : ''}`;
  el.textContent = text;
  box.appendChild(el);
  setTimeout(() => el.remove(), 3500);
}

// ---- the list ----------------------------------------------------------------

function render() {
  if (!client) return;
  const tasks = client.tasks();
  const list = $('#list');
  const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
  const keep = new Set();
  let prev = null;
  tasks.forEach((t, i) => {
    titles.set(t.id, t.title);
    let li = existing.get(t.id);
    if (!li) li = makeItem(t.id);
    fillItem(li, t, i, tasks.length);
    keep.add(t.id);
    const want = prev ? prev.nextSibling : list.firstChild;
    if (want !== li) list.insertBefore(li, want);
    prev = li;
  });
  for (const [id, li] of existing) if (!keep.has(id)) li.remove();
  $('#empty').hidden = tasks.length > 0;
  const p = client.pending;
  const pe = $('#pending');
  pe.hidden = p === 0;
  pe.textContent = p === 1 ? '1 change waiting to be sent' : `${p} changes waiting to be sent`;
}

function makeItem(id) {
  const li = document.createElement('li');
  li.className = 'task';
  li.dataset.id = id;
  li.draggable = true;
  li.innerHTML = `<span class="handle" title="Drag to reorder">⋮⋮</span>
    <input type="checkbox" class="toggle" aria-label="Done">
    <span class="title"></span>
    <span class="prio"></span>
    <button type="button" class="up" title="Move up" aria-label="Move up">↑</button>
    <button type="button" class="down" title="Move down" aria-label="Move down">↓</button>
    <button type="button" class="edit">Edit</button>
    <button type="button" class="delete" title="Delete" aria-label="Delete">✕</button>`;
  return li;
}

function fillItem(li, t, index, count) {
  li.classList.toggle('completed', !!t.completed);
  li.classList.toggle('pending', !!t.pending);
  li.dataset.version = String(t.version ?? '');
  li.querySelector('.toggle').checked = !!t.completed;
  li.querySelector('.up').disabled = index === 0;
  li.querySelector('.down').disabled = index === count - 1;
  const prio = li.querySelector('.prio');
  prio.textContent = t.priority || 'medium';
  prio.className = `prio prio-${t.priority || 'medium'}`;
  if (editingId === t.id) return; // keep the editor (and what is being typed) as it is
  const title = li.querySelector('.title');
  if (title) title.textContent = t.title;
}

function beginEdit(li) {
  const id = li.dataset.id;
  const t = client.tasks().find((x) => x.id === id);
  if (!t) return;
  editingId = id;
  const input = document.createElement('input');
  input.className = 'edit-title';
  input.value = t.title;
  input.maxLength = 500;
  input.setAttribute('aria-label', 'Title');
  const sel = document.createElement('select');
  sel.className = 'edit-priority';
  for (const p of ['low', 'medium', 'high']) sel.add(new Option(p, p, false, p === t.priority));
  const title = li.querySelector('.title');
  title.replaceWith(input);
  li.querySelector('.prio').hidden = true;
  li.insertBefore(sel, input.nextSibling);
  li.draggable = false;
  input.focus();
  input.select();
  const finish = (save) => {
    if (editingId !== id) return;
    editingId = null;
    const span = document.createElement('span');
    span.className = 'title';
    span.textContent = t.title;
    input.replaceWith(span);
    sel.remove();
    li.querySelector('.prio').hidden = false;
    li.draggable = true;
    const v = input.value.trim();
    if (save && v && (v !== t.title || sel.value !== t.priority)) {
      client.update(id, { title: v, priority: sel.value });
    }
    render();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    else if (e.key === 'Escape') finish(false);
  });
  sel.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    else if (e.key === 'Escape') finish(false);
  });
  li.addEventListener('focusout', function onOut(e) {
    if (li.contains(e.relatedTarget)) return;
    li.removeEventListener('focusout', onOut);
    finish(true);
  });
}

function wireList() {
  const list = $('#list');
  list.addEventListener('click', (e) => {
    const li = e.target.closest('li.task');
    if (!li || !client) return;
    const id = li.dataset.id;
    if (e.target.matches('.toggle')) client.toggle(id);
    else if (e.target.matches('.delete')) client.remove(id);
    else if (e.target.matches('.up')) client.move(id, -1);
    else if (e.target.matches('.down')) client.move(id, +1);
    else if (e.target.matches('.edit')) {
      if (editingId === id) li.querySelector('.edit-title').focus();
      else beginEdit(li);
    }
  });
  list.addEventListener('dblclick', (e) => {
    const li = e.target.closest('li.task');
    if (li && e.target.matches('.title') && editingId !== li.dataset.id) beginEdit(li);
  });

  // Drag and drop: drop before the item under the pointer (or at the end).
  let dragId = null;
  list.addEventListener('dragstart', (e) => {
    const li = e.target.closest('li.task');
    if (!li) return;
    dragId = li.dataset.id;
    li.classList.add('dragging');
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', dragId);
  });
  list.addEventListener('dragend', () => {
    dragId = null;
    for (const li of list.querySelectorAll('.dragging, .drop-before')) li.classList.remove('dragging', 'drop-before');
  });
  list.addEventListener('dragover', (e) => {
    if (!dragId) return;
    e.preventDefault();
    for (const li of list.querySelectorAll('.drop-before')) li.classList.remove('drop-before');
    const li = e.target.closest('li.task');
    if (li && li.dataset.id !== dragId) li.classList.add('drop-before');
  });
  list.addEventListener('drop', (e) => {
    if (!dragId || !client) return;
    e.preventDefault();
    // One move (POST /api/v1/tasks/{id}/move): before the item dropped on, or to
    // the end; only the dragged task's position changes, whatever the list's size.
    const target = e.target.closest('li.task');
    const before = target && target.dataset.id !== dragId ? target.dataset.id : null;
    if (target && target.dataset.id === dragId) return;
    client.moveTask(dragId, { before });
  });
}

function wireForms() {
  $('#add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#new-title');
    const title = input.value.trim();
    if (!title || !client) return;
    client.create({ title, priority: $('#new-priority').value });
    input.value = '';
    input.focus();
  });
  $('#signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = $('#signin-user').value.trim();
    try {
      const s = await devLogin(user);
      saveSession(s);
      start(s);
    } catch (err) {
      showSignIn(err.message);
    }
  });
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('#signin-token').value.trim();
    const user = jwtSubject(token);
    if (!user) return showSignIn('That does not look like a token.');
    const s = { user, token };
    saveSession(s);
    start(s);
  });
  $('#sign-out').addEventListener('click', () => {
    localStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(SESSION_KEY);
    showSignIn();
  });
}

async function main() {
  if ('serviceWorker' in navigator) {
    // The app shell is cached so that the page opens (and the queue is kept) offline.
    navigator.serviceWorker.register('sw.js').catch(() => {});
  }
  wireList();
  wireForms();
  await loadConfig();
  const s = readSession();
  if (s) start(s);
  else showSignIn();
}

main();
