// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: one uid's ring of records
 *
 * A record is the 56-byte struct memlog_record_header (holding a reference
 * to the writer's struct pid, see memlog_hdr_pid()) followed by its blob,
 * padded to 8 bytes, and never wraps: when it does not fit before the end of
 * the buffer, the rest of the buffer is a filler (struct memlog_filler)
 * and the record goes to offset 0. A filler stays among the records when
 * they move to another buffer: they keep their logical offsets, and
 * readers their positions.
 *
 * The caller holds ring->lock around every call but memlog_ring_copy(),
 * and allocates and frees buffers outside it: nothing here sleeps or
 * touches user memory.
 */
#include <linux/bug.h>
#include <linux/compiler.h>
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/string.h>

#include "memlog_ring.h"

/*
 * What fills the end of a buffer that a record did not fit in: where a
 * record has its magic, a zero, then the filler's size (8 or more bytes).
 */
struct memlog_filler {
	u32 magic;
	u32 size;
};

static_assert(offsetof(struct memlog_record_header, magic) == 0);
static_assert(sizeof(struct memlog_filler) == MEMLOG_RECORD_ALIGN);

static u32 memlog_ring_off(const struct memlog_ring *ring, u64 pos)
{
	u32 off;

	div_u64_rem(pos - ring->base, ring->size, &off);
	return off;
}

static struct memlog_record_header *
memlog_ring_hdr(const struct memlog_ring *ring, u32 off)
{
	return ring->buf + off;
}

/* Step over the filler at @pos, below head, if there is one */
static u64 memlog_ring_resolve(const struct memlog_ring *ring, u64 pos)
{
	const struct memlog_filler *filler;

	filler = ring->buf + memlog_ring_off(ring, pos);
	if (filler->magic != MEMLOG_MAGIC)
		pos += filler->size;
	return pos;
}

/**
 * memlog_ring_peek - the record at or just after a logical offset
 * @ring:	the ring
 * @pos:	logical offset in [tail, head]; moved past a filler
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

/* Logical offset where a record of @rec bytes would start */
static u64 memlog_ring_start(const struct memlog_ring *ring, u32 rec)
{
	u32 room = ring->size - memlog_ring_off(ring, ring->head);

	return rec <= room ? ring->head : ring->head + room;
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

	if (!ring->buf || rec > ring->size)
		return NULL;
	*start = memlog_ring_start(ring, rec);
	if (!evict && memlog_ring_records(ring) &&
	    *start + rec > ring->tail + ring->size)
		return NULL;
	while (memlog_ring_records(ring) &&
	       *start + rec > ring->tail + ring->size)
		memlog_ring_evict(ring);

	if (!memlog_ring_records(ring)) {
		ring->tail = *start;
	} else if (*start != ring->head) {
		/* Readers at the old head step over the filler */
		struct memlog_filler *filler;

		filler = ring->buf + memlog_ring_off(ring, ring->head);
		filler->magic = 0;
		filler->size = *start - ring->head;
	}

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
 * memlog_ring_trim - drop the oldest records until the rest fit in @size
 * @ring:	the ring, about to move to a buffer of @size bytes (or to none)
 * @size:	the new buffer's size, a multiple of 8 (0: none)
 * @max:	records at most: the caller bounds the work under its lock
 * @evict:	count them as evictions (making room), else not (CLEAR)
 *
 * Either way they are lost to readers.
 *
 * Return: whether the records left fit.
 */
bool memlog_ring_trim(struct memlog_ring *ring, u32 size, u32 max, bool evict)
{
	while (memlog_ring_records(ring) && memlog_ring_span(ring) > size) {
		if (!max--)
			return false;
		if (evict)
			memlog_ring_evict(ring);
		else
			memlog_ring_forget(ring);
	}
	return true;
}

/**
 * memlog_ring_copy - copy part of the records' span to a new buffer
 * @ring:	the ring, trimmed to fit the new buffer; ring->lock NOT held
 * @buf:	the new buffer
 * @done:	bytes of the span copied so far
 * @len:	bytes to copy now
 *
 * The span is copied as it lies, fillers included, to the start of @buf.
 * The caller keeps the ring still meanwhile: ring->moving set under the
 * lock (writers wait) and ring->move_lock held (no CLEAR, no other move);
 * readers only read.
 */
void memlog_ring_copy(const struct memlog_ring *ring, void *buf, u32 done,
		      u32 len)
{
	u32 off = memlog_ring_off(ring, ring->tail + done);
	u32 first = min(len, ring->size - off);

	memcpy(buf + done, ring->buf + off, first);
	memcpy(buf + done + first, ring->buf, len - first);
}

/**
 * memlog_ring_switch - make @buf, holding the copied span, the ring's buffer
 * @ring:	the ring, trimmed to fit @size
 * @buf:	the new buffer, or NULL with @size 0 once the ring is empty
 * @size:	its size, a multiple of 8
 *
 * Records keep their logical offsets: the oldest one is at buf[0].
 *
 * Return: the old buffer, for the caller to free.
 */
void *memlog_ring_switch(struct memlog_ring *ring, void *buf, u32 size)
{
	void *old = ring->buf;

	WARN_ON_ONCE(!buf && memlog_ring_records(ring));
	WARN_ON_ONCE(size % MEMLOG_RECORD_ALIGN);

	ring->buf = buf;
	WRITE_ONCE(ring->size, size);
	ring->base = ring->tail;
	return old;
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
