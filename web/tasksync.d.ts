// Declarations of tasksync.js's public API (written by hand; the wire types come from
// ./types, generated from proto/openapi.yaml). tests/contract checks them with
// `tsc --noEmit` on a consumer file.
import type { Conflict, ErrorResponse, ListMember, ListRole, MemberResult, Task, TaskCreate, TaskEvent, TaskPatch } from './types/index';

export type { Conflict, ListMember, ListRole, MemberResult, Task, TaskEvent } from './types/index';

/** A list as the client knows it (lists(), list()). */
export interface ListInfo {
  id: string;
  name: string;
  owner_id: string;
  /** The user's default list (never shared or deleted). */
  default: boolean;
  /** The user's role in it. */
  role: ListRole;
  member_count: number;
  /** The members, once fetched (listDetail(); list.updated fetches them again), else null. */
  members: ListMember[] | null;
}

/** Who of a list's members is online, and on how many devices (the gateway's presence message). */
export interface PresenceEntry {
  user_id: string;
  devices: number;
}

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

/** The delay before safety catch-up number `n` (0-based) while push is healthy:
 * `first`, doubling up to `max`, +-20 % jitter. */
export declare function safetyDelayMs(n: number, first: number, max: number, rand?: () => number): number;

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
  /** Bearer token (JWT) of the user (sent to apiBase only). */
  token: string;
  /** The user id the token is for (keys local storage). */
  userId: string;
  /** Base URL of backend-api ('' = same origin). */
  apiBase?: string;
  /** ws://host:port or ws://host:port/ws; null = poll only. */
  gatewayUrl?: string | null;
  /** A fresh token for the same user (gateway close 4001, API 401), or null. */
  refreshToken?: () => Promise<string | null>;
  /** /events period while the socket cannot open (3000). */
  pollIntervalMs?: number;
  /** A connection open this long resets the backoff (10000). */
  stableAfterMs?: number;
  /** First safety catch-up while push is healthy (120000). */
  safetySyncMs?: number;
  /** The safety period doubles up to this (900000). */
  safetySyncMaxMs?: number;
  /** After a gateway drain (1001), reconnect within this (10000). */
  drainSpreadMs?: number;
  /** A ping unanswered this long: the socket is dead (10000). */
  pongTimeoutMs?: number;
  /** Page size of the list load (500). */
  pageLimit?: number;
  /** X-Client-Id (default: one per tab, kept over reloads, new in a duplicated tab). */
  clientId?: string;
  /** Where the queue and the cached list live (default: IndexedDB, else memory). */
  store?: QueueStore;
  /** Elect one sending tab with navigator.locks (default: when present). */
  useLocks?: boolean;
}

/** A task in the list shown: the server's, or made or changed here and not confirmed. */
export type ShownTask = Task & {
  /** A local change not yet confirmed by the API. */
  pending?: boolean;
  /** Queue order of a task made here that has no position key yet. */
  localOrder?: number;
};

/** What every queued operation has. */
interface QueuedOpBase {
  /** Its id: sent as Idempotency-Key; cancel(opId) takes it back. */
  opId: string;
  /** Queue order (ms * 1000 + a per-tab counter). */
  k: number;
  /** X-Client-Id of the tab that made it (its echo is that tab's own). */
  origin: string;
  /** Claimed by the sending tab: being sent, never changed or cancelled. */
  inflight?: boolean;
  /** The list of the task (null or absent: the default list). */
  list?: string | null;
}

/** The fields an update changes. */
export type TaskFields = Omit<TaskPatch, 'base_version'>;

/** A change made here and queued for the API (IndexedDB, shared by the user's tabs). */
export type QueuedOp = QueuedOpBase &
  (
    | { kind: 'create'; id: string; body: TaskCreate & { id: string }; at: string }
    | { kind: 'update'; id: string; body: TaskFields; at: string; base_version?: number }
    | { kind: 'delete'; id: string }
    | { kind: 'reorder'; id?: undefined; order: string[] }
    | { kind: 'move'; id: string; before?: string | null; after?: string | null; prefer: 'before' | 'after'; to?: string | null }
  );

