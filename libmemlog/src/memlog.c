// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * libmemlog: each call is one system call on the handle's fd, checked and
 * turned into 0, a count, or -errno.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "memlog/memlog.h"

#define MEMLOG_API __attribute__((visibility("default")))
#define MEMLOG_RING_SIZE_SYSCTL "/proc/sys/kernel/memlog/ring_size"

struct memlog {
	int fd;
	struct memlog_record *record;	/* memlog_read_record()'s, on demand */
};

_Static_assert(sizeof(struct memlog_record_header) == 56,
	       "the UAPI header's layout");
_Static_assert(sizeof(struct memlog_stats) == 48, "the UAPI stats' layout");

static int memlog_neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

MEMLOG_API int memlog_open(struct memlog **handle, const char *path,
			   unsigned int flags)
{
	struct memlog *ml;
	int oflags = O_CLOEXEC;

	if (!handle || (flags & ~(MEMLOG_OPEN_READ | MEMLOG_OPEN_WRITE |
				  MEMLOG_OPEN_NONBLOCK)))
		return -EINVAL;
	switch (flags & (MEMLOG_OPEN_READ | MEMLOG_OPEN_WRITE)) {
	case MEMLOG_OPEN_READ:
		oflags |= O_RDONLY;
		break;
	case MEMLOG_OPEN_WRITE:
		oflags |= O_WRONLY;
		break;
	case MEMLOG_OPEN_READ | MEMLOG_OPEN_WRITE:
		oflags |= O_RDWR;
		break;
	default:
		return -EINVAL;
	}
	if (flags & MEMLOG_OPEN_NONBLOCK)
		oflags |= O_NONBLOCK;

	ml = calloc(1, sizeof(*ml));
	if (!ml)
		return -ENOMEM;
	ml->fd = open(path ? path : MEMLOG_DEFAULT_PATH, oflags);
	if (ml->fd < 0) {
		int err = memlog_neg_errno();

		free(ml);
		return err;
	}
	*handle = ml;
	return 0;
}

MEMLOG_API int memlog_close(struct memlog *ml)
{
	int ret = 0;

	if (!ml)
		return 0;
	/* Linux frees the fd even when close() fails: never retry it */
	if (close(ml->fd) && errno != EINTR)
		ret = memlog_neg_errno();
	free(ml->record);
	free(ml);
	return ret;
}

MEMLOG_API int memlog_fd(const struct memlog *ml)
{
	return ml ? ml->fd : -EINVAL;
}

static int memlog_ioctl(struct memlog *ml, unsigned long request, void *arg)
{
	if (!ml)
		return -EINVAL;
	return ioctl(ml->fd, request, arg) < 0 ? memlog_neg_errno() : 0;
}

MEMLOG_API int memlog_filter_uid(struct memlog *ml, uint32_t uid)
{
	__u32 arg = uid;

	return memlog_ioctl(ml, MEMLOG_IOC_FILTER_UID, &arg);
}

MEMLOG_API int memlog_set_session(struct memlog *ml,
				  const uint8_t id[MEMLOG_SESSION_ID_LEN])
{
	struct memlog_session session;

	if (!id)
		return -EINVAL;
	memcpy(session.id, id, sizeof(session.id));
	return memlog_ioctl(ml, MEMLOG_IOC_SET_SESSION, &session);
}

MEMLOG_API ssize_t memlog_write(struct memlog *ml, const void *blob,
				size_t len)
{
	ssize_t n;

	if (!ml || (!blob && len))
		return -EINVAL;
	n = write(ml->fd, blob, len);
	return n < 0 ? memlog_neg_errno() : n;
}

MEMLOG_API ssize_t memlog_writev(struct memlog *ml, const struct iovec *iov,
				 int iovcnt)
{
	ssize_t n;

	if (!ml || (!iov && iovcnt))
		return -EINVAL;
	n = writev(ml->fd, iov, iovcnt);
	return n < 0 ? memlog_neg_errno() : n;
}

/* The record read into @hdr (n bytes in all) is whole and the kernel's */
static int memlog_check(const struct memlog_record_header *hdr, size_t n)
{
	if (n < sizeof(*hdr) || hdr->magic != MEMLOG_MAGIC ||
	    hdr->length != n - sizeof(*hdr))
		return -EBADMSG;
	return 0;
}

MEMLOG_API ssize_t memlog_read(struct memlog *ml,
			       struct memlog_record_header *header,
			       void *blob, size_t size)
{
	struct iovec iov[2] = {
		{ .iov_base = header, .iov_len = sizeof(*header) },
		{ .iov_base = blob, .iov_len = size },
	};
	ssize_t n;
	int err;

	if (!ml || !header || (!blob && size))
		return -EINVAL;
	n = readv(ml->fd, iov, size ? 2 : 1);
	if (n < 0)
		return memlog_neg_errno();
	if (!n)
		return 0;
	err = memlog_check(header, n);
	return err ? err : (ssize_t)header->length;
}

