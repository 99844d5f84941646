// The demo page on tasksync.js: sign-in (dev login), the list with add, edit, toggle,
// delete (with undo) and reorder (buttons and drag), a connection indicator, toasts
// for changes made on another device and notices for conflicts, refused changes,
// sync and storage errors; lists in a sidebar (create, rename, delete, a role badge,
// shared lists marked), a share dialog (add a member by user id as editor or viewer,
// remove, transfer ownership, leave), the members' initials with an online dot from
// presence, and toasts naming who changed what in a shared list ("bob checked “milk”").
// Query parameter (for tests and odd networks):
//   ?poll=MS                  polling period when the socket cannot be opened
//
// The gateway comes only from this origin's /config.json: a link cannot point the
// page (and its credentials) at another host. The session token lives in
// sessionStorage: it survives a reload of this tab (and so an offline reload with
// changes queued) but is not shared with other tabs, not written to disk for later
// sessions, and is gone when the tab closes; a new tab signs in again. It is sent
// only to this origin's API; the WebSocket gets a single-use ticket instead.
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
const titles = new Map(); // id -> title of a row drawn now (for the toast of a delete)

// Only ws:// or wss:// URLs from the same-origin config are used.
function gatewayFrom(v) {
  try {
    const u = new URL(String(v));
    return u.protocol === 'ws:' || u.protocol === 'wss:' ? u.href : null;
  } catch {
    return null;
  }
}

async function loadConfig() {
  // Same origin only (a relative URL); the service worker answers it offline.
  try {
    const r = await fetch('config.json', { cache: 'no-store' });
    if (r.ok) {
      const c = await r.json();
      config = { ...config, dev_login: !!c.dev_login, gateway_url: gatewayFrom(c.gateway_url) };
    }
  } catch {
    /* offline without a cached copy: poll-free, queue-only until online */
  }
}

function readSession() {
  try {
    localStorage.removeItem(SESSION_KEY); // where older versions kept it
  } catch {
    /* ignore */
  }
  try {
    const v = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (v && v.token && v.user) return v;
  } catch {
    /* ignore */
  }
  return null;
}

function saveSession(v) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(v));
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
  items.clear();
  drawnIds = [];
  lastTasks = [];
  titles.clear();
  $('#list-nav').textContent = '';
  $('#members').textContent = '';
  presenceOf = new Set();
  detailAsked.clear();
  $('#list').textContent = '';
  $('#list').style.height = '';
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
  perf.signedInAt = Date.now(); // (for the browser tests: when this tab's client starts)
  const c = new TaskSync({
    token: session.token,
    userId: session.user,
    apiBase: '',
    gatewayUrl: config.gateway_url,
    pollIntervalMs: poll > 0 ? poll : 3000,
    // The gateway closes a socket whose session expired (4001): with dev login a fresh
    // token is one sign-in away; a pasted token cannot be renewed (sign in again).
    refreshToken: config.dev_login
      ? async () => {
          const s = await devLogin(session.user);
          saveSession(s);
          return s.token;
        }
      : null,
  });
  client = c;
  c.addEventListener('tasks', scheduleRender);
  c.addEventListener('local', renderSoon); // what the user just did shows at once
  c.addEventListener('state', (e) => setStatus(e.detail.state));
  c.addEventListener('change', onChange);
  c.addEventListener('conflict', (e) => onConflict(e.detail));
  c.addEventListener('rejected', (e) => onRejected(e.detail));
  c.addEventListener('storage-error', (e) => {
    const d = e.detail;
    notice(d.quota ? 'This device’s storage is full: changes are not kept offline. They are sent while this tab stays open.' : `Could not keep changes on this device: ${d.error && d.error.message}`, 'error');
  });
  c.addEventListener('sync-error', (e) => {
    const err = e.detail.error;
    if (err && err.code === 'unknown_seq') notice(`Sync: an event the server does not know (seq ${e.detail.seq}) was ignored after one reload.`, 'warn');
    else if (err && err.status && err.status !== 0 && err.status < 500 && err.status !== 401) notice(`Sync error: ${err.message}`, 'error');
  });
  c.addEventListener('lists', renderListsSoon);
  c.addEventListener('select', () => {
    renderListsSoon();
    scheduleRender();
  });
  c.addEventListener('presence', renderListsSoon);
  c.addEventListener('list-removed', (e) => {
    renderListsSoon();
    scheduleRender();
    if (e.detail.shown) renderLists();
  });
  c.addEventListener('auth-error', () => {
    sessionStorage.removeItem(SESSION_KEY);
    showSignIn('Your session has expired: sign in again.');
  });
  c.start();
  c.ready.then(() => {
    if (client !== c) return;
    render();
    renderLists();
    window.tasksync = c; // for the console and the browser tests
  });
  $('#new-title').focus();
}

