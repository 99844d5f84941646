// A consumer of the web package, checked by `tsc --noEmit` (tests/contract): it
// imports the package by name through its `exports` (node_modules/tasksync links to
// web/), uses the client, the React binding and the generated wire types, and the
// lines marked to expect an error prove the types are not `any`.
import { ApiError, IdbStore, MemoryStore, STATE, TaskSync, backoffDelayMs, compact, rebase, resolveMove, safetyDelayMs, uuid, type ConnectionState, type QueuedOp, type QueueStore, type ShownTask, type ListInfo, type ListRole, type MemberResult, type PresenceEntry } from 'tasksync';
import { TaskSyncProvider, createTaskSyncStore, useTaskSync, type ConflictNotice } from 'tasksync/react';
import type { ErrorCode, ErrorResponse, MergeResult, Task, TaskEvent, TaskList, TaskListDetail, TaskPage, WsMessage, WsTaskUpdate, paths } from 'tasksync/types';
import { createElement } from 'react';

const queueStore: QueueStore = new MemoryStore({ maxOps: 100 });
const client = new TaskSync({ token: 't', userId: 'u1', apiBase: '', gatewayUrl: null, refreshToken: async () => 't2', store: queueStore, useLocks: false, safetySyncMaxMs: 60000 });
const idb: QueueStore = new IdbStore('tasksync.u1');
client.addEventListener('state', (e) => {
  const s: ConnectionState = e.detail.state;
  if (s === STATE.LIVE) console.log('live', e.detail.prev);
});
client.addEventListener('change', (e) => {
  const ev: TaskEvent = e.detail.event;
  if (!e.detail.own && ev.event_type === 'task.deleted') console.log(ev.user_id, ev.seq);
});
client.addEventListener('rejected', (e) => console.log(e.detail.error.status, e.detail.error.code, e.detail.op.kind, e.detail.title));
client.addEventListener('conflict', (e) => {
  for (const c of e.detail.conflicts) console.log(c.field, c.yours, c.theirs, e.detail.task.version, e.detail.remote === true);
});
client.addEventListener('storage-error', (e) => {
  const quota: boolean = e.detail.quota;
  if (quota && e.detail.op) console.log(e.detail.op.opId);
});
client.addEventListener('leader', (e) => {
  const yes: true = e.detail.leader;
  console.log(yes, client.leader);
});
// @ts-expect-error a conflict's detail has conflicts, not fields
client.addEventListener('conflict', (e) => console.log(e.detail.fields));
// @ts-expect-error no such event is typed with a detail
client.addEventListener('conflicts', (e) => console.log(e.detail));
// null: the list is read-only for the user (a viewer); a `rejected` event says so.
const made: ShownTask | null = client.create({ title: 'Buy milk', priority: 'high' });
if (!made) throw new Error('read-only list');
const created: ShownTask = made;
const editId: string | null = client.update(created.id, { completed: true, due_at: null }, { baseVersion: client.versionOf(created.id) });
client.moveTask(created.id, { after: null });
client.start();
await client.ready;
const delId: string | null = client.remove(created.id);
const undone: Promise<boolean> = delId ? client.cancel(delId) : Promise.resolve(false);
// Lists (issue 13): the lists, the one shown, sharing, presence.
const mine: ListInfo[] = client.lists();
const role: ListRole | null = client.roleOf(mine[0]?.id);
client.select(mine[0]?.id ?? null);
const inList: readonly ShownTask[] = client.tasks(client.selectedListId);
const moved: string | null = client.moveToList(created.id, null);
const shareRes: Promise<MemberResult> = client.share('3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f', 'u2', 'editor');
client.subscribePresence('3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f');
client.addEventListener('presence', (e) => {
  const who: PresenceEntry[] = e.detail.online;
  console.log(e.detail.listId, who.map((o) => `${o.user_id}:${o.devices}`), role, inList.length, moved, shareRes);
});
client.addEventListener('list-removed', (e) => console.log(e.detail.reason, e.detail.dropped));
// @ts-expect-error a member is shared as editor or viewer, never as owner
client.share('l', 'u2', 'owner');
await client.persisted();
const list: readonly ShownTask[] = client.tasks();
const queued: readonly QueuedOp[] = client.queue;
const n: number = client.pending + backoffDelayMs(2) + safetyDelayMs(1, 120000, 900000) + list.length + queued.length;
// @ts-expect-error the list shown is shared: not to be changed
client.tasks().push(created);
// @ts-expect-error remove returns the change id, not a promise
client.remove(created.id).then(() => {});
// @ts-expect-error baseVersion is a number
client.update(created.id, { title: 'x' }, { baseVersion: '3' });
// The queue's rules, pure.
const op: QueuedOp = { kind: 'update', id: created.id, opId: uuid(), k: 1, origin: client.clientId, body: { title: 'y' }, at: '2030-01-01T00:00:00.000Z', base_version: 2 };
const d = compact(queued, op);
const r = rebase(d.put, op, 3);
const where = resolveMove({ id: created.id, before: null, after: 'x', prefer: 'after' }, (x) => x === 'x');
if (where && 'after' in where) console.log(where.after, r.del.length, editId, undone, idb);
// @ts-expect-error a queued move says which side it prefers
const badMove: QueuedOp = { kind: 'move', id: created.id, opId: 'o', k: 1, origin: 'c', prefer: 'above' };
const id: string = uuid();
// @ts-expect-error priority is low | medium | high
client.update(id, { priority: 'urgent' });
// @ts-expect-error a move names before or after
client.moveTask(id, { above: id });
const err = new ApiError(409, 'task_quota_exceeded', 'too many');
const transient: boolean = err.transient;

