#define _GNU_SOURCE
#include "CHTTPShim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct MHD_Daemon *qs_http_start(const char *host, uint16_t port, unsigned idle_timeout_s, unsigned connection_limit,
                                 size_t connection_memory, qs_http_access_handler handler,
                                 qs_http_completed_handler completed, void *cls, char *error, size_t error_size) {
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    int rc = getaddrinfo(host, service, &hints, &found);
    if (rc != 0 || found == NULL) {
        snprintf(error, error_size, "cannot resolve host '%s': %s", host, gai_strerror(rc));
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (found->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, port, NULL, NULL, handler, cls,
        MHD_OPTION_SOCK_ADDR, found->ai_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, connection_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 512u,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
        MHD_OPTION_NOTIFY_COMPLETED, completed, cls,
        MHD_OPTION_END);
    if (daemon == NULL) {
        int e = errno;
        snprintf(error, error_size, "cannot listen on %s port %u: %s", host, (unsigned)port,
                 e ? strerror(e) : "libmicrohttpd refused to start");
    }
    freeaddrinfo(found);
    return daemon;
}

uint16_t qs_http_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

int qs_http_connection_fd(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info ? info->connect_fd : -1;
}

void qs_http_set_timeout(struct MHD_Connection *connection, unsigned seconds) {
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

void qs_http_touch(struct MHD_Connection *connection, unsigned seconds) {
    // libmicrohttpd restarts the idle clock when a timeout is set on a connection that has none.
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    MHD_set_connection_option(connection, MHD_CONNECTION_OPTION_TIMEOUT, seconds);
}

int qs_http_wait(int event_fd, int socket_fd, int timeout_ms) {
    struct pollfd fds[2];
    int count = 0;
    fds[count].fd = event_fd; fds[count].events = POLLIN; fds[count].revents = 0; count++;
    if (socket_fd >= 0) { fds[count].fd = socket_fd; fds[count].events = POLLRDHUP; fds[count].revents = 0; count++; }
    int rc;
    do { rc = poll(fds, (nfds_t)count, timeout_ms); } while (rc < 0 && errno == EINTR);
    if (rc <= 0) return QS_WAIT_TIMEOUT;
    if (count == 2 && (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) return QS_WAIT_HANGUP;
    if (fds[0].revents & POLLIN) {
        uint64_t value;
        ssize_t n = read(event_fd, &value, sizeof value);
        (void)n;
        return QS_WAIT_SIGNALLED;
    }
    return QS_WAIT_TIMEOUT;
}

int qs_http_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void qs_http_signal(int event_fd) {
    uint64_t one = 1;
    ssize_t n = write(event_fd, &one, sizeof one);
    (void)n;
}

void qs_http_close(int fd) { if (fd >= 0) close(fd); }
