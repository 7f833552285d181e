/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * memlog: a character device keeping per-uid rings of opaque records.
 *
 * This header is the one contract between the kernel driver and userspace.
 * Its binary layout is stable: readers already depend on it.
 *
 * A write(2) of N bytes (1 <= N <= MEMLOG_RECORD_MAX) stores one record.
 * A read(2) returns one whole record: struct memlog_record_header followed
 * by header.length bytes of blob.
 */
#ifndef _UAPI_LINUX_MEMLOG_H
#define _UAPI_LINUX_MEMLOG_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MEMLOG_DEVICE_NAME	"memlog"

#define MEMLOG_MAGIC		0x4D4C4F47	/* 'MLOG' */
#define MEMLOG_SCHEMA_VERSION	1
#define MEMLOG_RECORD_MAX	65536		/* largest blob, in bytes */
#define MEMLOG_SESSION_ID_LEN	16

/* Ring size limits and default, in bytes (sysctl kernel.memlog.ring_size) */
#define MEMLOG_RING_SIZE_MIN	(64U << 10)
#define MEMLOG_RING_SIZE_MAX	(256U << 20)
#define MEMLOG_RING_SIZE_DEFAULT (4U << 20)

/* MEMLOG_IOC_FILTER_UID argument selecting the records of every uid */
#define MEMLOG_UID_ALL		0xFFFFFFFFU

/* Every record read starts with this header (56 bytes, packed) */
struct memlog_record_header {
	__u32 magic;		/* MEMLOG_MAGIC */
	__u32 schema_version;	/* MEMLOG_SCHEMA_VERSION */
	__u32 length;		/* bytes of blob following the header */
	__u32 reserved;		/* 0 */
	__u64 ts_ns;		/* CLOCK_REALTIME at write, nanoseconds */
	__u64 seq;		/* global, strictly increasing */
	__u32 uid;		/* writer's effective uid */
	__u32 pid;		/* writer's thread group id */
	__u8 session_id[MEMLOG_SESSION_ID_LEN];	/* MEMLOG_IOC_SET_SESSION */
} __attribute__((packed));

/* MEMLOG_IOC_STATS result (48 bytes, packed), for the fd's uid view */
struct memlog_stats {
	__u64 total_writes;	/* records ever written */
	__u64 total_evictions;	/* records evicted to make room */
	__u64 records_in_ring;	/* records stored now */
	__u32 ring_bytes;	/* bytes in use, headers and padding included */
	__u32 ring_capacity;	/* ring size in bytes */
	__u64 oldest_ts_ns;	/* ts_ns of the oldest record, 0 if none */
	__u64 newest_ts_ns;	/* ts_ns of the newest record, 0 if none */
} __attribute__((packed));

/* MEMLOG_IOC_SET_SESSION argument */
struct memlog_session {
	__u8 id[MEMLOG_SESSION_ID_LEN];
};

/*
 * ioctls. Each fd has a view: its caller's own uid (the default), another
 * uid, or every uid (MEMLOG_UID_ALL), chosen with MEMLOG_IOC_FILTER_UID.
 *
 * STATS		statistics of the view; for MEMLOG_UID_ALL the sums over
 *			every ring (oldest/newest: min/max). A uid that never
 *			wrote has no ring: zeros, ring_capacity the ring size.
 * CLEAR		drop every record of the view (counters are kept).
 *			Needs CAP_SYS_ADMIN, else -EPERM.
 * SET_RING_SIZE	resize every ring, as sysctl kernel.memlog.ring_size:
 *			out of range -EINVAL, shrinking evicts oldest records.
 *			Needs CAP_SYS_ADMIN, else -EPERM.
 * FILTER_UID		select the view and rewind the fd. The caller's own uid
 *			is always allowed; another uid or MEMLOG_UID_ALL needs
 *			CAP_SYS_ADMIN, else -EPERM. All-uid reads come in seq
 *			order.
 * GET_VERSION		MEMLOG_SCHEMA_VERSION.
 * SET_SESSION		tag this fd's later writes with a session id.
 */
#define MEMLOG_IOC_TYPE		0xCB

#define MEMLOG_IOC_STATS	_IOR(MEMLOG_IOC_TYPE, 1, struct memlog_stats)
#define MEMLOG_IOC_CLEAR	_IO(MEMLOG_IOC_TYPE, 2)
#define MEMLOG_IOC_SET_RING_SIZE _IOW(MEMLOG_IOC_TYPE, 3, __u32)
#define MEMLOG_IOC_FILTER_UID	_IOW(MEMLOG_IOC_TYPE, 4, __u32)
#define MEMLOG_IOC_GET_VERSION	_IOR(MEMLOG_IOC_TYPE, 5, __u32)
#define MEMLOG_IOC_SET_SESSION	_IOW(MEMLOG_IOC_TYPE, 6, struct memlog_session)

#endif /* _UAPI_LINUX_MEMLOG_H */