// The wire types, from proto/openapi.yaml.
const task: Task = { id, title: 'x', description: null, priority: 'low', due_at: null, completed: false, position: 'a0', version: 1, created_at: '2030-01-01T00:00:00.000Z', updated_at: '2030-01-01T00:00:00.000Z' };
// @ts-expect-error version is a number
const bad: Task = { ...task, version: '1' };
const listId = '3f6c1d2e-8a4b-4c5d-9e7f-1a2b3c4d5e6f';
const page: TaskPage = { tasks: [task], seq: 3, next_cursor: null, list_id: listId };
// Shared lists.
const shared: TaskList = { id: listId, name: 'Groceries', owner_id: 'u1', default: false, role: 'editor', members: 2 };
const detail: TaskListDetail = { ...shared, members: [{ user_id: 'u1', role: 'owner' }, { user_id: 'u2', role: 'editor' }] };
// @ts-expect-error a member's role is owner, editor or viewer
const badRole: TaskListDetail = { ...shared, members: [{ user_id: 'u2', role: 'admin' }] };
type Share = paths['/api/v1/lists/{id}/members']['post']['requestBody']['content']['application/json'];
const share: Share = { user_id: 'u2', role: 'viewer' };
const merge: MergeResult = { task, conflicts: [{ field: 'title', yours: 'a', theirs: 'b' }] };
const code: ErrorCode = 'task_deleted';
// @ts-expect-error not an error code of the API
const badCode: ErrorCode = 'teapot';
const errBody: ErrorResponse = { error: { code, message: 'gone', field: 'id' } };
type ListOk = paths['/api/v1/tasks']['get']['responses'][200]['content']['application/json'];
const listOk: ListOk = page;
function onMessage(m: WsMessage): string {
  switch (m.type) {
    case 'connected':
      return m.connection_id;
    case 'task_update':
      return `${(m as WsTaskUpdate).event} ${m.seq}`;
    case 'error':
      return m.code;
    default:
      return m.type;
  }
}

// The React binding.
function List() {
  const { tasks, state, pending, leader, conflicts, create, cancel, versionOf, dismissConflict, online } = useTaskSync();
  const first: ConflictNotice | undefined = conflicts[0];
  if (first && (first.kind === 'rejected' || first.kind === 'deleted')) console.log(first.code, first.error?.status, first.remote);
  if (first && first.kind === 'conflict') console.log(first.fields.map((f) => `${f.field}: ${String(f.yours)} -> ${String(f.theirs)}`), first.task.version);
  // @ts-expect-error only a merge notice has fields
  if (first && first.kind === 'deleted') console.log(first.fields);
  // @ts-expect-error the derived 'concurrent' notice of the old client is gone
  if (first && first.kind === 'concurrent') console.log(first);
  if (first) dismissConflict(first.id);
  if (pending[0] && !pending[0].inflight) void cancel(pending[0].opId);
  console.log(leader, versionOf('x'));
  create({ title: `${tasks.length} ${state} ${pending.length} ${online}` });
  return null;
}
const app = createElement(TaskSyncProvider, { options: { token: 't', userId: 'u1' } }, createElement(List));
const store = createTaskSyncStore(client);
store.subscribe(() => store.getSnapshot().tasks);

export { app, bad, badCode, badMove, badRole, detail, errBody, listOk, merge, n, onMessage, share, transient };