// The visible indicator follows every state; the screen-reader announcement (a
// separate live region) only changes when the state it names changes, and only
// after it has held for a moment (no announcement for a blip).
let announced = null;
let announceTimer = null;
function setStatus(state) {
  const el = $('#status');
  el.dataset.state = state;
  el.querySelector('.label').textContent = STATE_LABEL[state] || state;
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    if (announced === state) return;
    announced = state;
    $('#status-announce').textContent = `Connection: ${STATE_LABEL[state] || state}`;
  }, 1500);
}

// ---- toasts and notices --------------------------------------------------------

const VERB = {
  'task.created': 'Task created',
  'task.updated': 'Task updated',
  'task.completed': 'Task completed',
  'task.deleted': 'Task deleted',
};

let batch = null; // changes that came in one catch-up, shown as one toast

// The title last shown for a task (drawn or not).
function titleOf(id) {
  if (!id) return '';
  if (titles.has(id)) return titles.get(id);
  const t = lastTasks.find((x) => x.id === id);
  return t ? t.title : '';
}

function describe(event, task) {
  if (event.event_type === 'task.reordered') return 'Tasks reordered';
  if (event.event_type === 'task.moved') return `Task moved${titleOf(event.task && event.task.id) ? `: ${titleOf(event.task.id)}` : ''}`;
  const title = (task && task.title) || (event.task && titleOf(event.task.id)) || '';
  let verb = VERB[event.event_type] || 'Task changed';
  if (event.event_type === 'task.completed' && task && task.completed === false) verb = 'Task reopened';
  return title ? `${verb}: ${title}` : verb;
}

// A change someone else made (a shared list): who did what, e.g. bob checked “milk”.
function describeActor(event, task) {
  const who = event.actor;
  const t = (task && task.title) || (event.task && titleOf(event.task.id)) || '';
  const q = (x) => `“${x}”`;
  const listName = (event.list && event.list.name) || (client && client.list(event.list_id)?.name) || 'a list';
  switch (event.event_type) {
    case 'task.created':
      return `${who} added ${q(t)}`;
    case 'task.completed':
      return `${who} ${task && task.completed === false ? 'unchecked' : 'checked'} ${q(t)}`;
    case 'task.updated':
      return `${who} changed ${q(t)}`;
    case 'task.deleted':
      return `${who} deleted ${q(t || 'a task')}`;
    case 'task.moved':
      return `${who} moved ${q(t)}`;
    case 'task.reordered':
      return `${who} reordered ${q(listName)}`;
    case 'list.shared':
      return `${who} shared ${q(listName)} with you`;
    case 'list.unshared':
      return `You are no longer a member of ${q(listName)}`;
    case 'list.deleted':
      return `${who} deleted the list ${q(listName)}`;
    case 'list.updated':
      return null; // members or name: the sidebar shows it
    default:
      return `${who} changed ${q(listName)}`;
  }
}

