// The few libmicrohttpd calls Swift cannot make itself (variadic C functions, unions), and the wait that lets a
// connection's thread sleep until its response has data or its client hangs up.
#ifndef CHTTPSHIM_H
#define CHTTPSHIM_H

#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

typedef enum MHD_Result (*qs_http_access_handler)(void *cls, struct MHD_Connection *connection, const char *url,
                                                   const char *method, const char *version, const char *upload_data,
                                                   size_t *upload_data_size, void **request_context);
typedef void (*qs_http_completed_handler)(void *cls, struct MHD_Connection *connection, void **request_context,
                                          enum MHD_RequestTerminationCode code);

/// libmicrohttpd's enum constants, under names Swift imports as they are.
static const enum MHD_Result QS_MHD_YES = MHD_YES;
static const enum MHD_Result QS_MHD_NO = MHD_NO;
static const enum MHD_ValueKind QS_MHD_HEADER_KIND = MHD_HEADER_KIND;
static const enum MHD_ValueKind QS_MHD_GET_ARGUMENT_KIND = MHD_GET_ARGUMENT_KIND;
static const enum MHD_ResponseMemoryMode QS_MHD_RESPMEM_MUST_COPY = MHD_RESPMEM_MUST_COPY;

/// Starts a daemon with a thread per connection, listening on `host` (an IPv4 or IPv6 literal or a name) and `port`
/// (0: any free port). Returns NULL and writes a message into `error` when it cannot.
struct MHD_Daemon *qs_http_start(const char *host, uint16_t port, unsigned idle_timeout_s, unsigned connection_limit,
                                 size_t connection_memory, qs_http_access_handler handler,
                                 qs_http_completed_handler completed, void *cls, char *error, size_t error_size);

/// The port the daemon listens on (useful after asking for port 0).
uint16_t qs_http_port(struct MHD_Daemon *daemon);

/// The connection's socket.
int qs_http_connection_fd(struct MHD_Connection *connection);

/// Seconds of inactivity after which the connection is closed; 0: never.
void qs_http_set_timeout(struct MHD_Connection *connection, unsigned seconds);

/// Counts now as activity on the connection, so that time spent waiting for the engine (not for the client) never
/// times it out; `seconds` is its idle timeout.
void qs_http_touch(struct MHD_Connection *connection, unsigned seconds);

/// What `qs_http_wait` saw.
enum { QS_WAIT_TIMEOUT = 0, QS_WAIT_SIGNALLED = 1, QS_WAIT_HANGUP = 2 };

/// Sleeps until `event_fd` (an eventfd) is signalled (its count is then reset), the peer of `socket_fd` has closed
/// or reset the connection, or `timeout_ms` passes (-1: no limit). A peer that hung up wins over a signal.
int qs_http_wait(int event_fd, int socket_fd, int timeout_ms);

/// An eventfd for `qs_http_wait`; -1 on failure.
int qs_http_eventfd(void);
void qs_http_signal(int event_fd);
void qs_http_close(int fd);

#endif
