// The example: sign in with the API's dev login (DEV_LOGIN=1), then the list through
// tasksync/react. Everything it shows comes from useTaskSync(): the tasks, the
// connection state, the pending (unsent) changes and the conflict notices.
import { useEffect, useState } from 'react';
import { TaskSyncProvider, useTaskSync } from 'tasksync/react';
import { h } from './h.js';

const SESSION = 'example.session';

async function devLogin(user) {
  const r = await fetch('/api/v1/dev/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!r.ok) throw new Error(`sign-in failed: HTTP ${r.status}`);
  return r.json();
}

// The gateway's URL: /config.json's gateway_url, else the API's host on port 8005.
async function gatewayUrl() {
  try {
    const c = await (await fetch('/config.json')).json();
    if (c.gateway_url) return c.gateway_url;
  } catch {
    /* an API without /config.json */
  }
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.hostname}:8005`;
}

export function Root() {
  const [session, setSession] = useState(() => JSON.parse(localStorage.getItem(SESSION) || 'null'));
  const [gw, setGw] = useState(null);
  useEffect(() => {
    gatewayUrl().then(setGw);
  }, []);
  if (!session) return h(SignIn, { onSession: (s) => (localStorage.setItem(SESSION, JSON.stringify(s)), setSession(s)) });
  if (!gw) return h('p', null, 'Loading...');
  const options = { token: session.token, userId: session.user_id, apiBase: '', gatewayUrl: gw };
  return h(TaskSyncProvider, { options }, h(TaskList, { user: session.user_id }));
}

function SignIn({ onSession }) {
  const [user, setUser] = useState('');
  const [error, setError] = useState('');
  const submit = async (e) => {
    e.preventDefault();
    try {
      onSession(await devLogin(user.trim()));
    } catch (err) {
      setError(err.message);
    }
  };
  return h(
    'form',
    { id: 'signin', onSubmit: submit },
    h('input', { id: 'user', placeholder: 'user name', value: user, onChange: (e) => setUser(e.target.value) }),
    h('button', { type: 'submit' }, 'Sign in'),
    error && h('p', { role: 'alert' }, error),
  );
}

function TaskList({ user }) {
  const { tasks, state, pending, conflicts, create, toggle, update, remove, dismissConflict } = useTaskSync();
  const [title, setTitle] = useState('');
  const add = (e) => {
    e.preventDefault();
    if (title.trim()) create({ title });
    setTitle('');
  };
  return h(
    'main',
    null,
    h('p', null, `Signed in as ${user} `, h('span', { className: 'state', 'data-state': state }, state), ` `, h('span', { id: 'pending' }, `${pending.length} unsent`)),
    conflicts.map((c) =>
      h(
        'div',
        { key: c.id, className: 'conflict', role: 'alert', 'data-kind': c.kind, 'data-task': c.taskId || '' },
        c.kind === 'deleted'
          ? `"${c.title}" was deleted on another device while you changed it here.`
          : c.kind === 'conflict'
            ? `"${c.title}" was also changed on another device: ${c.fields.map((f) => `${f.field} kept "${f.theirs}" (yours: "${f.yours}")`).join(', ')}.`
            : `The server refused a change (${c.code || c.error?.status}).`,
        ' ',
        h('button', { onClick: () => dismissConflict(c.id) }, 'OK'),
      ),
    ),
    h('form', { id: 'add', onSubmit: add }, h('input', { id: 'title', placeholder: 'New task', value: title, onChange: (e) => setTitle(e.target.value) }), h('button', { type: 'submit' }, 'Add')),
    h(
      'ul',
      { id: 'tasks' },
      tasks.map((t) =>
        h(
          'li',
          { key: t.id, 'data-id': t.id, className: [t.pending ? 'pending' : '', t.completed ? 'done' : ''].join(' ').trim() },
          h('input', { type: 'checkbox', checked: !!t.completed, onChange: () => toggle(t.id), 'aria-label': 'done' }),
          h('span', { className: 'title', onDoubleClick: () => {
            const v = prompt('Title', t.title);
            if (v && v.trim()) update(t.id, { title: v });
          } }, t.title),
          h('button', { className: 'delete', onClick: () => remove(t.id), 'aria-label': 'delete' }, '×'),
        ),
      ),
    ),
  );
}
