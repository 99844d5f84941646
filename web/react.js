// React binding of tasksync.js: a provider that owns (or is given) a TaskSync client
// and a hook that gives the list, the connection state, the pending changes and
// conflict notices, re-rendering on the client's events. No JSX, no build step.
//
//   import { TaskSyncProvider, useTaskSync } from 'tasksync/react';
//   <TaskSyncProvider options={{ token, userId, gatewayUrl }}><App/></TaskSyncProvider>
//   const { tasks, state, pending, conflicts, create, update } = useTaskSync();
//
// Conflicts. tasksync.js on main applies changes last-writer-wins and reports no
// conflicts itself, so the binding derives them from its events: a change made here
// to a task that another device changed or deleted before this change reached the
// server (a non-own `change` event for the task while one of our changes to it is
// unconfirmed) is a notice {kind: 'concurrent' | 'deleted'}, and a change the API
// refused for good (`rejected`) is a notice {kind: 'rejected'}. When the client of
// issue 14 lands (it merges per field with base_version and reports
// {field, yours, theirs}), map its conflict event into `conflicts` here and drop the
// derivation; `pending` then comes from its persistent queue the same way.
import { createContext, createElement, useContext, useEffect, useMemo, useSyncExternalStore } from 'react';
import { STATE, TaskSync } from './tasksync.js';

const Ctx = createContext(null);

let noticeSeq = 0;

/**
 * A store over one client: a stable snapshot that changes (a new object) on each
 * event that changes what the hook returns. Exported for tests and non-React use.
 */
export function createTaskSyncStore(client) {
  const listeners = new Set();
  let conflicts = [];
  // task id -> unconfirmed changes made here (counted from `local`, cleared by our own
  // event for the task, or by a catch-up after the changes left the queue).
  const edited = new Map();
  const settling = new Set();
  const build = () => ({
    client,
    tasks: client.tasks(),
    state: client.state,
    pending: client.queue.slice(),
    conflicts,
  });
  let snap = build();
  const publish = () => {
    snap = build();
    for (const l of listeners) l();
  };
  const notice = (n) => {
    conflicts = [...conflicts, { id: `c${++noticeSeq}`, at: new Date().toISOString(), ...n }];
  };
  const queued = (id) => client.queue.some((op) => op.id === id);
  const settle = () => {
    for (const id of edited.keys()) {
      if (queued(id) || settling.has(id)) continue;
      settling.add(id);
      // The catch-up after the change left the queue applies every event up to now,
      // our own for this task included when there is one.
      client
        .sync()
        .catch(() => {})
        .then(() => {
          settling.delete(id);
          if (!queued(id)) edited.delete(id);
        });
    }
  };
  const on = {
    tasks: () => {
      settle();
      publish();
    },
    state: publish,
    local: (e) => {
      const { op } = e.detail;
      if (op.id) edited.set(op.id, (edited.get(op.id) || 0) + 1);
      publish();
    },
    change: (e) => {
      const { event, own, task } = e.detail;
      const id = event.task && event.task.id;
      if (!id || !edited.has(id)) return;
      if (own) {
        edited.delete(id);
        return;
      }
      const shown = task || client.tasks().find((t) => t.id === id) || event.task;
      notice({
        kind: event.event_type === 'task.deleted' ? 'deleted' : 'concurrent',
        taskId: id,
        title: (shown && shown.title) || (event.task && event.task.title) || '',
        event,
      });
      publish();
    },
    rejected: (e) => {
      const { op, error } = e.detail;
      notice({ kind: 'rejected', taskId: op.id || null, op, error, code: error && error.code, title: '' });
      publish();
    },
  };
  // The client's events are listened to while someone subscribes (so StrictMode's
  // unmount and mount again, or a provider that goes away, leaves nothing attached).
  let attached = false;
  const attach = () => {
    if (attached) return;
    attached = true;
    for (const [type, fn] of Object.entries(on)) client.addEventListener(type, fn);
    snap = build(); // what changed while nobody listened
  };
  const detach = () => {
    if (!attached) return;
    attached = false;
    for (const [type, fn] of Object.entries(on)) client.removeEventListener(type, fn);
  };
  return {
    subscribe(l) {
      listeners.add(l);
      attach();
      return () => {
        listeners.delete(l);
        if (!listeners.size) detach();
      };
    },
    getSnapshot: () => snap,
    dismiss(id) {
      const next = id === undefined ? [] : conflicts.filter((c) => c.id !== id);
      if (next.length === conflicts.length) return;
      conflicts = next;
      publish();
    },
    dispose() {
      detach();
      listeners.clear();
    },
  };
}

/**
 * Gives its children a TaskSync client. Either `client` (a TaskSync the caller starts
 * and stops) or `options` (the provider makes the client, starts it when mounted and
 * stops it when unmounted; a change of options.token or options.userId makes a new
 * one).
 */
export function TaskSyncProvider({ client, options, children }) {
  const key = options ? `${options.userId}\u0000${options.token}` : null;
  const owned = useMemo(() => (client || !options ? null : new TaskSync(options)), [client, key]); // eslint-disable-line react-hooks/exhaustive-deps
  const c = client || owned;
  if (!c) throw new TypeError('TaskSyncProvider: give client or options');
  const store = useMemo(() => createTaskSyncStore(c), [c]);
  useEffect(() => {
    if (!owned) return undefined;
    owned.start();
    return () => owned.stop();
  }, [owned]);
  return createElement(Ctx.Provider, { value: store }, children);
}

/**
 * The client's state for rendering: {tasks, state, pending, conflicts, client}, with
 * the client's methods bound (create, update, toggle, remove, move, moveTask,
 * reorder, sync) and dismissConflict(id) (no id: all). Re-renders on every change.
 */
export function useTaskSync() {
  const store = useContext(Ctx);
  if (!store) throw new Error('useTaskSync must be used inside <TaskSyncProvider>');
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const c = snap.client;
  const actions = useMemo(
    () => ({
      create: (fields) => c.create(fields),
      update: (id, fields) => c.update(id, fields),
      toggle: (id) => c.toggle(id),
      remove: (id) => c.remove(id),
      move: (id, delta, to) => c.move(id, delta, to),
      moveTask: (id, where) => c.moveTask(id, where),
      reorder: (order) => c.reorder(order),
      sync: () => c.sync(),
      dismissConflict: (id) => store.dismiss(id),
    }),
    [c, store],
  );
  return useMemo(() => ({ ...snap, online: snap.state === STATE.LIVE || snap.state === STATE.POLLING, ...actions }), [snap, actions]);
}

/** Calls handler(event) on each `type` event of the provider's client (a toast on
 * 'change', a sign-in prompt on 'auth-error'). Keep handler stable (useCallback). */
export function useTaskSyncEvent(type, handler) {
  const store = useContext(Ctx);
  if (!store) throw new Error('useTaskSyncEvent must be used inside <TaskSyncProvider>');
  const c = store.getSnapshot().client;
  useEffect(() => {
    c.addEventListener(type, handler);
    return () => c.removeEventListener(type, handler);
  }, [c, type, handler]);
}

export { STATE, TaskSync };
