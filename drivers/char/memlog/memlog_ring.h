/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memlog: one uid's ring of records
 */
#ifndef _MEMLOG_RING_H
#define _MEMLOG_RING_H

#include <linux/align.h>
#include <linux/types.h>
#include <linux/memlog.h>

#define MEMLOG_HDR_SIZE		sizeof(struct memlog_record_header)
#define MEMLOG_RECORD_ALIGN	8

/**
 * struct memlog_ring - the records of one uid
 * @buf:		the records, @size bytes
 * @size:		usable bytes: @capacity rounded down to a multiple of 8
 * @capacity:		ring size as configured (kernel.memlog.ring_size)
 * @bytes:		bytes taken by live records, headers and padding
 * @uid:		the uid whose records these are
 * @head:		logical offset where the next record goes
 * @tail:		logical offset of the oldest record, @head if empty
 * @epoch:		bumped whenever logical offsets start again (clear, resize)
 * @records:		live records
 * @total_writes:	records ever written
 * @total_evictions:	records evicted to make room
 * @newest_ts_ns:	ts_ns of the newest live record, 0 if none
 * @new_buf:		the next buffer while a resize is under way
 *
 * Logical offsets only grow within an epoch; the byte at logical offset
 * pos is buf[pos % size]. Live records lie in [tail, head).
 */
struct memlog_ring {
	void *buf;
	u32 size;
	u32 capacity;
	u32 bytes;
	u32 uid;
	u64 head;
	u64 tail;
	u64 epoch;
	u64 records;
	u64 total_writes;
	u64 total_evictions;
	u64 newest_ts_ns;
	void *new_buf;
};

/**
 * struct memlog_resv - room reserved for a record not yet committed
 * @start:	logical offset of the record
 * @off:	its offset in the buffer
 * @len:	blob length
 * @staged:	the blob goes to the staging buffer first
 */
struct memlog_resv {
	u64 start;
	u32 off;
	u32 len;
	bool staged;
};

static inline u32 memlog_record_size(u32 len)
{
	return ALIGN(MEMLOG_HDR_SIZE + len, MEMLOG_RECORD_ALIGN);
}

static inline u32 memlog_ring_usable(u32 capacity)
{
	return ALIGN_DOWN(capacity, MEMLOG_RECORD_ALIGN);
}

struct memlog_ring *memlog_ring_alloc(u32 uid, u32 capacity);
void memlog_ring_free(struct memlog_ring *ring);
const struct memlog_record_header *
memlog_ring_peek(const struct memlog_ring *ring, u64 *pos);
void *memlog_ring_reserve(struct memlog_ring *ring, u32 len, void *staging,
			  struct memlog_resv *resv);
void memlog_ring_commit(struct memlog_ring *ring,
			const struct memlog_resv *resv,
			const struct memlog_record_header *hdr,
			const void *staging);
void memlog_ring_clear(struct memlog_ring *ring);
int memlog_ring_resize_prepare(struct memlog_ring *ring, u32 capacity);
void memlog_ring_resize_abort(struct memlog_ring *ring);
void memlog_ring_resize_commit(struct memlog_ring *ring, u32 capacity);
void memlog_ring_stats_add(const struct memlog_ring *ring,
			   struct memlog_stats *st);

#endif /* _MEMLOG_RING_H */
