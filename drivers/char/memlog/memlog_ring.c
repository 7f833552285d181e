// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: one uid's ring of records
 *
 * A record is the 56-byte struct memlog_record_header (holding a reference
 * to the writer's struct pid, see memlog_hdr_pid()) followed by its blob,
 * padded to 8 bytes, and never wraps: when it does not fit before the end of
 * the buffer, the rest of the buffer is skipped (its first bytes get a zero
 * magic when a header fits there) and the record goes to offset 0.
 *
 * The caller holds ring->lock around every call, and allocates and frees
 * buffers outside it: nothing here sleeps or touches user memory.
 */
#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/string.h>

#include "memlog_ring.h"

static u32 memlog_ring_off(const struct memlog_ring *ring, u64 pos)
{
	u32 off;

	div_u64_rem(pos, ring->size, &off);
	return off;
}

static struct memlog_record_header *
memlog_ring_hdr(const struct memlog_ring *ring, u32 off)
{
	return ring->buf + off;
}

/* Step over the skipped end of the buffer if @pos, below head, is there */
static u64 memlog_ring_resolve(const struct memlog_ring *ring, u64 pos)
{
	u32 off = memlog_ring_off(ring, pos);
	u32 room = ring->size - off;

	if (room < MEMLOG_HDR_SIZE ||
	    memlog_ring_hdr(ring, off)->magic != MEMLOG_MAGIC)
		pos += room;
	return pos;
}

/**
 * memlog_ring_peek - the record at or just after a logical offset
 * @ring:	the ring
 * @pos:	logical offset in [tail, head]; moved past a skipped end
 *
 * Return: the record's header, or NULL if @pos is the head.
 */
const struct memlog_record_header *
memlog_ring_peek(const struct memlog_ring *ring, u64 *pos)
{
	if (*pos >= ring->head)
		return NULL;
	*pos = memlog_ring_resolve(ring, *pos);
	return memlog_ring_hdr(ring, memlog_ring_off(ring, *pos));
}

/* Drop the oldest record (its pid reference too): gone for its readers */
static void memlog_ring_forget(struct memlog_ring *ring)
{
	const struct memlog_record_header *hdr;
	u32 rec;

	hdr = memlog_ring_peek(ring, &ring->tail);
	/* Safe under a spinlock: the last put may come from an RCU callback */
	put_pid(memlog_hdr_pid(hdr));
	rec = memlog_record_size(hdr->length);
	ring->tail += rec;
	ring->bytes -= rec;
	ring->tail_ord++;
	if (memlog_ring_records(ring))
		ring->tail = memlog_ring_resolve(ring, ring->tail);
	else
		ring->newest_ts_ns = 0;
}

static void memlog_ring_evict(struct memlog_ring *ring)
{
	memlog_ring_forget(ring);
	ring->total_evictions++;
}

/**
 * memlog_ring_drop - drop up to @max of the oldest records (CLEAR)
 * @ring:	the ring
 * @max:	how many at most: the caller bounds the work under its lock
 *
 * Dropped records are lost to readers, not counted as evictions.
 *
 * Return: the records left.
 */
u64 memlog_ring_drop(struct memlog_ring *ring, u64 max)
{
	while (max-- && memlog_ring_records(ring))
		memlog_ring_forget(ring);
	return memlog_ring_records(ring);
}

/* Logical offset where a record of @rec bytes would start */
static u64 memlog_ring_start(const struct memlog_ring *ring, u32 rec)
{
	u32 off = memlog_ring_off(ring, ring->head);

	return ring->size - off < rec ? ring->head + ring->size - off :
					ring->head;
}

/**
 * memlog_ring_place - make room for a record of @len blob bytes
 * @ring:	the ring
 * @len:	blob length
 * @evict:	whether the oldest records that are in the way may be evicted
 * @start:	set to the record's logical offset, for memlog_ring_publish()
 *
 * Return: where the blob goes, or NULL if the record does not fit in the
 * buffer, or would need evictions that @evict does not allow.
 */
void *memlog_ring_place(struct memlog_ring *ring, u32 len, bool evict,
			u64 *start)
{
	u32 rec = memlog_record_size(len);
	u32 old_off;

	if (!ring->buf || rec > ring->size)
		return NULL;
	old_off = memlog_ring_off(ring, ring->head);
	*start = memlog_ring_start(ring, rec);
	if (!evict && memlog_ring_records(ring) &&
	    *start + rec > ring->tail + ring->size)
		return NULL;
	while (memlog_ring_records(ring) &&
	       *start + rec > ring->tail + ring->size)
		memlog_ring_evict(ring);

	/* Readers at the old head step over the skipped end */
	if (*start != ring->head && ring->size - old_off >= MEMLOG_HDR_SIZE)
		memlog_ring_hdr(ring, old_off)->magic = 0;
	if (!memlog_ring_records(ring))
		ring->tail = *start;

	return ring->buf + memlog_ring_off(ring, *start) + MEMLOG_HDR_SIZE;
}

/*
 * Make the record placed at @start, its blob in place, readable; it keeps
 * the caller's reference to @pid
 */
void memlog_ring_publish(struct memlog_ring *ring, u64 start,
			 const struct memlog_record_header *hdr, struct pid *pid)
{
	struct memlog_record_header *dst;
	u32 rec = memlog_record_size(hdr->length);

	dst = memlog_ring_hdr(ring, memlog_ring_off(ring, start));
	memcpy(dst, hdr, MEMLOG_HDR_SIZE);
	memlog_hdr_set_pid(dst, pid);
	ring->head = start + rec;
	ring->bytes += rec;
	ring->head_ord++;
	ring->newest_ts_ns = hdr->ts_ns;
}

/**
 * memlog_ring_migrate - move the records to a new buffer
 * @ring:	the ring
 * @buf:	the new buffer, or NULL with @size 0: every record evicted
 * @size:	its size, a multiple of 8
 *
 * The newest records that fit are copied, compacted; older ones are
 * evicted (counted in total_evictions, and lost to readers).
 *
 * Return: the old buffer, for the caller to free.
 */
void *memlog_ring_migrate(struct memlog_ring *ring, void *buf, u32 size)
{
	const struct memlog_record_header *hdr;
	void *old = ring->buf;
	u32 dst = 0;
	u64 pos;

	while (ring->bytes > size)
		memlog_ring_evict(ring);

	for (pos = ring->tail; (hdr = memlog_ring_peek(ring, &pos));
	     pos += memlog_record_size(hdr->length)) {
		memcpy(buf + dst, hdr, MEMLOG_HDR_SIZE + hdr->length);
		dst += memlog_record_size(hdr->length);
	}

	ring->buf = buf;
	WRITE_ONCE(ring->size, size);
	ring->tail = 0;
	ring->head = dst;
	ring->epoch++;
	return old;
}

/**
 * memlog_ring_clear - take the buffer of an emptied ring; the counters are kept
 * @ring:	the ring, its records dropped (memlog_ring_drop())
 *
 * Return: the buffer, for the caller to free.
 */
void *memlog_ring_clear(struct memlog_ring *ring)
{
	void *old = ring->buf;

	WARN_ON_ONCE(memlog_ring_records(ring));

	ring->buf = NULL;
	WRITE_ONCE(ring->size, 0);
	ring->head = 0;
	ring->tail = 0;
	ring->bytes = 0;
	ring->tail_ord = ring->head_ord;
	ring->newest_ts_ns = 0;
	ring->epoch++;
	return old;
}

/* Logical offset of the live record with ordinal @ord (or of the head) */
u64 memlog_ring_find(const struct memlog_ring *ring, u64 ord)
{
	const struct memlog_record_header *hdr;
	u64 pos = ring->tail;
	u64 n;

	for (n = ring->tail_ord; n < ord; n++) {
		hdr = memlog_ring_peek(ring, &pos);
		if (!hdr)
			break;
		pos += memlog_record_size(hdr->length);
	}
	return pos;
}

/* Add this ring's figures to @st (oldest/newest: min/max, bytes saturate) */
void memlog_ring_stats_add(const struct memlog_ring *ring,
			   struct memlog_stats *st)
{
	const struct memlog_record_header *oldest;
	u64 pos = ring->tail;

	st->total_writes += ring->head_ord;
	st->total_evictions += ring->total_evictions;
	st->records_in_ring += memlog_ring_records(ring);
	st->ring_bytes = min_t(u64, (u64)st->ring_bytes + ring->bytes, U32_MAX);

	oldest = memlog_ring_peek(ring, &pos);
	if (!oldest)
		return;
	if (!st->oldest_ts_ns || oldest->ts_ns < st->oldest_ts_ns)
		st->oldest_ts_ns = oldest->ts_ns;
	if (ring->newest_ts_ns > st->newest_ts_ns)
		st->newest_ts_ns = ring->newest_ts_ns;
}
