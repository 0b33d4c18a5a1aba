// libmicrohttpd (Debian's libmicrohttpd-dev), for the HTTP layer only; the engine never imports it.
#include <sys/types.h>
#include <sys/socket.h>
#include <stdint.h>
#include <microhttpd.h>