MEMLOG_API int memlog_read_record(struct memlog *ml,
				  const struct memlog_record **record)
{
	ssize_t n;
	int err;

	if (!ml || !record)
		return -EINVAL;
	if (!ml->record) {
		ml->record = malloc(MEMLOG_RECORD_BUF_SIZE);
		if (!ml->record)
			return -ENOMEM;
	}
	n = read(ml->fd, ml->record, MEMLOG_RECORD_BUF_SIZE);
	if (n < 0)
		return memlog_neg_errno();
	if (!n)
		return 0;
	err = memlog_check(&ml->record->header, n);
	if (err)
		return err;
	*record = ml->record;
	return 1;
}

static int64_t memlog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

MEMLOG_API int memlog_wait(struct memlog *ml, int timeout_ms)
{
	int64_t deadline = 0;
	struct pollfd pfd;
	int n;

	if (!ml)
		return -EINVAL;
	if (timeout_ms > 0)
		deadline = memlog_now_ms() + timeout_ms;
	pfd.fd = ml->fd;
	pfd.events = POLLIN;
	for (;;) {
		n = poll(&pfd, 1, timeout_ms);
		if (n >= 0)
			break;
		if (errno != EINTR)
			return memlog_neg_errno();
		if (timeout_ms > 0) {
			int64_t left = deadline - memlog_now_ms();

			timeout_ms = left > 0 ? (int)left : 0;
		}
	}
	if (!n)
		return 0;
	if (pfd.revents & POLLNVAL)
		return -EBADF;
	if (pfd.revents & POLLERR)
		return -EIO;
	return 1;
}

MEMLOG_API int memlog_stats(struct memlog *ml, struct memlog_stats *stats)
{
	if (!stats)
		return -EINVAL;
	return memlog_ioctl(ml, MEMLOG_IOC_STATS, stats);
}

MEMLOG_API int memlog_lost(struct memlog *ml, uint64_t *lost)
{
	__u64 arg;
	int err;

	if (!lost)
		return -EINVAL;
	err = memlog_ioctl(ml, MEMLOG_IOC_GET_LOST, &arg);
	if (!err)
		*lost = arg;
	return err;
}

MEMLOG_API int memlog_clear(struct memlog *ml)
{
	return memlog_ioctl(ml, MEMLOG_IOC_CLEAR, NULL);
}

MEMLOG_API int memlog_set_ring_size(struct memlog *ml, uint32_t bytes)
{
	__u32 arg = bytes;

	return memlog_ioctl(ml, MEMLOG_IOC_SET_RING_SIZE, &arg);
}

MEMLOG_API int memlog_ring_size(uint32_t *bytes)
{
	char text[32];
	unsigned long value;
	char *end;
	ssize_t n;
	int fd;

	if (!bytes)
		return -EINVAL;
	fd = open(MEMLOG_RING_SIZE_SYSCTL, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return memlog_neg_errno();
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		int err = memlog_neg_errno();

		close(fd);
		return err;
	}
	close(fd);
	text[n] = '\0';
	errno = 0;
	value = strtoul(text, &end, 10);
	if (errno || end == text || (*end && *end != '\n') ||
	    value > UINT32_MAX)
		return -EBADMSG;
	*bytes = value;
	return 0;
}

MEMLOG_API int memlog_schema_version(struct memlog *ml, uint32_t *version)
{
	__u32 arg;
	int err;

	if (!version)
		return -EINVAL;
	err = memlog_ioctl(ml, MEMLOG_IOC_GET_VERSION, &arg);
	if (!err)
		*version = arg;
	return err;
}

MEMLOG_API const char *memlog_library_version(void)
{
	return MEMLOG_LIBRARY_VERSION;
}

/* What each error means for a memlog call; the rest as the C library says */
static const struct {
	int err;
	const char *text;
} memlog_errors[] = {
	{ EACCES, "permission denied: /dev/memlog is for the memlog group's members" },
	{ EPERM, "operation not permitted: it needs CAP_SYS_ADMIN" },
	{ ENOENT, "no such device node: is the memlog module loaded?" },
	{ ENODEV, "no memlog device: is the memlog module loaded?" },
	{ ENXIO, "no memlog device: is the memlog module loaded?" },
	{ ENOSPC, "no room: the user's share of kernel.memlog.max_bytes is used up" },
	{ EMSGSIZE, "record too large for a ring (at most MEMLOG_RECORD_MAX bytes)" },
	{ EAGAIN, "the ring is moving to a new buffer: try again" },
	{ EINVAL, "invalid argument (an unmapped uid, an out-of-range size, "
		  "or a buffer too small for the record)" },
	{ EBADMSG, "not a memlog record: the device returned bytes of another format" },
	{ ENOTTY, "not a memlog device" },
	{ ENOMEM, "out of memory" },
	{ EINTR, "interrupted by a signal" },
	{ EFAULT, "bad address" },
	{ EBADF, "bad handle: not open for this" },
};

MEMLOG_API const char *memlog_strerror(int err)
{
	size_t i;

	if (err < 0)
		err = -err;
	for (i = 0; i < sizeof(memlog_errors) / sizeof(memlog_errors[0]); i++)
		if (memlog_errors[i].err == err)
			return memlog_errors[i].text;
	if (!err)
		return "success";
#ifdef HAVE_STRERRORDESC_NP
	if (strerrordesc_np(err))
		return strerrordesc_np(err);
#endif
	return "unknown error";
}
