// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: one uid's ring of records
 *
 * A record is the 56-byte struct memlog_record_header followed by its blob,
 * padded to 8 bytes, and never wraps: when it does not fit before the end of
 * the buffer, the rest of the buffer is skipped (its first bytes get a zero
 * magic when a header fits there) and the record goes to offset 0.
 *
 * The caller serialises every call (the driver's global mutex).
 */
#include <linux/math64.h>
#include <linux/minmax.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

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

static void memlog_ring_evict(struct memlog_ring *ring)
{
	const struct memlog_record_header *hdr;
	u32 rec;

	hdr = memlog_ring_peek(ring, &ring->tail);
	rec = memlog_record_size(hdr->length);
	ring->tail += rec;
	ring->bytes -= rec;
	ring->records--;
	ring->total_evictions++;
	if (ring->records)
		ring->tail = memlog_ring_resolve(ring, ring->tail);
	else
		ring->newest_ts_ns = 0;
}

struct memlog_ring *memlog_ring_alloc(u32 uid, u32 capacity)
{
	struct memlog_ring *ring;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL);
	if (!ring)
		return NULL;
	ring->size = memlog_ring_usable(capacity);
	ring->buf = vmalloc(ring->size);
	if (!ring->buf) {
		kfree(ring);
		return NULL;
	}
	ring->capacity = capacity;
	ring->uid = uid;
	return ring;
}

void memlog_ring_free(struct memlog_ring *ring)
{
	vfree(ring->new_buf);
	vfree(ring->buf);
	kfree(ring);
}

/**
 * memlog_ring_reserve - choose where a record of @len blob bytes goes
 * @ring:	the ring; the record must fit in it
 * @len:	blob length
 * @staging:	a buffer of MEMLOG_RECORD_MAX bytes
 * @resv:	filled in for memlog_ring_commit()
 *
 * Changes nothing. If the record's place is free, the blob can be copied
 * there directly; if live records (to be evicted on commit) are still there,
 * it must go to @staging so that a failed copy leaves them intact.
 *
 * Return: where to copy the blob.
 */
void *memlog_ring_reserve(struct memlog_ring *ring, u32 len, void *staging,
			  struct memlog_resv *resv)
{
	u32 rec = memlog_record_size(len);
	u64 start = ring->head;
	u32 off = memlog_ring_off(ring, start);

	if (ring->size - off < rec) {
		start += ring->size - off;
		off = 0;
	}
	resv->start = start;
	resv->off = off;
	resv->len = len;
	resv->staged = ring->records && start + rec > ring->tail + ring->size;
	return resv->staged ? staging : ring->buf + off + MEMLOG_HDR_SIZE;
}

/**
 * memlog_ring_commit - store a reserved record once its blob is copied
 * @ring:	the ring
 * @resv:	from memlog_ring_reserve()
 * @hdr:	the record's header
 * @staging:	the staging buffer, holding the blob if @resv->staged
 *
 * Evicts the oldest records that are in the way.
 */
void memlog_ring_commit(struct memlog_ring *ring,
			const struct memlog_resv *resv,
			const struct memlog_record_header *hdr,
			const void *staging)
{
	u32 rec = memlog_record_size(resv->len);
	u32 old_off = memlog_ring_off(ring, ring->head);

	while (ring->records && resv->start + rec > ring->tail + ring->size)
		memlog_ring_evict(ring);

	if (!ring->records)
		ring->tail = resv->start;
	else if (resv->start != ring->head &&
		 ring->size - old_off >= MEMLOG_HDR_SIZE)
		memlog_ring_hdr(ring, old_off)->magic = 0;

	if (resv->staged)
		memcpy(ring->buf + resv->off + MEMLOG_HDR_SIZE, staging,
		       resv->len);
	memcpy(ring->buf + resv->off, hdr, MEMLOG_HDR_SIZE);

	ring->head = resv->start + rec;
	ring->bytes += rec;
	ring->records++;
	ring->total_writes++;
	ring->newest_ts_ns = hdr->ts_ns;
}

/* Drop every record; the counters are kept */
void memlog_ring_clear(struct memlog_ring *ring)
{
	ring->head = 0;
	ring->tail = 0;
	ring->bytes = 0;
	ring->records = 0;
	ring->newest_ts_ns = 0;
	ring->epoch++;
}

/* Resizing: allocate every ring's new buffer first, then commit them all */
int memlog_ring_resize_prepare(struct memlog_ring *ring, u32 capacity)
{
	ring->new_buf = vmalloc(memlog_ring_usable(capacity));
	return ring->new_buf ? 0 : -ENOMEM;
}

void memlog_ring_resize_abort(struct memlog_ring *ring)
{
	vfree(ring->new_buf);
	ring->new_buf = NULL;
}

/* Move the newest records that fit to the new buffer, compacted */
void memlog_ring_resize_commit(struct memlog_ring *ring, u32 capacity)
{
	const struct memlog_record_header *hdr;
	u32 size = memlog_ring_usable(capacity);
	u32 dst = 0;
	u64 pos;

	while (ring->bytes > size)
		memlog_ring_evict(ring);

	for (pos = ring->tail; (hdr = memlog_ring_peek(ring, &pos));
	     pos += memlog_record_size(hdr->length)) {
		memcpy(ring->new_buf + dst, hdr, MEMLOG_HDR_SIZE + hdr->length);
		dst += memlog_record_size(hdr->length);
	}

	vfree(ring->buf);
	ring->buf = ring->new_buf;
	ring->new_buf = NULL;
	ring->size = size;
	ring->capacity = capacity;
	ring->tail = 0;
	ring->head = dst;
	ring->epoch++;
}

/* Add this ring's figures to @st (oldest/newest: min/max) */
void memlog_ring_stats_add(const struct memlog_ring *ring,
			   struct memlog_stats *st)
{
	const struct memlog_record_header *oldest;
	u64 pos = ring->tail;

	st->total_writes += ring->total_writes;
	st->total_evictions += ring->total_evictions;
	st->records_in_ring += ring->records;
	st->ring_bytes = min_t(u64, (u64)st->ring_bytes + ring->bytes, U32_MAX);
	st->ring_capacity = min_t(u64, (u64)st->ring_capacity + ring->capacity,
				  U32_MAX);

	oldest = memlog_ring_peek(ring, &pos);
	if (!oldest)
		return;
	if (!st->oldest_ts_ns || oldest->ts_ns < st->oldest_ts_ns)
		st->oldest_ts_ns = oldest->ts_ns;
	if (ring->newest_ts_ns > st->newest_ts_ns)
		st->newest_ts_ns = ring->newest_ts_ns;
}