function onChange(e) {
  const { event, own, task, source } = e.detail;
  if (own) return; // our own echo: no toast
  let text;
  if (event.actor && client && event.actor !== client.userId) text = describeActor(event, task);
  else if (event.event_type.startsWith('list.')) text = event.event_type === 'list.created' || event.event_type === 'list.updated' ? null : `List ${event.event_type.slice(5)}: ${(event.list && event.list.name) || ''}`;
  else text = describe(event, task);
  if (!text) return;
  // A catch-up (after a reconnect, or a poll) can bring many at once, and so can a
  // burst of pushed events: what comes within 100 ms is one toast.
  if (!batch) {
    batch = [];
    setTimeout(
      () => {
        const b = batch;
        batch = null;
        toast(b.length === 1 ? b[0] : `${b.length} changes from another device`);
      },
      source === 'catchup' ? 0 : 100,
    );
  }
  batch.push(text);
}

const FIELD_LABEL = { title: 'title', description: 'description', priority: 'priority', due_at: 'due date', completed: 'done' };
const show = (v) => (v === null || v === undefined ? 'nothing' : typeof v === 'boolean' ? (v ? 'done' : 'not done') : `“${v}”`);

function onConflict(d) {
  const name = (d.task && d.task.title) || d.title || 'a task';
  for (const c of d.conflicts) {
    notice(`Your change to the ${FIELD_LABEL[c.field] || c.field} of “${name}” (${show(c.yours)}) was superseded by ${show(c.theirs)}, made on another device.`, 'conflict');
  }
}

function onRejected(d) {
  const err = d.error || {};
  const name = d.title ? `“${d.title}”` : 'a task';
  if (d.local && err.status === 403) {
    // A viewer's write: refused before it was queued. The row shows what it showed
    // (a checkbox the browser ticked is unticked again).
    for (const li of items.values()) drawn.delete(li);
    render();
    notice(`Not changed: ${err.message}.`, 'warn');
  } else if (d.dropped) notice(`Your change to ${name} was dropped: ${err.message}.`, 'warn');
  else if (err.status === 403) notice(`Change to ${name} refused: ${err.message || 'you may not change this list'} (you are a viewer).`, 'error');
  else if (err.status === 410) notice(`${name} was deleted on another device: your change to it was dropped.`, 'warn');
  else notice(`Change to ${name} refused: ${err.message || 'refused'}`, 'error');
}

// A toast: short-lived (3.5 s), for changes from elsewhere.
function toast(text, kind, actions) {
  return note(text, kind, actions, 3500);
}
// A notice: what went wrong with one of our changes; stays for 10 s, can be dismissed.
function notice(text, kind, actions) {
  return note(text, kind, [...(actions || []), { label: 'Dismiss', run: () => {} }], 10000);
}