/** The queue's rules on a task's queued operations: operations to write and ids to delete. */
export interface QueueDelta {
  put: QueuedOp[];
  del: string[];
}

/** Compaction: how a new operation joins the queued operations of its task (pure). */
export declare function compact(ops: readonly QueuedOp[], op: QueuedOp): QueueDelta;

/** After an own change was applied at `version`: later queued edits of the task are rebased on it. */
export declare function rebase(ops: readonly QueuedOp[], done: QueuedOp, version: number | null | undefined): QueueDelta;

/** Where a move goes given which tasks exist: the anchor named, else the other neighbour; null when both are gone. */
export declare function resolveMove(
  op: { id?: string; before?: string | null; after?: string | null; prefer?: 'before' | 'after' },
  has: (id: string) => boolean,
): { before: string | null } | { after: string | null } | null;

/** The storage a client keeps its queue and cached list in. */
export interface QueueStore {
  loadOps(): Promise<QueuedOp[]>;
  mutate(taskId: string | null | undefined, fn: (ops: QueuedOp[]) => Partial<QueueDelta> | null | undefined | void, options?: { claim?: boolean }): Promise<QueueDelta & { head?: QueuedOp | null }>;
  claimHead(): Promise<QueuedOp | null>;
  getMeta(key: string): Promise<unknown>;
  putMeta(key: string, value: unknown): Promise<void>;
  close(): void;
}

/** The queue and the cached list in memory (node, tests, no IndexedDB). One instance
 * given to two clients plays one browser's storage; maxOps makes it refuse writes as a
 * full disk would (QuotaExceededError). */
export declare class MemoryStore implements QueueStore {
  constructor(options?: { maxOps?: number });
  maxOps: number;
  loadOps(): Promise<QueuedOp[]>;
  mutate(taskId: string | null | undefined, fn: (ops: QueuedOp[]) => Partial<QueueDelta> | null | undefined | void, options?: { claim?: boolean }): Promise<QueueDelta & { head?: QueuedOp | null }>;
  claimHead(): Promise<QueuedOp | null>;
  getMeta(key: string): Promise<unknown>;
  putMeta(key: string, value: unknown): Promise<void>;
  close(): void;
}

/** The queue and the cached list in IndexedDB database `name` (default for a client: `tasksync.<user>`). */
export declare class IdbStore implements QueueStore {
  constructor(name: string);
  readonly name: string;
  loadOps(): Promise<QueuedOp[]>;
  mutate(taskId: string | null | undefined, fn: (ops: QueuedOp[]) => Partial<QueueDelta> | null | undefined | void, options?: { claim?: boolean }): Promise<QueueDelta & { head?: QueuedOp | null }>;
  claimHead(): Promise<QueuedOp | null>;
  getMeta(key: string): Promise<unknown>;
  putMeta(key: string, value: unknown): Promise<void>;
  close(): void;
}

/** An ApiError as another tab reports it over the BroadcastChannel (plain data). */
export interface RemoteApiError {
  status: number;
  code: string | null;
  message: string;
}

/** A change the API refused for good, or that became moot (it was dropped). A delete
 * wins: a change to a task deleted elsewhere is refused with 410 `task_deleted`. */
export type RejectedDetail =
  | {
      op: QueuedOp;
      error: ApiError;
      id: string | undefined | null;
      title: string | null;
      remote?: undefined;
      /** A viewer's write refused here, before it was queued (403 forbidden). */
      local?: true;
      /** A queued change to a list the user lost (list.unshared / list.deleted), dropped. */
      dropped?: true;
      listId?: string | null;
    }
  /** The sending tab was another tab of this browser. */
  | { op: QueuedOp; error: RemoteApiError; id: string | undefined; title: string | null; remote: true };

