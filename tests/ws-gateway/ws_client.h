/* ws_client: a small blocking WebSocket client for the gateway's tests: the
 * handshake, masked client frames, and reading text/ping/pong/close frames with a
 * timeout. Not thread-safe; one per socket. */
#ifndef GW_TEST_WS_CLIENT_H
#define GW_TEST_WS_CLIENT_H

#include <stddef.h>

typedef struct ws_client ws_client;

/* Connects to 127.0.0.1:port and sends GET target (path + query) with Origin when
 * non-NULL. rcvbuf > 0 sets SO_RCVBUF before connecting. Returns the client after a
 * 101; otherwise NULL and *status is the HTTP status (or -1 when no answer). */
ws_client *ws_open(int port, const char *target, const char *origin, int rcvbuf, int *status);
/* The same to host, a numeric IPv4 or IPv6 address ("::1"). */
ws_client *ws_open_host(const char *host, int port, const char *target, const char *origin,
                        int rcvbuf, int *status);
void ws_free(ws_client *c);

int ws_send(ws_client *c, int opcode, const void *data, size_t len);
int ws_send_text(ws_client *c, const char *text);

enum { WS_RECV_TIMEOUT = -1, WS_RECV_CLOSED = -2, WS_RECV_ERROR = -3 };
/* Reads one frame within timeout_ms. Returns its opcode (payload in *data, NUL-
 * terminated, caller frees; *len) or WS_RECV_TIMEOUT, WS_RECV_ERROR (EOF or bad
 * stream). A close frame returns 8 and records ws_close_code(). */
int ws_recv(ws_client *c, int timeout_ms, char **data, size_t *len);
/* The next text frame within timeout_ms, answering pings and skipping pongs when
 * auto_pong. NULL on timeout, close or error (see ws_close_code()). */
char *ws_recv_text(ws_client *c, int timeout_ms);
/* Close code received (0: none yet), and its reason. */
int ws_close_code(const ws_client *c);
const char *ws_close_reason(const ws_client *c);
int ws_fd(const ws_client *c);
void ws_set_auto_pong(ws_client *c, int on);
/* Bytes read from the socket and not yet consumed as frames. */
size_t ws_pending(const ws_client *c);
/* Reads at most max bytes now (non-blocking) into the buffer ws_recv parses from:
 * a trickle reader. Returns the bytes read, 0 when none were there, -1 on EOF or
 * error. */
int ws_read_some(ws_client *c, size_t max);

#endif