function note(text, kind, actions, ms) {
  const box = $('#toasts');
  while (box.children.length >= 4) box.firstElementChild.remove(); // the newest stay
  const el = document.createElement('div');
  el.className = `toast${kind ? ` ${kind}` : ''}`;
  const span = document.createElement('span');
  span.className = 'text';
  span.textContent = text;
  el.appendChild(span);
  for (const a of actions || []) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = a.label;
    b.addEventListener('click', () => {
      el.remove();
      a.run();
    });
    el.appendChild(b);
  }
  box.appendChild(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

// Delete with undo: a delete not sent yet is taken back; one already sent is undone by
// a copy (a deleted task's id stays deleted) put back where the task was.
function deleteWithUndo(id) {
  const list = client.tasks();
  const i = list.findIndex((t) => t.id === id);
  if (i < 0) return;
  const t = list[i];
  const prev = i > 0 ? list[i - 1].id : null;
  const opId = client.remove(id);
  if (!opId) return; // refused here (a viewer): the notice says why
  const c = client;
  toast(`Deleted “${t.title}”`, 'undo', [
    {
      label: 'Undo',
      run: async () => {
        if (c !== client) return;
        if (await c.cancel(opId)) return;
        const copy = c.create({ title: t.title, description: t.description, priority: t.priority, due_at: t.due_at, completed: t.completed });
        if (copy) c.moveTask(copy.id, { after: prev && c.tasks().some((x) => x.id === prev) ? prev : null });
      },
    },
  ]);
}

// ---- the list ----------------------------------------------------------------

// Remote events can come in hundreds a second: the list is drawn at most once a frame
// (and, in a tab the browser does not paint, where frames do not come, by a timer).
// (Each request's frame and timer serve that request only: a timer left from an
// earlier one must not draw between frames.)
let renderQueued = 0;
let renderGen = 0;
function scheduleRender() {
  if (renderQueued) return;
  const g = ++renderGen;
  renderQueued = g;
  const run = () => {
    if (renderQueued !== g) return;
    renderQueued = 0;
    render();
  };
  if (document.visibilityState === 'visible') requestAnimationFrame(run);
  setTimeout(run, document.visibilityState === 'visible' ? 100 : 0);
}

// Before the browser paints again (several changes made in one go: one drawing).
let renderSoonQueued = false;
function renderSoon() {
  if (renderSoonQueued) return;
  renderSoonQueued = true;
  queueMicrotask(() => {
    renderSoonQueued = false;
    render();
  });
}

const drawn = new WeakMap(); // li -> the task object and place it shows
let rendering = false; // items are being moved: a focus lost meanwhile is given back

// Drawing cost, for the benchmark (bench/web) and the console.
const perf = { renders: 0, renderMs: 0, maxRenderMs: 0 };
window.tasksyncDemo = perf;

function render() {
  if (!client) return;
  rendering = true;
  const t = performance.now();
  try {
    draw();
  } finally {
    rendering = false;
    const ms = performance.now() - t;
    perf.renders++;
    perf.renderMs += ms;
    if (ms > perf.maxRenderMs) perf.maxRenderMs = ms;
  }
}

const items = new Map(); // id -> its li, for every task drawn
let lastTasks = []; // the list last drawn (rows not drawn too: a delete's toast names its task)
let dragId = null; // the task being dragged
let drawnIds = []; // the ids last drawn, in order

// Only the rows in and near the viewport are in the document (a list of thousands
// costs what a screenful costs): #list is as tall as every row would be, and each row
// drawn is placed at its index (rows have one fixed height, ROW_PX, style.css). The
// row holding the focus (or the open editor) stays drawn wherever it is, so focus and
// caret survive scrolling and remote changes. Scrolling and resizing re-draw, at most
// once a frame. Rows are in the document in list order (tab order, screen readers),
// each with its place (aria-posinset / aria-setsize).
const ROW_PX = 46;
const OVERSCAN = 10; // rows drawn above and below the viewport

function visibleRange(list, n) {
  const top = list.getBoundingClientRect().top;
  const vh = window.innerHeight || document.documentElement.clientHeight || 800;
  const first = Math.max(0, Math.floor(-top / ROW_PX) - OVERSCAN);
  const last = Math.min(n, Math.ceil((vh - top) / ROW_PX) + OVERSCAN);
  return [first, Math.max(first, last)];
}

function draw() {
  const tasks = client.tasks();
  const list = $('#list');
  // Focus (and the caret in an editor) survives items being moved around.
  const active = document.activeElement;
  const focusIn = active && list.contains(active) ? active : null;
  const sel = focusIn && typeof focusIn.selectionStart === 'number' ? [focusIn.selectionStart, focusIn.selectionEnd, focusIn.selectionDirection] : null;
  const n = tasks.length;
  list.style.height = `${n * ROW_PX}px`;
  list.dataset.count = String(n);
  const [first, last] = visibleRange(list, n);
  // What is drawn: the visible range, plus the focused row and the row being edited.
  const extra = [];
  const pinned = new Set();
  if (focusIn) pinned.add(focusIn.closest('li.task')?.dataset.id);
  if (editingId) pinned.add(editingId);
  if (dragId) pinned.add(dragId); // the row being dragged (the list may scroll under it)
  pinned.delete(undefined);
  if (pinned.size) {
    for (let i = 0; i < n; i++) if ((i < first || i >= last) && pinned.has(tasks[i].id)) extra.push(i);
  }
  const want = [];
  for (const i of extra) if (i < first) want.push(i);
  for (let i = first; i < last; i++) want.push(i);
  for (const i of extra) if (i >= last) want.push(i);
  const fill = (li, t, i) => {
    const d = drawn.get(li);
    if (!d || d.t !== t || d.i !== i || d.n !== n || editingId === t.id) {
      titles.set(t.id, t.title);
      fillItem(li, t, i, n);
      drawn.set(li, { t, i, n });
    }
  };
  let sameRows = want.length === drawnIds.length;
  for (let k = 0; sameRows && k < want.length; k++) if (drawnIds[k] !== tasks[want[k]].id) sameRows = false;
  if (sameRows) {
    // The common case (fields changed, nothing moved): only the changed rows are touched.
    for (const i of want) fill(items.get(tasks[i].id), tasks[i], i);
  } else {
    const keep = new Set();
    let prev = null;
    for (const i of want) {
      const t = tasks[i];
      let li = items.get(t.id);
      if (!li) {
        li = makeItem(t.id);
        items.set(t.id, li);
      }
      fill(li, t, i);
      keep.add(t.id);
      const at = prev ? prev.nextSibling : list.firstChild;
      if (at !== li) list.insertBefore(li, at);
      prev = li;
    }
    for (const [id, li] of items) {
      if (!keep.has(id)) {
        li.remove();
        items.delete(id);
        titles.delete(id); // (from now on read from the list)
      }
    }
    drawnIds = want.map((i) => tasks[i].id);
  }
  lastTasks = tasks;
  if (focusIn && focusIn.isConnected && document.activeElement !== focusIn) {
    focusIn.focus({ preventScroll: true });
    if (sel) focusIn.setSelectionRange(sel[0], sel[1], sel[2]);
  }
  $('#empty').hidden = n > 0;
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
  li.innerHTML = `<span class="handle" title="Drag to reorder" aria-hidden="true">⋮⋮</span>
    <input type="checkbox" class="toggle">
    <span class="title"></span>
    <span class="prio"></span>
    <button type="button" class="up" title="Move up">↑</button>
    <button type="button" class="down" title="Move down">↓</button>
    <button type="button" class="edit">Edit</button>
    <button type="button" class="delete" title="Delete">✕</button>`;
  return li;
}

function fillItem(li, t, index, count) {
  li.style.top = `${index * ROW_PX}px`;
  li.setAttribute('aria-posinset', String(index + 1));
  li.setAttribute('aria-setsize', String(count));
  li.classList.toggle('completed', !!t.completed);
  li.classList.toggle('pending', !!t.pending);
  li.dataset.version = String(t.version ?? '');
  li.querySelector('.toggle').checked = !!t.completed;
  li.querySelector('.up').disabled = index === 0;
  li.querySelector('.down').disabled = index === count - 1;
  const prio = li.querySelector('.prio');
  prio.textContent = t.priority || 'medium';
  prio.className = `prio prio-${t.priority || 'medium'}`;
  // Labels that say which task a button acts on (a screen reader reads the button alone).
  const name = `“${t.title}”`;
  li.querySelector('.toggle').setAttribute('aria-label', `Done: ${t.title}`);
  li.querySelector('.up').setAttribute('aria-label', `Move ${name} up`);
  li.querySelector('.down').setAttribute('aria-label', `Move ${name} down`);
  li.querySelector('.edit').setAttribute('aria-label', `Edit ${name}`);
  li.querySelector('.delete').setAttribute('aria-label', `Delete ${name}`);
  // The field being edited is held under the cursor: what is typed is not replaced.
  if (editingId === t.id) return;
  const title = li.querySelector('.title');
  if (title) {
    title.textContent = t.title;
    title.title = t.title; // one line per row: the whole title on hover
  }
}

function beginEdit(li) {
  const id = li.dataset.id;
  const t = client.tasks().find((x) => x.id === id);
  if (!t) return;
  editingId = id;
  // The version the editor opened on: a field someone else changes meanwhile is a
  // conflict (their value stays, with a notice), never silently overwritten.
  const base = client.versionOf(id);
  const input = document.createElement('input');
  input.className = 'edit-title';
  input.value = t.title;
  input.maxLength = 500;
  input.setAttribute('aria-label', 'Title');
  const sel = document.createElement('select');
  sel.className = 'edit-priority';
  sel.setAttribute('aria-label', 'Priority');
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
    const hadFocus = li.contains(document.activeElement);
    input.replaceWith(span);
    sel.remove();
    li.querySelector('.prio').hidden = false;
    li.draggable = true;
    const v = input.value.trim();
    // Only the fields changed are sent.
    const fields = {};
    if (v && v !== t.title) fields.title = v;
    if (sel.value !== t.priority) fields.priority = sel.value;
    if (save && Object.keys(fields).length) client.update(id, fields, { baseVersion: base });
    drawn.delete(li);
    render();
    if (hadFocus) li.querySelector('.edit').focus({ preventScroll: true });
  };
  // (The key is consumed: focus returns to the Edit button, which must not take it.)
  const onKey = (e) => {
    if (e.key !== 'Enter' && e.key !== 'Escape') return;
    e.preventDefault();
    finish(e.key === 'Enter');
  };
  input.addEventListener('keydown', onKey);
  sel.addEventListener('keydown', onKey);
  li.addEventListener('focusout', function onOut(e) {
    if (li.contains(e.relatedTarget) || rendering) return; // focus moving inside, or a re-render moving the item
    li.removeEventListener('focusout', onOut);
    finish(true);
  });
}

