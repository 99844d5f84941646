// The contract's types by name. api.d.ts is generated from proto/openapi.yaml (and
// the JSON Schemas it references) by openapi-typescript: never edit it by hand;
// `npm run types` in tests/contract writes it again, and tests/contract fails when
// the checked-in file differs from a fresh generation.
import type { components, operations, paths } from './api';

export type { components, operations, paths };

type S = components['schemas'];

/** A task as the API returns it (every member present). */
export type Task = S['StoredTask'];
/** A task as events carry it (only id is sure). */
export type TaskShape = S['Task'];
/** The body of POST /api/v1/tasks. */
export type TaskCreate = S['TaskCreate'];
/** The body of PATCH /api/v1/tasks/{id}. */
export type TaskPatch = S['TaskPatch'];
/** The body of POST /api/v1/tasks/{id}/move. */
export type Move = S['Move'];
/** The answer to PATCH with base_version. */
export type MergeResult = S['MergeResult'];
/** One field a PATCH with base_version could not apply. */
export type Conflict = S['Conflict'];
export type MoveResult = S['MoveResult'];
export type ReorderResult = S['ReorderResult'];
export type TaskPage = S['TaskPage'];
export type EventPage = S['EventPage'];
export type WsTicket = S['WsTicket'];
/** A list as GET /api/v1/lists and the list writes answer it (members: a count). */
export type TaskList = S['List'];
/** GET /api/v1/lists/{id}: the list with its members. */
export type TaskListDetail = S['ListDetail'];
export type ListMember = S['Member'];
export type ListRole = ListMember['role'];
/** The body of POST /api/v1/lists. */
export type ListCreate = S['ListCreate'];
/** The answer to POST /api/v1/lists/{id}/members. */
export type MemberResult = S['MemberResult'];
/** The answer to POST /api/v1/lists/{id}/presence-ticket. */
export type PresenceTicket = S['PresenceTicket'];
/** Every error: {"error":{"code","message"[,"field"]}}. */
export type ErrorResponse = S['Error'];
export type ErrorCode = S['ErrorBody']['code'];
/** A record on the Kafka topic and an item of GET /api/v1/events. */
export type TaskEvent = S['TaskEvent'];
export type TaskEventType = TaskEvent['event_type'];
/** Every text frame on a gateway socket. */
export type WsMessage = S['WsMessage'];
export type WsMessageType = WsMessage['type'];
/** The task_update frame. */
export type WsTaskUpdate = Extract<WsMessage, { type: 'task_update' }>;
