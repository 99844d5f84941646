// Declarations of tasksync.js's public API (written by hand; the wire types come from
// ./types, generated from proto/openapi.yaml). tests/contract checks them with
// `tsc --noEmit` on a consumer file.
import type { ErrorResponse, Task, TaskCreate, TaskEvent, TaskPatch } from './types/index';

export type { Task, TaskEvent } from './types/index';

/** Connection states, in the `state` event's detail and `client.state`. */
export declare const STATE: Readonly<{
  CONNECTING: 'connecting';
  CATCHING_UP: 'catching_up';
  LIVE: 'live';
  POLLING: 'polling';
  OFFLINE: 'offline';
  STOPPED: 'stopped';
}>;
export type ConnectionState = (typeof STATE)[keyof typeof STATE];

/** A random RFC 4122 version 4 UUID. */
export declare function uuid(): string;

/** The delay before reconnect attempt `attempt` (0-based): 1, 2, 4, 8, 16, 30 s, +-20 % jitter. */
export declare function backoffDelayMs(attempt: number, rand?: () => number): number;

/** An API answer other than 2xx. `status` 0 means the request did not reach the API. */
export declare class ApiError extends Error {
  constructor(status: number, code?: string | null, message?: string, body?: unknown);
  readonly name: 'ApiError';
  status: number;
  /** The error code of the answer (proto/openapi.yaml ErrorBody.code), `network`, or null. */
  code: string | null;
  body: ErrorResponse | unknown | null;
  /** Worth retrying: no answer, 408, 429 or 5xx. */
  readonly transient: boolean;
}

export interface TaskSyncOptions {
  /** Bearer token (JWT) of the user. */
  token: string;
  /** The user id the token is for (keys local storage). */
  userId: string;
  /** Base URL of backend-api ('' = same origin). */
  apiBase?: string;
  /** ws://host:port or ws://host:port/ws; null = poll only. */
  gatewayUrl?: string | null;
  /** Polling period when the socket is down (3000). */
  pollIntervalMs?: number;
  /** A connection open this long resets the backoff (10000). */
  stableAfterMs?: number;
  /** Catch-up period while live (30000). */
  safetySyncMs?: number;
  /** Page size of the list load (500). */
  pageLimit?: number;
  /** X-Client-Id (default: one per tab, kept over reloads). */
  clientId?: string;
  /** A fresh token for the same user, asked for when the gateway closes with 4001. */
  refreshToken?: () => Promise<string>;
}

/** A task in the list shown: the server's, or made or changed here and not confirmed. */
export type ShownTask = Task & {
  /** A local change not yet confirmed by the API. */
  pending?: boolean;
  /** Creation order of a task made here that has no position key yet. */
  localOrder?: number;
};

/** A change made here and queued for the API (localStorage, per user and tab). */
export type QueuedOp =
  | { kind: 'create'; opId: string; id: string; body: TaskCreate & { id: string }; localOrder: number; at: string }
  | { kind: 'update'; opId: string; id: string; body: Omit<TaskPatch, 'base_version'>; at: string }
  | { kind: 'delete'; opId: string; id: string }
  | { kind: 'reorder'; opId: string; order: string[] }
  | { kind: 'move'; opId: string; id: string; before?: string | null; after?: string | null };

/** The `detail` of each event a TaskSync dispatches. */
export interface TaskSyncEventMap {
  /** The list shown changed: read client.tasks(). */
  tasks: { pending: number };
  state: { state: ConnectionState; prev: ConnectionState };
  /** An event from the server was applied; own: it came from this tab. */
  change: { event: TaskEvent; own: boolean; source: string; task: ShownTask | null };
  /** A change was made here and queued. */
  local: { op: QueuedOp };
  /** The API refused a queued change for good (it was dropped). */
  rejected: { op: QueuedOp; error: ApiError };
  reload: { seq: number | null };
  'sync-error': { error: unknown };
  'auth-error': { status: 401; error: ApiError };
  connected: { connectionId: string };
  'catching-up': { connectionId: string };
  'server-error': { code: string; message?: string };
  disconnected: { code: number; reason: string; lived: number };
  'ws-error': { error: unknown };
  'reconnect-scheduled': { delayMs: number; attempt: number };
}

export type TaskSyncEvent<K extends keyof TaskSyncEventMap> = CustomEvent<TaskSyncEventMap[K]>;

export declare class TaskSync extends EventTarget {
  constructor(options: TaskSyncOptions);
  token: string;
  readonly userId: string;
  readonly clientId: string;
  apiBase: string;
  gatewayUrl: string | null;
  /** The current connection state. */
  state: ConnectionState;
  /** The last applied event seq; null before a list was loaded. */
  seq: number | null;
  /** Local changes not yet confirmed by the API, in order. */
  queue: QueuedOp[];
  /** Whether the API answered the last request. */
  apiReachable: boolean;
  /** Seqs applied, in order (diagnostics). */
  appliedSeqs: number[];
  stats: { applied: number; ignored: number; catchups: number; reloads: number; reconnects: number; polls: number; sent: number };

  /** Starts syncing: shows the cached list, catches up, connects, sends the queue. */
  start(): this;
  /** Stops every timer and the socket; the queue stays in localStorage. */
  stop(): void;
  /** The list as shown: confirmed state plus local changes, in display order. */
  tasks(): ShownTask[];
  /** Number of local changes the API has not confirmed yet. */
  readonly pending: number;
  /** Adds a task at the end; returns the optimistic task (its id is final). */
  create(fields: { title: string; id?: string; description?: string | null; priority?: 'low' | 'medium' | 'high'; due_at?: string | null; completed?: boolean }): ShownTask | undefined;
  /** Changes some of title, description, priority, due_at, completed. */
  update(id: string, fields: Omit<TaskPatch, 'base_version'>): void;
  toggle(id: string): void;
  remove(id: string): void;
  /** Sets the whole display order (lists of at most 1,000 tasks). */
  reorder(order: string[]): void;
  /** Moves a task `delta` places (-1 up, +1 down) or to index `to`. */
  move(id: string, delta: number, to?: number): void;
  /** Moves a task relative to another: {before: id|null} (null: the end) or {after: id|null} (null: the top). */
  moveTask(id: string, where: { before: string | null } | { after: string | null }): void;
  /** Catches up from the applied seq now (single flight). */
  sync(): Promise<void>;
  /** Sends the queue in order (single flight). */
  flush(): Promise<void>;

  addEventListener<K extends keyof TaskSyncEventMap>(
    type: K,
    listener: (ev: TaskSyncEvent<K>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof TaskSyncEventMap>(
    type: K,
    listener: (ev: TaskSyncEvent<K>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}