function wireList() {
  const list = $('#list');
  // Scrolling or resizing brings other rows into view: drawn at the next frame.
  window.addEventListener('scroll', () => client && scheduleRender(), { passive: true });
  window.addEventListener('resize', () => client && scheduleRender());
  list.addEventListener('click', (e) => {
    const li = e.target.closest('li.task');
    if (!li || !client) return;
    const id = li.dataset.id;
    if (e.target.matches('.toggle')) client.toggle(id);
    else if (e.target.matches('.delete')) deleteWithUndo(id);
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

  // Drag and drop: drop before the item under the pointer (or at the end). Between two
  // rows (the gap) counts as the row below.
  const rowAt = (e) => {
    const li = e.target.closest('li.task');
    if (li) return li;
    if (e.target !== list || !client) return null;
    const i = Math.floor((e.clientY - list.getBoundingClientRect().top + 6) / ROW_PX); // 6: the gap
    const t = client.tasks()[i];
    return t ? items.get(t.id) || null : null;
  };
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
    const li = rowAt(e);
    if (li && li.dataset.id !== dragId) li.classList.add('drop-before');
  });
  list.addEventListener('drop', (e) => {
    if (!dragId || !client) return;
    e.preventDefault();
    // One move (POST /api/v1/tasks/{id}/move): before the item dropped on, or to the
    // end when dropped below the list. Dropped on itself: nothing happens.
    const target = rowAt(e);
    if (target && target.dataset.id === dragId) return;
    client.moveTask(dragId, { before: target ? target.dataset.id : null });
  });
}

