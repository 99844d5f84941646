// Declarations of react.js (written by hand; see tasksync.d.ts).
import type { ReactNode } from 'react';
import type { ApiError, ConnectionState, ListInfo, QueuedOp, RemoteApiError, ShownTask, TaskSync, TaskSyncEventMap, TaskSyncEvent, TaskSyncOptions } from './tasksync';
import type { Conflict, Task } from './types/index';

export { STATE, TaskSync } from './tasksync';

/** What every notice has: `remote` when another tab of this browser sent the change. */
interface NoticeBase {
  id: string;
  at: string;
  /** The task's title ('' when it was never known here). */
  title: string;
  op: QueuedOp;
  remote: boolean;
}

/** A conflict notice (see react.js), from the client's `conflict` and `rejected` events. */
export type ConflictNotice =
  /** An update merged per field: each of `fields` kept someone else's newer value (theirs). */
  | (NoticeBase & { kind: 'conflict'; taskId: string; fields: Conflict[]; task: Task })
  /** A change to a task deleted elsewhere (410 task_deleted): delete wins, the change was dropped. */
  | (NoticeBase & { kind: 'deleted'; taskId: string | null; error: ApiError | RemoteApiError | null; code: string | null })
  /** Another change the API refused for good (it was dropped). */
  | (NoticeBase & { kind: 'rejected'; taskId: string | null; error: ApiError | RemoteApiError | null; code: string | null });

export interface TaskSyncSnapshot {
  client: TaskSync;
  /** The list shown, in display order (local changes applied). */
  tasks: readonly ShownTask[];
  /** The user's lists (client.lists()). */
  lists: ListInfo[];
  /** The list shown (client.selectedListId). */
  listId: string | null;
  state: ConnectionState;
  /** The client's queue: this browser's changes the API has not confirmed yet (every tab's), in order. */
  pending: readonly QueuedOp[];
  /** This tab sends the queue. */
  leader: boolean;
  conflicts: ConflictNotice[];
}

export interface UseTaskSync extends TaskSyncSnapshot {
  /** live or polling: changes reach the server now. */
  online: boolean;
  create: TaskSync['create'];
  update: TaskSync['update'];
  versionOf: TaskSync['versionOf'];
  toggle: TaskSync['toggle'];
  remove: TaskSync['remove'];
  cancel: TaskSync['cancel'];
  persisted: TaskSync['persisted'];
  move: TaskSync['move'];
  moveTask: TaskSync['moveTask'];
  reorder: TaskSync['reorder'];
  sync: TaskSync['sync'];
  select: TaskSync['select'];
  moveToList: TaskSync['moveToList'];
  /** Drops one notice, or all without an id. */
  dismissConflict(id?: string): void;
}

export interface TaskSyncStore {
  subscribe(listener: () => void): () => void;
  getSnapshot(): TaskSyncSnapshot;
  dismiss(id?: string): void;
  dispose(): void;
}

export declare function createTaskSyncStore(client: TaskSync): TaskSyncStore;

export type TaskSyncProviderProps =
  | { client: TaskSync; options?: undefined; children?: ReactNode }
  | { client?: undefined; options: TaskSyncOptions; children?: ReactNode };

export declare function TaskSyncProvider(props: TaskSyncProviderProps): ReactNode;

export declare function useTaskSync(): UseTaskSync;

export declare function useTaskSyncEvent<K extends keyof TaskSyncEventMap>(type: K, handler: (ev: TaskSyncEvent<K>) => void): void;
