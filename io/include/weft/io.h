/*
 * weft/io.h - time, and (as they land) sockets, DNS and files, for
 * coroutines. A coroutine that waits here parks; the runtime's poller
 * thread (weft-poller, started on first use) wakes it.
 *
 * Linking weft::io also gives sched's primitives their deadlines (the
 * *_until calls in weft/sched.h): io installs itself as sched's driver.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weft/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Now, in ns, on the clock every weft deadline uses (CLOCK_MONOTONIC). */
WEFT_API uint64_t weft_now_ns(void);

/* Park the calling coroutine for at least ms milliseconds (ns
 * nanoseconds); other coroutines run meanwhile. Returns 0, or -ECANCELED
 * (weft_cancel) early. On a foreign thread it sleeps the thread. */
WEFT_API int weft_sleep_ms(uint64_t ms);
WEFT_API int weft_sleep_ns(uint64_t ns);
/* Park until the CLOCK_MONOTONIC instant deadline_ns. */
WEFT_API int weft_sleep_until(uint64_t deadline_ns);

/* ---- Sockets --------------------------------------------------------------
 *
 * The calls try the syscall first and park only when it would block; the
 * poller wakes the coroutine when the fd is ready. Every fd weft creates
 * or accepts is non-blocking and close-on-exec; writes never raise
 * SIGPIPE (-EPIPE instead). Each call with a wait has an _until twin
 * (-ETIMEDOUT at the CLOCK_MONOTONIC deadline_ns); all return -ECANCELED
 * when cancelled. Close an fd that coroutines may wait on with
 * weft_close: they are woken with -EBADF before the number can be reused.
 * On a foreign thread the calls block in poll(2). Errors are -errno. */
enum { WEFT_LISTEN_REUSEPORT = 1 };

WEFT_API int weft_socket(int domain, int type, int protocol);
/* socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen; the fd. */
WEFT_API int weft_listen(const struct sockaddr *addr, socklen_t len, int backlog,
                         int flags);
WEFT_API int weft_accept(int fd, struct sockaddr *addr, socklen_t *len);
WEFT_API int weft_accept_until(int fd, struct sockaddr *addr, socklen_t *len,
                               uint64_t deadline_ns);
WEFT_API int weft_connect(int fd, const struct sockaddr *addr, socklen_t len);
WEFT_API int weft_connect_until(int fd, const struct sockaddr *addr, socklen_t len,
                                uint64_t deadline_ns);
/* What is there (at least 1 byte; 0 at end of stream). */
WEFT_API ssize_t weft_read(int fd, void *buf, size_t n);
WEFT_API ssize_t weft_read_until(int fd, void *buf, size_t n, uint64_t deadline_ns);
/* Exactly n bytes, or fewer at end of stream. */
WEFT_API ssize_t weft_read_full(int fd, void *buf, size_t n);
WEFT_API ssize_t weft_read_full_until(int fd, void *buf, size_t n, uint64_t deadline_ns);
/* All n bytes (or what was written before an error). */
WEFT_API ssize_t weft_write(int fd, const void *buf, size_t n);
WEFT_API ssize_t weft_write_until(int fd, const void *buf, size_t n, uint64_t deadline_ns);
/* What the kernel takes (at least 1 byte). */
WEFT_API ssize_t weft_write_some_until(int fd, const void *buf, size_t n,
                                       uint64_t deadline_ns);
WEFT_API ssize_t weft_readv(int fd, const struct iovec *iov, int iovcnt);
WEFT_API ssize_t weft_writev(int fd, const struct iovec *iov, int iovcnt);
WEFT_API ssize_t weft_recvfrom(int fd, void *buf, size_t n, struct sockaddr *from,
                               socklen_t *fromlen);
WEFT_API ssize_t weft_recvfrom_until(int fd, void *buf, size_t n, struct sockaddr *from,
                                     socklen_t *fromlen, uint64_t deadline_ns);
WEFT_API ssize_t weft_sendto(int fd, const void *buf, size_t n, const struct sockaddr *to,
                             socklen_t tolen);
WEFT_API int weft_shutdown(int fd, int how);
WEFT_API int weft_close(int fd);

/* ---- DNS ------------------------------------------------------------------------
 *
 * getaddrinfo's shape, answered on the runtime's poller thread (no thread
 * per lookup). An address literal (inet_pton's forms) or no host is
 * answered at once; a name from /etc/hosts, kept in memory and read again
 * when the file changes (its mtime, size or inode; looked at at most once
 * a second), or else from the A and AAAA records that c-ares asks of the
 * servers of /etc/resolv.conf, or of WEFT_DNS_SERVERS ("127.0.0.1:5353,
 * 10.0.0.1"), cached for their TTL. WEFT_HOSTS_FILE names another file
 * than /etc/hosts (for tests). "localhost" is never asked of a server: it
 * is 127.0.0.1 and ::1 when the file has no line for the family asked.
 *
 * hints (NULL: all zero): ai_family AF_UNSPEC, AF_INET or AF_INET6;
 * ai_socktype and ai_protocol are copied into each entry (one entry per
 * address); ai_flags are getaddrinfo's AI_* and mean what they mean there:
 * AI_PASSIVE (no host: 0.0.0.0 and :: rather than the loopback),
 * AI_CANONNAME (the first entry's ai_canonname), AI_NUMERICHOST,
 * AI_NUMERICSERV, AI_V4MAPPED and AI_ALL (with AF_INET6 only); AI_ADDRCONFIG
 * is accepted and ignored. Any other flag is -EINVAL. service: a port
 * number, a name from /etc/services, or NULL or "" for port 0.
 * The addresses are not sorted (RFC 6724): IPv4 ones first, then IPv6,
 * each family in the order the server or the hosts file gave them; with
 * AF_INET6 and AI_V4MAPPED, IPv4 ones come mapped (::ffff:a.b.c.d) when
 * there is no IPv6 one, or after them with AI_ALL.
 *
 * Returns 0 with *res set (free it with weft_freeaddrinfo), or
 * WEFT_EDNS_NOTFOUND, _SERVFAIL, _TIMEOUT, _REFUSED, _BADRESP, -ENOMEM,
 * -EINVAL (bad hints, or a service that is not a port), -ECANCELED. On a
 * foreign thread it calls the C library's getaddrinfo (which sorts, and
 * follows /etc/nsswitch.conf). */
struct addrinfo;
WEFT_API int weft_resolve(const char *host, const char *service,
                          const struct addrinfo *hints, struct addrinfo **res);
WEFT_API int weft_resolve_until(const char *host, const char *service,
                                const struct addrinfo *hints, struct addrinfo **res,
                                uint64_t deadline_ns);
WEFT_API void weft_freeaddrinfo(struct addrinfo *ai);

/* ---- Files ------------------------------------------------------------------
 *
 * pread/pwrite for coroutines: the call runs on the offload pool
 * (weft_offload) and the coroutine parks meanwhile, so a slow disk never
 * stops a worker. Return the count or -errno; -ECANCELED if the caller was
 * cancelled, in which case the pool may still complete the call into buf:
 * keep buf alive until it would have returned, or do not cancel file I/O
 * on stack buffers. */
WEFT_API ssize_t weft_file_read(int fd, void *buf, size_t n, off_t offset);
WEFT_API ssize_t weft_file_write(int fd, const void *buf, size_t n, off_t offset);

#ifdef __cplusplus
}
#endif
#endif