// ---- lists, sharing, presence --------------------------------------------------

let listsQueued = false;
function renderListsSoon() {
  if (listsQueued) return;
  listsQueued = true;
  requestAnimationFrame(() => {
    listsQueued = false;
    renderLists();
  });
  setTimeout(() => {
    if (listsQueued) {
      listsQueued = false;
      renderLists();
    }
  }, 100);
}

const initials = (u) => {
  const parts = String(u).split(/[._@:\-\s]+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[1][0] : String(u).slice(0, 2);
  return s.toUpperCase();
};

const PRESENCE_LISTS = 32; // a gateway allows PRESENCE_MAX_LISTS (64) per socket
let presenceOf = new Set(); // the lists whose presence is subscribed
const detailAsked = new Set(); // lists whose members were fetched for the head

function renderLists() {
  const c = client;
  if (!c) return;
  const sel = c.selectedListId;
  const nav = $('#list-nav');
  const lists = c.lists();
  if (!lists.length) lists.push({ id: sel, name: 'Tasks', default: true, role: 'owner', member_count: 1 });
  nav.textContent = '';
  for (const l of lists) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.list = l.id || '';
    b.setAttribute('aria-current', String((l.id || null) === (sel || null) || (l.default && !sel)));
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = l.name;
    b.appendChild(name);
    if ((l.member_count || 1) > 1) {
      const m = document.createElement('span');
      m.className = 'shared-mark';
      m.textContent = `shared · ${l.member_count}`;
      m.title = `shared: ${l.member_count} members`;
      b.appendChild(m);
    }
    if (!l.default) {
      const r = document.createElement('span');
      r.className = `badge ${l.role}`;
      r.textContent = l.role;
      b.appendChild(r);
    }
    b.dataset.shared = String((l.member_count || 1) > 1);
    li.appendChild(b);
    nav.appendChild(li);
  }
  const l = c.list(sel) || lists[0];
  const role = c.roleOf(sel) || 'owner';
  $('#list-name').textContent = l ? l.name : 'Tasks';
  const badge = $('#list-role');
  badge.textContent = role;
  badge.className = `badge ${role}`;
  const isDefault = !l || l.default;
  badge.hidden = isDefault;
  $('#share-open').hidden = isDefault;
  $('#list-rename').hidden = isDefault || role !== 'owner';
  $('#list-delete').hidden = isDefault || role !== 'owner';
  $('#app').classList.toggle('readonly', role === 'viewer');
  $('#readonly-note').hidden = role !== 'viewer';
  $('#new-title').placeholder = role === 'viewer' ? 'This list is read-only for you' : 'What needs doing?';
  // Presence of every shared list (the first PRESENCE_LISTS): being subscribed is what
  // makes this user "online" in a list for its other members, and the list's head
  // shows its members' initials with an online dot.
  const want = new Set(lists.filter((x) => x.id && !x.default && (x.member_count || 1) > 1).slice(0, PRESENCE_LISTS).map((x) => x.id));
  for (const id of presenceOf) if (!want.has(id)) c.unsubscribePresence(id);
  for (const id of want) if (!presenceOf.has(id)) c.subscribePresence(id);
  presenceOf = want;
  if (l && !isDefault && !l.members && !detailAsked.has(l.id)) {
    detailAsked.add(l.id);
    c.listDetail(l.id).catch(() => detailAsked.delete(l.id));
  }
  const box = $('#members');
  box.textContent = '';
  if (l && !isDefault && l.members) {
    const online = new Map(c.online(l.id).map((o) => [o.user_id, o.devices]));
    for (const m of l.members) {
      const a = document.createElement('span');
      const on = online.get(m.user_id);
      a.className = `avatar${on ? ' is-online' : ''}`;
      a.dataset.user = m.user_id;
      a.dataset.online = on ? String(on) : '0';
      a.title = `${m.user_id} (${m.role})${on ? `: online on ${on} device${on > 1 ? 's' : ''}` : ''}`;
      a.textContent = initials(m.user_id);
      const dot = document.createElement('span');
      dot.className = 'online';
      a.appendChild(dot);
      box.appendChild(a);
    }
  }
  if ($('#share-dialog').open) renderShare();
}