/** An update the API merged per field: each field in `conflicts` someone else changed
 * after the version the change was based on keeps their value (`theirs`). */
export interface ConflictDetail {
  op: QueuedOp;
  id: string;
  title: string | null;
  conflicts: Conflict[];
  /** The task as stored after the merge. */
  task: Task;
  /** The sending tab was another tab of this browser. */
  remote?: true;
}

/** The `detail` of each event a TaskSync dispatches. */
export interface TaskSyncEventMap {
  /** The list shown or the queue changed: read client.tasks(). */
  tasks: { pending: number };
  state: { state: ConnectionState; prev: ConnectionState };
  /** An event from the server was applied; own: it came from this tab. */
  change: { event: TaskEvent; own: boolean; source: string; task: ShownTask | null; listId: string | null };
  /** The lists or their members or roles changed: read client.lists(). */
  lists: { lists: ListInfo[] };
  /** select() changed the list shown. */
  select: { listId: string | null };
  /** A list the user lost (unshared, deleted, left): its tasks and queued changes are gone. */
  'list-removed': { listId: string; reason: 'unshared' | 'deleted' | 'left'; dropped: number; name: string | null; shown: boolean };
  /** A shared list's tasks were fetched (list.shared's reload hint). */
  'list-loaded': { listId: string; tasks: number };
  /** Who of a subscribed list's members is online (now, and on each change). */
  presence: { listId: string; online: PresenceEntry[] };
  /** The gateway refused a presence subscription (forbidden, too_many_subscriptions), or no ticket. */
  'presence-error': { listId: string; code: string; message?: string; error?: unknown };
  /** A change was made here and queued. */
  local: { op: QueuedOp };
  rejected: RejectedDetail;
  conflict: ConflictDetail;
  /** The store refused a write (quota: the disk is full); op, if given, is kept in memory and sent by this tab. */
  'storage-error': { error: unknown; op?: QueuedOp; quota: boolean };
  /** This tab holds the Web Lock and sends the queue. */
  leader: { leader: true };
  reload: { seq: number | null };
  'sync-error': { error: unknown; seq?: number };
  'auth-error': { status: 401; error: ApiError };
  connected: { connectionId: string };
  'catching-up': { connectionId: string };
  'server-error': { code: string; message?: string };
  disconnected: { code: number; reason: string; lived: number };
  'ws-error': { error: unknown };
  'reconnect-scheduled': { delayMs: number; attempt: number };
  pong: Record<string, never>;
}

export type TaskSyncEvent<K extends keyof TaskSyncEventMap> = CustomEvent<TaskSyncEventMap[K]>;

export declare class TaskSync extends EventTarget {
  constructor(options: TaskSyncOptions);
  token: string;
  readonly userId: string;
  readonly clientId: string;
  apiBase: string;
  gatewayUrl: string | null;
  refreshToken: (() => Promise<string | null>) | null;
  readonly store: QueueStore;
  /** The current connection state. */
  state: ConnectionState;
  /** The last applied event seq; null before a list was loaded. */
  seq: number | null;
  /** The queue of this browser (every tab's changes) not yet confirmed, in order: a
   * mirror of the store, replaced (never changed in place) on each change. */
  readonly queue: readonly QueuedOp[];
  /** This tab sends the queue (it holds the Web Lock). */
  readonly leader: boolean;
  /** Resolves once start() has loaded the cached list and the queue. */
  ready: Promise<void>;
  /** Whether the API answered the last request. */
  apiReachable: boolean;
  /** Seqs applied, in order (diagnostics). */
  appliedSeqs: number[];
  stats: {
    applied: number;
    ignored: number;
    catchups: number;
    eventRequests: number;
    reloads: number;
    reconnects: number;
    polls: number;
    sent: number;
    safety: number;
    pings: number;
    pongs: number;
    unknownSeq: number;
    sendMs: number;
    storeMs: number;
  };

