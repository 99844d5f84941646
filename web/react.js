// React binding of tasksync.js: a provider that owns (or is given) a TaskSync client
// and a hook that gives the list, the connection state, the pending changes and
// conflict notices, re-rendering on the client's events. No JSX, no build step.
//
//   import { TaskSyncProvider, useTaskSync } from 'tasksync/react';
//   <TaskSyncProvider options={{ token, userId, gatewayUrl }}><App/></TaskSyncProvider>
//   const { tasks, state, pending, conflicts, create, update } = useTaskSync();
//
// Conflicts come from the client itself: its `conflict` event (an update the API
// merged per field, where someone else's newer value of a field won: {field, yours,
// theirs}) is a notice {kind: 'conflict'}; its `rejected` event (a change refused for
// good and dropped) is a notice {kind: 'deleted'} when the task was deleted elsewhere
// (410 task_deleted: delete wins), else {kind: 'rejected'}. Both events come in every
// tab of the browser (the sending tab's with remote: true elsewhere). `pending` is the
// client's queue: every unconfirmed change of this browser, shared by its tabs.
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
  // Titles of tasks changed here, for notices about a task the list no longer has
  // (the client reports title null then). Bounded: the oldest go first.
  const titles = new Map();
  const build = () => ({
    client,
    tasks: client.tasks(),
    lists: client.lists(),
    listId: client.selectedListId,
    state: client.state,
    pending: client.queue,
    leader: client.leader,
    conflicts,
  });
  let snap = build();
  const publish = () => {
    snap = build();
    for (const l of listeners) l();
  };
  const titleOf = (d) => {
    if (d.title) return d.title;
    const t = d.id && (client.tasks().find((x) => x.id === d.id) || (d.task && d.task.id === d.id ? d.task : null));
    return (t && t.title) || titles.get(d.id) || '';
  };
  const notice = (n) => {
    conflicts = [...conflicts, { id: `c${++noticeSeq}`, at: new Date().toISOString(), ...n }];
    publish();
  };
  const on = {
    tasks: publish,
    state: publish,
    leader: publish,
    lists: publish,
    select: publish,
    presence: publish,
    local: (e) => {
      const { op } = e.detail;
      if (op.id) {
        const t = client.tasks().find((x) => x.id === op.id);
        const title = (t && t.title) || (op.body && op.body.title);
        if (title) {
          titles.delete(op.id);
          titles.set(op.id, title);
          if (titles.size > 1000) titles.delete(titles.keys().next().value);
        }
      }
      publish();
    },
    conflict: (e) => {
      const d = e.detail;
      notice({ kind: 'conflict', taskId: d.id, title: titleOf(d), fields: d.conflicts, task: d.task, op: d.op, remote: !!d.remote });
    },
    rejected: (e) => {
      const d = e.detail;
      const error = d.error || null;
      const code = (error && error.code) || null;
      const deleted = code === 'task_deleted' || (error && error.status === 410);
      notice({ kind: deleted ? 'deleted' : 'rejected', taskId: d.id ?? null, title: titleOf(d), op: d.op, error, code, remote: !!d.remote });
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
 * The client's state for rendering: {tasks, state, online, pending, leader, conflicts,
 * client}, with the client's methods bound (create, update, versionOf, toggle, remove,
 * cancel, move, moveTask, reorder, sync, persisted, select, moveToList), the lists
 * (`lists`, `listId`: the list shown; re-rendered on lists, select and presence) and dismissConflict(id) (no id:
 * all). Re-renders on every change.
 */
export function useTaskSync() {
  const store = useContext(Ctx);
  if (!store) throw new Error('useTaskSync must be used inside <TaskSyncProvider>');
  const snap = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
  const c = snap.client;
  const actions = useMemo(
    () => ({
      create: (fields) => c.create(fields),
      update: (id, fields, opts) => c.update(id, fields, opts),
      versionOf: (id) => c.versionOf(id),
      toggle: (id) => c.toggle(id),
      remove: (id) => c.remove(id),
      cancel: (opId) => c.cancel(opId),
      persisted: () => c.persisted(),
      move: (id, delta, to) => c.move(id, delta, to),
      moveTask: (id, where) => c.moveTask(id, where),
      reorder: (order) => c.reorder(order),
      sync: () => c.sync(),
      select: (listId) => c.select(listId),
      moveToList: (id, listId) => c.moveToList(id, listId),
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