function renderShare() {
  const c = client;
  const id = c && c.selectedListId;
  const l = c && c.list(id);
  if (!l) return;
  const owner = l.role === 'owner';
  $('#share-title').textContent = `Share “${l.name}”`;
  $('#share-form').hidden = !owner;
  $('#leave-list').hidden = owner;
  const ul = $('#member-list');
  ul.textContent = '';
  for (const m of l.members || []) {
    const li = document.createElement('li');
    li.dataset.user = m.user_id;
    const a = document.createElement('span');
    a.className = 'avatar';
    a.textContent = initials(m.user_id);
    const u = document.createElement('span');
    u.className = 'uid';
    u.textContent = m.user_id === c.userId ? `${m.user_id} (you)` : m.user_id;
    const r = document.createElement('span');
    r.className = `badge ${m.role}`;
    r.textContent = m.role;
    li.append(a, u, r);
    if (owner && m.role !== 'owner') {
      const t = document.createElement('button');
      t.type = 'button';
      t.className = 'make-owner';
      t.textContent = 'Make owner';
      t.addEventListener('click', () => act(() => c.transfer(id, m.user_id)));
      const x = document.createElement('button');
      x.type = 'button';
      x.className = 'remove-member';
      x.textContent = 'Remove';
      x.setAttribute('aria-label', `Remove ${m.user_id}`);
      x.addEventListener('click', () => act(() => c.unshare(id, m.user_id)));
      li.append(t, x);
    }
    ul.appendChild(li);
  }
}

