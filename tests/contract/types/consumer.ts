// A consumer of the web package, checked by `tsc --noEmit` (tests/contract): it
// imports the package by name through its `exports` (node_modules/tasksync links to
// web/), uses the client, the React binding and the generated wire types, and the
// lines marked to expect an error prove the types are not `any`.
import { ApiError, STATE, TaskSync, backoffDelayMs, uuid, type ConnectionState, type ShownTask } from 'tasksync';
import { TaskSyncProvider, createTaskSyncStore, useTaskSync, type ConflictNotice } from 'tasksync/react';
import type { ErrorCode, ErrorResponse, MergeResult, Task, TaskEvent, TaskList, TaskListDetail, TaskPage, WsMessage, WsTaskUpdate, paths } from 'tasksync/types';
import { createElement } from 'react';

const client = new TaskSync({ token: 't', userId: 'u1', apiBase: '', gatewayUrl: null, refreshToken: async () => 't2' });
client.addEventListener('state', (e) => {
  const s: ConnectionState = e.detail.state;
  if (s === STATE.LIVE) console.log('live', e.detail.prev);
});
client.addEventListener('change', (e) => {
  const ev: TaskEvent = e.detail.event;
  if (!e.detail.own && ev.event_type === 'task.deleted') console.log(ev.user_id, ev.seq);
});
client.addEventListener('rejected', (e) => console.log(e.detail.error.status, e.detail.op.kind));
const created: ShownTask | undefined = client.create({ title: 'Buy milk', priority: 'high' });
client.update(created!.id, { completed: true, due_at: null });
client.moveTask(created!.id, { after: null });
client.start();
const list: ShownTask[] = client.tasks();
const n: number = client.pending + backoffDelayMs(2) + list.length;
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
  const { tasks, state, pending, conflicts, create, dismissConflict, online } = useTaskSync();
  const first: ConflictNotice | undefined = conflicts[0];
  if (first && first.kind === 'rejected') console.log(first.error.code);
  if (first) dismissConflict(first.id);
  create({ title: `${tasks.length} ${state} ${pending.length} ${online}` });
  return null;
}
const app = createElement(TaskSyncProvider, { options: { token: 't', userId: 'u1' } }, createElement(List));
const store = createTaskSyncStore(client);
store.subscribe(() => store.getSnapshot().tasks);

export { app, bad, badCode, badRole, detail, errBody, listOk, merge, n, onMessage, share, transient };