  /** Starts syncing: shows the cached list and queue (`ready`), then catches up, connects and sends the queue. */
  start(): this;
  /** Stops every timer and the socket; the queue stays in the store. */
  stop(): void;
  /** The user's default list (known once loaded). */
  defaultListId: string | null;
  /** The list shown by tasks() (null: the default list). */
  readonly listId: string | null;
  /** The list shown (its id; the default list's when known). */
  readonly selectedListId: string | null;
  /** The list shown (or `listId`): confirmed state plus local changes, in display order (shared: do not modify). */
  tasks(listId?: string | null): readonly ShownTask[];
  /** The lists of the user: the default list first, then by name. */
  lists(): ListInfo[];
  /** One list (null: not a list of the user); no id: the default list. */
  list(listId?: string | null): ListInfo | null;
  /** Shows another list (null: the default list). */
  select(listId: string | null): void;
  /** The user's role in a list, null when unknown. */
  roleOf(listId?: string | null): ListRole | null;
  createList(name: string, options?: { id?: string }): Promise<ListInfo | null>;
  renameList(listId: string, name: string): Promise<ListInfo | null>;
  deleteList(listId: string): Promise<void>;
  /** Fetches the list with its members (null: not a member any more). */
  listDetail(listId?: string | null): Promise<ListInfo | null>;
  share(listId: string, userId: string, role: 'editor' | 'viewer'): Promise<MemberResult>;
  unshare(listId: string, userId: string): Promise<void>;
  leave(listId: string): Promise<void>;
  transfer(listId: string, userId: string): Promise<ListInfo | null>;
  /** Moves a task into another list (at its end); the operation's id, or null. */
  moveToList(id: string, listId: string | null): string | null;
  /** Asks for a list's presence (`presence` events; asked again after each reconnect). */
  subscribePresence(listId: string): void;
  unsubscribePresence(listId: string): void;
  /** Who of a list's members is online, as last said. */
  online(listId?: string | null): PresenceEntry[];
  /** Number of local changes the API has not confirmed yet (every tab's). */
  readonly pending: number;
  /** Adds a task at the end of the list shown (or `list_id`); returns the optimistic task (its id is final), or null
   * when the list is read-only for the user (a `rejected` event says so). Throws RangeError on an empty title. */
  create(fields: { title: string; id?: string; description?: string | null; priority?: 'low' | 'medium' | 'high'; due_at?: string | null; completed?: boolean; list_id?: string | null }): ShownTask | null;
  /** Changes some of title, description, priority, due_at, completed, based on
   * `baseVersion` (default: the confirmed version now). Returns the operation's id,
   * or null when no field was given or the list is read-only for the user. */
  update(id: string, fields: TaskFields, options?: { baseVersion?: number }): string | null;
  /** The confirmed version of a task (what an editor passes as baseVersion). */
  versionOf(id: string): number | undefined;
  toggle(id: string): void;
  /** Deletes a task; returns the operation's id (for cancel()), or null when the list is read-only. */
  remove(id: string): string | null;
  /** Resolves once every change made so far is written to the store. */
  persisted(): Promise<void>;
  /** Takes back a queued change not being sent yet; true if it was. */
  cancel(opId: string): Promise<boolean>;
  /** Sets the whole display order (lists of at most 1,000 tasks). */
  reorder(order: readonly string[]): void;
  /** Moves a task `delta` places (-1 up, +1 down) or to index `to`. */
  move(id: string, delta: number, to?: number): void;
  /** Moves a task relative to another: {before: id|null} (null: the end) or {after: id|null} (null: the top). */
  moveTask(id: string, where: { before: string | null } | { after: string | null }): void;
  /** Catches up from the applied seq now (single flight). */
  sync(): Promise<void>;
  /** Sends the queue in order (single flight; only the sending tab sends the shared queue). */
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