// A list call from the page: its error is shown in the dialog (when open) or as a notice.
async function act(fn) {
  const err = $('#share-error');
  err.hidden = true;
  try {
    await fn();
    renderLists();
    return true;
  } catch (e) {
    const m = e && e.message ? e.message : String(e);
    if ($('#share-dialog').open) {
      err.textContent = m;
      err.hidden = false;
    } else notice(m, 'error');
    return false;
  }
}

function wireLists() {
  $('#list-nav').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-list]');
    if (!b || !client) return;
    client.select(b.dataset.list || null);
    renderLists();
    render(); // the list chosen shows at once, not at the next frame
  });
  $('#new-list-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('#new-list-name');
    const name = input.value.trim();
    if (!name || !client) return;
    await act(async () => {
      const l = await client.createList(name);
      input.value = '';
      client.select(l.id);
    });
  });
  $('#list-rename').addEventListener('click', () => {
    const c = client;
    const l = c && c.list(c.selectedListId);
    if (!l) return;
    const name = prompt('Rename the list', l.name);
    if (name && name.trim() && name.trim() !== l.name) act(() => c.renameList(l.id, name.trim()));
  });
  $('#list-delete').addEventListener('click', () => {
    const c = client;
    const l = c && c.list(c.selectedListId);
    if (!l) return;
    if (confirm(`Delete “${l.name}” and its tasks for every member?`)) act(() => c.deleteList(l.id));
  });
  $('#share-open').addEventListener('click', async () => {
    const c = client;
    if (!c) return;
    $('#share-error').hidden = true;
    renderShare();
    $('#share-dialog').showModal();
    await c.listDetail(c.selectedListId).catch(() => null);
    renderShare();
  });
  $('#share-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const c = client;
    const user = $('#share-user').value.trim();
    if (!c || !user) return;
    if (await act(() => c.share(c.selectedListId, user, $('#share-role').value))) $('#share-user').value = '';
    renderShare();
  });
  $('#leave-list').addEventListener('click', async () => {
    const c = client;
    const id = c && c.selectedListId;
    if (!id) return;
    if (await act(() => c.leave(id))) $('#share-dialog').close();
  });
}

function wireForms() {
  $('#add-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('#new-title');
    const title = input.value.trim();
    if (!title || !client) return;
    if (!client.create({ title, priority: $('#new-priority').value })) return; // refused (a viewer): kept in the field
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
  wireLists();
  wireForms();
  await loadConfig();
  const s = readSession();
  if (s) start(s);
  else showSignIn();
}

main();
