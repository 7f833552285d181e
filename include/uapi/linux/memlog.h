/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * memlog: a character device keeping per-uid rings of opaque records.
 *
 * This header is the one contract between the kernel driver and userspace.
 * Its binary layout is stable: readers already depend on it.
 *
 * A write of N bytes (1 <= N <= MEMLOG_RECORD_MAX) stores one record, for
 * every write path: write(2), writev(2)/pwritev2(2) (the iovecs concatenated
 * into one record, all or nothing) and io_uring. A read returns one whole
 * record: struct memlog_record_header followed by header.length bytes of
 * blob; a vectored read fills its iovecs with one record, or fails with
 * EINVAL if together they are too small.
 *
 * Identity is the opener's: the uid stamped on a record, the ring it goes
 * to and the fd's default view are those of the credentials that opened the
 * fd, as for sockets. Passing an fd (fork, SCM_RIGHTS, a setuid program's
 * inherited stderr) passes that identity, never the receiver's. The pid is
 * the writing process's thread group id, as the pid namespace of the fd's
 * opener sees it: the global pid for the initial namespace, the pid in the
 * writer's namespace for a reader there, 0 for a namespace that cannot see
 * the writer (as SCM_CREDENTIALS). A record keeps its writer's struct pid
 * (not its number) until it is evicted or cleared.
 *
 * Uids are seen through the user namespace of the fd's opener: a record's
 * uid is translated into it (a uid it does not map reads as the overflow
 * uid, 65534 by default), and FILTER_UID's argument is read in the caller's
 * namespace.
 *
 * Memory is bounded: a ring grows with use up to kernel.memlog.ring_size,
 * and all rings together hold at most kernel.memlog.max_bytes of buffers.
 *
 * Memory is shared fairly between users. A user is a uid of the initial
 * user namespace; the uids of any other user namespace count, together, as
 * the owner of its outermost non-initial ancestor (records still carry the
 * writer's own uid). When max_bytes is used up and a user within its share
 * (max_bytes / the users holding memory, itself included) needs room, the
 * user holding the most gives it while that user holds more than its
 * share: its largest ring is halved, its oldest records evicted (counted in
 * MEMLOG_IOC_STATS' total_evictions and in its readers' GET_LOST). A user at
 * its share grows no further and evicts its own oldest records; a new ring
 * of such a user takes its first buffer from the user's own largest ring. A
 * write that still cannot fit fails with ENOSPC and stores nothing (a first
 * record larger than the writer's share, for example). Lowering max_bytes
 * stops growth and new rings; buffers already held stay until CLEAR, a
 * shrinking ring_size or a reclaim. Buffers are charged to the writer's
 * memory cgroup; an allocation that fails returns ENOMEM. An idle fd holds
 * no buffer: a read or write allocates what it needs and frees it before
 * returning. A ring, once made, is kept until the module is unloaded, and a
 * user holds at most max_bytes / 4096 rings: a new uid of a user at that
 * bound gets ENOSPC on its first write. A write waits while another task moves its ring to a new
 * buffer; an O_NONBLOCK (or RWF_NOWAIT) write fails with EAGAIN instead.
 *
 * No user memory is touched under a lock another uid's operation needs: a
 * writer or reader stalled in a page fault delays only itself.
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

/*
 * Bytes all rings together may hold (sysctl kernel.memlog.max_bytes): at
 * least MEMLOG_MAX_BYTES_MIN; the default, 64 MiB, is 1/16 of a 1 GiB
 * machine.
 */
#define MEMLOG_MAX_BYTES_MIN	(64ULL << 10)
#define MEMLOG_MAX_BYTES_DEFAULT (64ULL << 20)

/* MEMLOG_IOC_FILTER_UID argument selecting the records of every uid */
#define MEMLOG_UID_ALL		0xFFFFFFFFU

/*
 * Every record read starts with this header (56 bytes; every field at its
 * natural alignment, no padding, the same layout for 32- and 64-bit callers)
 */
struct memlog_record_header {
	__u32 magic;		/* MEMLOG_MAGIC */
	__u32 schema_version;	/* MEMLOG_SCHEMA_VERSION */
	__u32 length;		/* bytes of blob following the header */
	__u32 reserved;		/* 0 */
	__u64 ts_ns;		/* CLOCK_REALTIME at write, nanoseconds */
	__u64 seq;		/* global, strictly increasing */
	__u32 uid;		/* opener's effective uid, in the reader's userns */
	__u32 pid;		/* writer's tgid, in the reader's pidns */
	__u8 session_id[MEMLOG_SESSION_ID_LEN];	/* MEMLOG_IOC_SET_SESSION */
};

/*
 * MEMLOG_IOC_STATS result (48 bytes, naturally aligned as above), for the
 * fd's view: one uid's ring, or (MEMLOG_UID_ALL) every ring, summed. A uid
 * without a ring reads as an empty ring.
 */
struct memlog_stats {
	__u64 total_writes;	/* records ever written */
	__u64 total_evictions;	/* records evicted to make room */
	__u64 records_in_ring;	/* records stored now */
	__u32 ring_bytes;	/* bytes the view's records take now, headers
				 * and padding included (all uids: the sum,
				 * at most U32_MAX)
				 */
	__u32 ring_capacity;	/* bytes the view may hold: one uid, the ring
				 * size usable for records (ring_size rounded
				 * down to 8, at most max_bytes); all uids,
				 * max_bytes (at most U32_MAX)
				 */
	__u64 oldest_ts_ns;	/* ts_ns of the oldest record, 0 if none */
	__u64 newest_ts_ns;	/* ts_ns of the newest record, 0 if none */
};

/* MEMLOG_IOC_SET_SESSION argument */
struct memlog_session {
	__u8 id[MEMLOG_SESSION_ID_LEN];
};

/*
 * ioctls. Each fd has a view: its caller's own uid (the default), another
 * uid, or every uid (MEMLOG_UID_ALL), chosen with MEMLOG_IOC_FILTER_UID.
 *
 * STATS		statistics of the view (see struct memlog_stats); for
 *			MEMLOG_UID_ALL the sums over every ring (oldest/newest:
 *			min/max).
 * CLEAR		drop every record of the view and free the memory
 *			that held them (counters are kept).
 *			Needs CAP_SYS_ADMIN, else -EPERM.
 * SET_RING_SIZE	resize every ring, as sysctl kernel.memlog.ring_size:
 *			out of range -EINVAL, shrinking evicts oldest records,
 *			all or nothing (-ENOMEM changes nothing).
 *			Needs CAP_SYS_ADMIN, else -EPERM (writing the sysctl
 *			too).
 * FILTER_UID		select the view and rewind the fd. The caller's own uid
 *			(the opener's) is always allowed; another uid or
 *			MEMLOG_UID_ALL needs CAP_SYS_ADMIN, else -EPERM; a uid
 *			the caller's user namespace does not map, -EINVAL.
 *			All-uid reads come in seq order.
 * GET_VERSION		MEMLOG_SCHEMA_VERSION.
 * SET_SESSION		tag this fd's later writes with a session id.
 * GET_LOST		records of the view evicted (or cleared, or dropped
 *			by a shrinking resize) before this fd read them, since
 *			it was opened, rewound (lseek to 0) or re-filtered.
 *
 * The admin checks are capable(CAP_SYS_ADMIN) in the initial user
 * namespace: the rings are a global resource.
 *
 * The ioctl type 0xC1, numbers 00-1F (free in the kernel's
 * Documentation/userspace-api/ioctl/ioctl-number.rst; until driver 0.2.0
 * memlog used 0xCB, which that table gives to another driver).
 */
#define MEMLOG_IOC_TYPE		0xC1

#define MEMLOG_IOC_STATS	_IOR(MEMLOG_IOC_TYPE, 1, struct memlog_stats)
#define MEMLOG_IOC_CLEAR	_IO(MEMLOG_IOC_TYPE, 2)
#define MEMLOG_IOC_SET_RING_SIZE _IOW(MEMLOG_IOC_TYPE, 3, __u32)
#define MEMLOG_IOC_FILTER_UID	_IOW(MEMLOG_IOC_TYPE, 4, __u32)
#define MEMLOG_IOC_GET_VERSION	_IOR(MEMLOG_IOC_TYPE, 5, __u32)
#define MEMLOG_IOC_SET_SESSION	_IOW(MEMLOG_IOC_TYPE, 6, struct memlog_session)
#define MEMLOG_IOC_GET_LOST	_IOR(MEMLOG_IOC_TYPE, 7, __u64)

#endif /* _UAPI_LINUX_MEMLOG_H */
