/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memlog: one uid's ring of records
 */
#ifndef _MEMLOG_RING_H
#define _MEMLOG_RING_H

#include <linux/align.h>
#include <linux/build_bug.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/memlog.h>

#define MEMLOG_HDR_SIZE		sizeof(struct memlog_record_header)
/* The UAPI's layouts: no padding, the same for 32- and 64-bit callers */
static_assert(sizeof(struct memlog_record_header) == 56);
static_assert(sizeof(struct memlog_stats) == 48);
#define MEMLOG_RECORD_ALIGN	8
/* A ring's first buffer; it doubles with use up to the ring size */
#define MEMLOG_RING_FIRST_BUF	4096U

struct memlog_user;

/**
 * struct memlog_ring - the records of one uid
 * @lock:		protects everything below but @last_seq, @active,
 *			@user, @user_node and @move_lock
 * @buf:		the records, @size bytes; NULL once cleared
 * @size:		bytes of @buf, a multiple of 8 (0 without @buf)
 * @bytes:		bytes taken by live records, headers and padding
 * @uid:		the uid whose records these are
 * @id:			this ring's index among all rings (0, 1, ...)
 * @moving:		the records are being copied to a new buffer: writers
 *			wait (memlog_ring_copy() reads @buf unlocked)
 * @base:		logical offset of buf[0]
 * @head:		logical offset where the next record goes
 * @tail:		logical offset of the oldest record, @head if empty
 * @head_ord:		ordinal of the next record: records ever written
 * @tail_ord:		ordinal of the oldest live record
 * @total_evictions:	records evicted to make room
 * @newest_ts_ns:	ts_ns of the newest live record, 0 if none
 * @last_seq:		seq of the newest record ever, under memlog_seq_lock
 * @active:		on memlog_active, in @last_seq order, same lock
 * @user:		the user charged for @buf, set once at creation
 * @user_node:		on @user's list of rings, under memlog_create_lock
 * @move_lock:		held while @buf is replaced or emptied (growth,
 *			shrinking, CLEAR): one at a time
 *
 * Logical offsets only grow, and a record keeps its logical offset for
 * its whole life, whatever buffer it moves to: a reader's position stays
 * valid. The byte at logical offset pos is buf[(pos - base) % size]. Live
 * records lie in [tail, head) and have the ordinals [tail_ord, head_ord);
 * between them may lie fillers (see memlog_ring.c).
 */
struct memlog_ring {
	spinlock_t lock;		/* see the kernel-doc above */
	void *buf;
	u32 size;
	u32 bytes;
	kuid_t uid;
	u32 id;
	bool moving;
	u64 base;
	u64 head;
	u64 tail;
	u64 head_ord;
	u64 tail_ord;
	u64 total_evictions;
	u64 newest_ts_ns;
	u64 last_seq;
	struct list_head active;
	struct memlog_user *user;
	struct list_head user_node;
	struct mutex move_lock;		/* see the kernel-doc above */
};

/*
 * A record as a ring keeps it: its header, but where the header has uid and
 * pid (8 bytes, 8-aligned in the ring) a reference to the writer's struct
 * pid; the uid is the ring's. A reader gets both as its namespaces see them.
 */
#define MEMLOG_HDR_PID_OFFSET	offsetof(struct memlog_record_header, uid)
static_assert(MEMLOG_HDR_PID_OFFSET % MEMLOG_RECORD_ALIGN == 0);
static_assert(sizeof(struct pid *) <=
	      offsetofend(struct memlog_record_header, pid) -
	      MEMLOG_HDR_PID_OFFSET);

static inline struct pid *
memlog_hdr_pid(const struct memlog_record_header *hdr)
{
	struct pid *pid;

	memcpy(&pid, (const u8 *)hdr + MEMLOG_HDR_PID_OFFSET, sizeof(pid));
	return pid;
}

static inline void memlog_hdr_set_pid(struct memlog_record_header *hdr,
				      struct pid *pid)
{
	memcpy((u8 *)hdr + MEMLOG_HDR_PID_OFFSET, &pid, sizeof(pid));
}

static inline u32 memlog_record_size(u32 len)
{
	return ALIGN(MEMLOG_HDR_SIZE + len, MEMLOG_RECORD_ALIGN);
}

static inline u32 memlog_ring_usable(u32 capacity)
{
	return ALIGN_DOWN(capacity, MEMLOG_RECORD_ALIGN);
}

static inline u64 memlog_ring_records(const struct memlog_ring *ring)
{
	return ring->head_ord - ring->tail_ord;
}

/* Bytes from the oldest record to the head, padding included */
static inline u32 memlog_ring_span(const struct memlog_ring *ring)
{
	return ring->head - ring->tail;
}

const struct memlog_record_header *
memlog_ring_peek(const struct memlog_ring *ring, u64 *pos);
void *memlog_ring_place(struct memlog_ring *ring, u32 len, bool evict,
			u64 *start);
void memlog_ring_publish(struct memlog_ring *ring, u64 start,
			 const struct memlog_record_header *hdr, struct pid *pid);
bool memlog_ring_trim(struct memlog_ring *ring, u32 size, u32 max, bool evict);
void memlog_ring_copy(const struct memlog_ring *ring, void *buf, u32 done,
		      u32 len);
void *memlog_ring_switch(struct memlog_ring *ring, void *buf, u32 size);
void memlog_ring_stats_add(const struct memlog_ring *ring,
			   struct memlog_stats *st);

#endif /* _MEMLOG_RING_H */
