// Declarations of react.js (written by hand; see tasksync.d.ts).
import type { ReactNode } from 'react';
import type { ApiError, ConnectionState, QueuedOp, ShownTask, TaskSync, TaskSyncEventMap, TaskSyncEvent, TaskSyncOptions } from './tasksync';
import type { TaskEvent } from './types/index';

export { STATE, TaskSync } from './tasksync';

/** A conflict notice (see react.js): derived from the client's events. */
export type ConflictNotice =
  | { id: string; at: string; kind: 'concurrent' | 'deleted'; taskId: string; title: string; event: TaskEvent }
  | { id: string; at: string; kind: 'rejected'; taskId: string | null; title: string; op: QueuedOp; error: ApiError; code: string | null };

export interface TaskSyncSnapshot {
  client: TaskSync;
  /** The list shown, in display order (local changes applied). */
  tasks: ShownTask[];
  state: ConnectionState;
  /** Local changes the API has not confirmed yet, in order. */
  pending: QueuedOp[];
  conflicts: ConflictNotice[];
}

export interface UseTaskSync extends TaskSyncSnapshot {
  /** live or polling: changes reach the server now. */
  online: boolean;
  create: TaskSync['create'];
  update: TaskSync['update'];
  toggle: TaskSync['toggle'];
  remove: TaskSync['remove'];
  move: TaskSync['move'];
  moveTask: TaskSync['moveTask'];
  reorder: TaskSync['reorder'];
  sync: TaskSync['sync'];
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
