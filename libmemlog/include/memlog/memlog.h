/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * libmemlog: /dev/memlog for C programs.
 *
 * The records, statistics and limits are the kernel's own types and
 * constants from <linux/memlog.h> (the UAPI header, included here, never
 * copied). Every function that can fail returns a negative errno value
 * (-EACCES, -ENOSPC, ...); memlog_strerror() describes one. The library
 * keeps no global state and never prints.
 *
 * Threads: a handle may be used by several threads at once for everything
 * but memlog_read_record() (its record buffer is the handle's) and
 * memlog_close(). Records are read one at a time from one position per
 * handle, as from one fd; threads that each want every record open a
 * handle each.
 */
#ifndef MEMLOG_MEMLOG_H
#define MEMLOG_MEMLOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/memlog.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The device node the kernel's udev rule makes */
#define MEMLOG_DEFAULT_PATH	"/dev/" MEMLOG_DEVICE_NAME

/* memlog_open() flags */
#define MEMLOG_OPEN_READ	0x1	/* read records */
#define MEMLOG_OPEN_WRITE	0x2	/* write records */
#define MEMLOG_OPEN_NONBLOCK	0x4	/* writes fail with -EAGAIN, never wait */

/* The largest record a read returns: its header and the largest blob */
#define MEMLOG_RECORD_BUF_SIZE	(sizeof(struct memlog_record_header) + \
				 MEMLOG_RECORD_MAX)

/* A record as read: the kernel's header, then header.length bytes */
struct memlog_record {
	struct memlog_record_header header;
	unsigned char blob[];
};

/* An open /dev/memlog: one fd, its view and position */
struct memlog;

int memlog_open(struct memlog **handle, const char *path, unsigned int flags);
int memlog_close(struct memlog *handle);
int memlog_fd(const struct memlog *handle);

int memlog_filter_uid(struct memlog *handle, uint32_t uid);
int memlog_set_session(struct memlog *handle,
		       const uint8_t id[MEMLOG_SESSION_ID_LEN]);

ssize_t memlog_write(struct memlog *handle, const void *blob, size_t len);
ssize_t memlog_writev(struct memlog *handle, const struct iovec *iov,
		      int iovcnt);

ssize_t memlog_read(struct memlog *handle, struct memlog_record_header *header,
		    void *blob, size_t size);
int memlog_read_record(struct memlog *handle,
		       const struct memlog_record **record);
int memlog_wait(struct memlog *handle, int timeout_ms);

int memlog_stats(struct memlog *handle, struct memlog_stats *stats);
int memlog_lost(struct memlog *handle, uint64_t *lost);
int memlog_clear(struct memlog *handle);
int memlog_set_ring_size(struct memlog *handle, uint32_t bytes);
int memlog_ring_size(uint32_t *bytes);
int memlog_schema_version(struct memlog *handle, uint32_t *version);

const char *memlog_library_version(void);
const char *memlog_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* MEMLOG_MEMLOG_H */
