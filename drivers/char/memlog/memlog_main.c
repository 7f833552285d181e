// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: a character device keeping per-uid rings of opaque records
 *
 * Each uid that writes gets a ring that grows with use up to
 * kernel.memlog.ring_size bytes, while all rings together stay within
 * kernel.memlog.max_bytes; a write stores one record, evicting that uid's
 * oldest records if needed. A read returns one record of the fd's view (the
 * opener's own uid, another uid, or every uid in seq order).
 *
 * Fair share. Rings are charged to users: a uid of the initial user
 * namespace is its own user; the uids of any other namespace count as the
 * owner of its outermost non-initial ancestor (as the kernel's ucounts
 * charge nested namespaces). When max_bytes is used up and a user within
 * its share (max_bytes / users holding memory) needs room, the user holding
 * the most gives it, while it holds more than its share: its largest ring
 * is halved, the oldest records evicted (counted as evictions, and lost to
 * readers). A user at or over its share evicts its own oldest records.
 *
 * Locking. No lock another uid's operation needs is held while user memory
 * is touched: a write copies its blob into kernel memory first, a read
 * copies its record out of the ring before copying it to the user.
 *  - ring->lock (spinlock): one ring's records and counters.
 *  - memlog_seq_lock (spinlock, inside ring->lock): assigns seq and makes a
 *    record readable in one step, so that every record with seq <= the last
 *    assigned one is readable; keeps memlog_active in last_seq order.
 *  - memlog_resize_sem: buffers change size (growth, ring creation and
 *    reclaim: read; resizing: write); allocations happen under it, never
 *    under a spinlock.
 *  - memlog_reclaim_lock (inside memlog_resize_sem): one reclaimer at a time.
 *  - ring->move_lock (inside both): one ring's buffer replaced (growth,
 *    reclaim, resizing) or emptied (CLEAR), one at a time.
 *  - memlog_create_lock (inside both): inserts a new ring or user; the
 *    users' lists of rings.
 *  - memlog_file.lock (per fd, killable): the fd's view and cursors.
 * Rings and users live until the module is unloaded; CLEAR frees the
 * rings' buffers. A user holds at most max_bytes / MEMLOG_RING_FIRST_BUF
 * rings (as many first buffers as max_bytes has room for): a ring struct
 * without a buffer costs little, but a user with many uids could make
 * rings without end, taking its own buffers back each time.
 *
 * No work proportional to a ring's size or record count under a spinlock:
 * a ring moving to a new buffer is copied unlocked while its own writers
 * wait (readers read on), its records keeping their logical offsets so
 * that readers' positions stay valid; evictions and CLEAR's drops go
 * MEMLOG_BATCH records per lock hold.
 *
 * A record keeps a reference to its writer's struct pid (as SCM_CREDENTIALS
 * does) until it is evicted or cleared; a reader gets the writer's pid as
 * the fd opener's pid namespace sees it, 0 if it cannot.
 *
 * An all-uid reader keeps a cursor per ring and a min-heap of rings keyed
 * by the seq of their next unread record: a read costs O(log R). It only
 * returns records up to the seq it last synced at; syncing walks
 * memlog_active back to the rings written since (MEMLOG_BATCH of them at
 * most under memlog_seq_lock; past that, every ring is looked at
 * unlocked).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/hash.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/seqlock.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysctl.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/uio.h>
#include <linux/user_namespace.h>
#include <linux/wait.h>
#include <linux/wait_bit.h>
#include <linux/xarray.h>
#include <linux/memlog.h>

#include "memlog_ring.h"
#include "memlog_trace.h"
#include "memlog_compat.h"

/* Buffers: charged to the caller's memcg, failing rather than OOM-killing */
#define MEMLOG_GFP	(GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL | __GFP_NOWARN)
/* Blobs up to this size are copied in on the stack */
#define MEMLOG_STACK_BLOB	256
/* Records up to this size are copied out on the stack */
#define MEMLOG_STACK_RECORD	(MEMLOG_HDR_SIZE + MEMLOG_STACK_BLOB)
#define MEMLOG_WAIT_BITS	8
/* Work done per lock hold, or between two cond_resched(), at most */
#define MEMLOG_BATCH		256
#define MEMLOG_COPY_CHUNK	SZ_256K

static DEFINE_XARRAY(memlog_rings);		/* uid -> struct memlog_ring */
static DEFINE_XARRAY(memlog_ring_ids);		/* ring id -> the same */
static DEFINE_XARRAY(memlog_users);		/* owner uid -> memlog_user */
static DEFINE_MUTEX(memlog_create_lock);
static DEFINE_MUTEX(memlog_reclaim_lock);
static DECLARE_RWSEM(memlog_resize_sem);
static DEFINE_SPINLOCK(memlog_seq_lock);
static LIST_HEAD(memlog_active);		/* rings, oldest last_seq first */
static u64 memlog_seq;				/* last seq assigned */
static u32 memlog_nr_rings;
static unsigned int memlog_ring_size = MEMLOG_RING_SIZE_DEFAULT;
static unsigned long memlog_max_bytes = MEMLOG_MAX_BYTES_DEFAULT;
static unsigned long memlog_max_bytes_min = MEMLOG_MAX_BYTES_MIN;
static unsigned long memlog_max_bytes_max = LONG_MAX;
static atomic_long_t memlog_bytes = ATOMIC_LONG_INIT(0);	/* buffers */
static atomic_t memlog_nr_active = ATOMIC_INIT(0);	/* users holding any */
/* Readers of one uid wait on its bucket, readers of every uid on _all */
static wait_queue_head_t memlog_waits[1 << MEMLOG_WAIT_BITS];
static DECLARE_WAIT_QUEUE_HEAD(memlog_all_wait);
static struct ctl_table_header *memlog_sysctl_header;

/**
 * struct memlog_user - who is charged for rings (see "Fair share" above)
 * @owner:	a uid of the initial user namespace
 * @bytes:	buffers of its rings, counted in memlog_bytes too
 * @rings:	its rings, under memlog_create_lock
 * @nr_rings:	how many, same lock (read unlocked as a hint)
 */
struct memlog_user {
	kuid_t owner;
	atomic_long_t bytes;
	struct list_head rings;
	u32 nr_rings;
};

/**
 * struct memlog_cursor - where an fd is in one ring
 * @ring:	the ring, NULL until the fd meets it
 * @pos:	logical offset of the next record to read, if @ord is live
 * @ord:	its ordinal: records before it were read or lost
 * @key:	all-uid view: seq of the next record, the heap's key
 * @in_heap:	all-uid view: the ring is in the fd's heap
 */
struct memlog_cursor {
	struct memlog_ring *ring;
	u64 pos;
	u64 ord;
	u64 key;
	bool in_heap;
};

/**
 * struct memlog_file - an open /dev/memlog
 * @lock:	serialises reads, the view and the cursors
 * @uid:	the opener's euid: the identity of the fd's writes
 * @owner:	the user its rings are charged to (see "Fair share")
 * @user_ns:	the opener's user namespace: the uids the fd's reads show
 * @pid_ns:	the opener's pid namespace (a reference): the pids they show
 * @view_all:	the view is every uid (else @view)
 * @view:	the uid whose records are read
 * @one:	the cursor of a one-uid view
 * @curs:	all-uid view: a cursor per ring id, @ncurs of them
 * @heap:	all-uid view: ring ids with a record to read, by key
 * @pending:	all-uid view: room for the ring ids a sync finds
 * @ncurs:	entries of @curs, @heap and @pending
 * @nheap:	ring ids in @heap
 * @synced:	all-uid view: records up to this seq may be returned
 * @lost:	records of the view evicted or cleared before they were read
 * @ring:	the ring of @uid, once a write has found or made it
 * @session_lock: protects @session_id; writes read it without a lock op
 * @session_id:	tag of the records written through this fd
 * @wait:	the fd's pollers, its only wait queue for its whole life
 * @relay:	on the view's wait queue once the fd is polled: passes the
 *		writers' wakeups on to @wait
 * @relay_on:	the queue @relay is on, NULL until the first poll
 * @relay_lock:	protects @relay_on and moves @relay between queues
 * @poll_busy:	bit 0 set when poll found @lock taken and said "not
 *		readable": the holder wakes @wait when it lets go
 */
struct memlog_file {
	struct mutex lock;		/* see the kernel-doc above */
	kuid_t uid;
	kuid_t owner;
	struct user_namespace *user_ns;
	struct pid_namespace *pid_ns;
	bool view_all;
	kuid_t view;
	struct memlog_cursor one;
	struct memlog_cursor *curs;
	u32 *heap;
	u32 *pending;
	u32 ncurs;
	u32 nheap;
	u64 synced;
	u64 lost;
	struct memlog_ring *ring;
	seqlock_t session_lock;		/* see the kernel-doc above */
	u8 session_id[MEMLOG_SESSION_ID_LEN];
	wait_queue_head_t wait;
	wait_queue_entry_t relay;
	wait_queue_head_t *relay_on;
	spinlock_t relay_lock;		/* see the kernel-doc above */
	unsigned long poll_busy;
};

static wait_queue_head_t *memlog_wait_of(kuid_t uid)
{
	return &memlog_waits[hash_32(__kuid_val(uid), MEMLOG_WAIT_BITS)];
}

/* The queue a writer of the fd's view wakes */
static wait_queue_head_t *memlog_view_wait(struct memlog_file *mf)
{
	return READ_ONCE(mf->view_all) ? &memlog_all_wait :
					  memlog_wait_of(READ_ONCE(mf->view));
}

/* Called under the view queue's lock: wake the fd's own pollers */
static int memlog_relay_wake(struct wait_queue_entry *entry, unsigned int mode,
			     int sync, void *key)
{
	struct memlog_file *mf = container_of(entry, struct memlog_file, relay);

	if (wq_has_sleeper(&mf->wait))
		wake_up_interruptible_poll(&mf->wait, key_to_poll(key));
	return 0;
}

/*
 * Put the fd's relay on the queue of its current view (first poll, or a
 * view change). An fd that is never polled costs writers nothing.
 */
static void memlog_relay_move(struct memlog_file *mf, bool first)
{
	wait_queue_head_t *to;

	spin_lock(&mf->relay_lock);
	if (first == !mf->relay_on) {
		to = memlog_view_wait(mf);
		if (mf->relay_on)
			remove_wait_queue(mf->relay_on, &mf->relay);
		add_wait_queue(to, &mf->relay);
		mf->relay_on = to;
	}
	spin_unlock(&mf->relay_lock);
}

/* Let go of mf->lock; wake the pollers that found it taken */
static void memlog_file_unlock(struct memlog_file *mf)
{
	mutex_unlock(&mf->lock);
	if (test_and_clear_bit(0, &mf->poll_busy))
		wake_up_interruptible_poll(&mf->wait, EPOLLIN | EPOLLRDNORM);
}

static u32 memlog_cap(void)
{
	return memlog_ring_usable(READ_ONCE(memlog_ring_size));
}

/* The first buffer of a ring (new, or cleared) for a first @rec record */
static u32 memlog_first_size(u32 rec)
{
	return min_t(u32, max_t(u32, roundup_pow_of_two(rec),
				MEMLOG_RING_FIRST_BUF), memlog_cap());
}

/* The user charged for the rings of @cred's writes (see "Fair share") */
static kuid_t memlog_owner_of(const struct cred *cred)
{
	const struct user_namespace *ns = cred->user_ns;

	if (ns == &init_user_ns)
		return cred->euid;
	while (ns->parent != &init_user_ns)
		ns = ns->parent;
	return ns->owner;
}

/* The user of @owner, made if need be; rings keep it until module exit */
static struct memlog_user *memlog_user_get(kuid_t owner)
{
	struct memlog_user *user, *found;
	int ret;

	user = xa_load(&memlog_users, __kuid_val(owner));
	if (user)
		return user;
	user = kzalloc_obj(*user, GFP_KERNEL_ACCOUNT);
	if (!user)
		return ERR_PTR(-ENOMEM);
	user->owner = owner;
	INIT_LIST_HEAD(&user->rings);
	if (mutex_lock_killable(&memlog_create_lock)) {
		kfree(user);
		return ERR_PTR(-EINTR);
	}
	found = xa_load(&memlog_users, __kuid_val(owner));
	if (!found) {
		ret = xa_insert(&memlog_users, __kuid_val(owner), user,
				GFP_KERNEL_ACCOUNT);
		found = ret ? ERR_PTR(ret) : user;
	}
	mutex_unlock(&memlog_create_lock);
	if (found != user)
		kfree(user);
	return found;
}

/*
 * Count @bytes of buffers against max_bytes and @user in one step; false
 * if they do not fit (then nothing is counted).
 */
static bool memlog_charge(struct memlog_user *user, long bytes)
{
	unsigned long max = READ_ONCE(memlog_max_bytes);
	long total = atomic_long_read(&memlog_bytes);

	do {
		if ((unsigned long)total + bytes > max)
			return false;
	} while (!atomic_long_try_cmpxchg(&memlog_bytes, &total,
					  total + bytes));
	if (!atomic_long_fetch_add(bytes, &user->bytes))
		atomic_inc(&memlog_nr_active);
	return true;
}

static void memlog_uncharge(struct memlog_user *user, long bytes)
{
	if (!bytes)
		return;
	atomic_long_sub(bytes, &memlog_bytes);
	if (!atomic_long_sub_return(bytes, &user->bytes))
		atomic_dec(&memlog_nr_active);
}

/* max_bytes split evenly between the users holding any and @user */
static unsigned long memlog_share(struct memlog_user *user)
{
	int active = atomic_read(&memlog_nr_active);

	if (!atomic_long_read(&user->bytes))
		active++;
	return READ_ONCE(memlog_max_bytes) / max(active, 1);
}

/* Whether @user would stay within its share holding @bytes more */
static bool memlog_within_share(struct memlog_user *user, long bytes)
{
	return atomic_long_read(&user->bytes) + bytes <= memlog_share(user);
}

/* The user holding the most, under memlog_reclaim_lock */
static struct memlog_user *memlog_user_biggest(void)
{
	struct memlog_user *user, *biggest = NULL;
	long most = 0;
	unsigned long owner;

	xa_for_each(&memlog_users, owner, user) {
		long bytes = atomic_long_read(&user->bytes);

		if (bytes > most) {
			most = bytes;
			biggest = user;
		}
	}
	return biggest;
}

/*
 * Move the records of @ring to @buf of @size bytes (NULL and 0: none, as
 * CLEAR does), the oldest dropped as needed (counted as evictions if
 * @evict); @ring->move_lock held. Nothing is copied under a spinlock: the
 * ring's writers wait meanwhile, its readers read on, and the records keep
 * their logical offsets (readers' positions stay valid). The @freed bytes
 * the ring gives back are uncharged in the step that switches buffers:
 * a writer let go never sees the new size beside the old charge (a false
 * ENOSPC for a first buffer right after a CLEAR).
 * Return: the old buffer, for the caller to free.
 */
static void *memlog_ring_move(struct memlog_ring *ring, void *buf, u32 size,
			      bool evict, u32 freed)
{
	u32 span, done, len;
	bool fits;
	void *old;

	lockdep_assert_held(&ring->move_lock);

	do {
		spin_lock(&ring->lock);
		WRITE_ONCE(ring->moving, true);
		fits = memlog_ring_trim(ring, size, MEMLOG_BATCH, evict);
		span = memlog_ring_span(ring);
		spin_unlock(&ring->lock);
		cond_resched();
	} while (!fits);

	for (done = 0; done < span; done += len) {
		len = min_t(u32, span - done, MEMLOG_COPY_CHUNK);
		memlog_ring_copy(ring, buf, done, len);
		cond_resched();
	}

	spin_lock(&ring->lock);
	old = memlog_ring_switch(ring, buf, size);
	/* Before the (slow) free of the old buffer: the room is free already */
	memlog_uncharge(ring->user, freed);
	WRITE_ONCE(ring->moving, false);
	spin_unlock(&ring->lock);
	/* Orders the store before wake_up_var()'s look at the queue */
	smp_mb();
	wake_up_var(&ring->moving);
	return old;
}

/*
 * Halve the largest ring of @user (free it if at its first size), its
 * oldest records evicted. Return: 0 (halved, or it changed meanwhile: look
 * again), -ENOSPC (no ring holds a buffer), -ENOMEM, -EINTR.
 */
static int memlog_user_shrink(struct memlog_user *user)
{
	struct memlog_ring *ring, *largest = NULL;
	u32 size = 0, target;
	void *buf = NULL, *old;

	mutex_lock(&memlog_create_lock);
	list_for_each_entry(ring, &user->rings, user_node) {
		u32 ring_size = READ_ONCE(ring->size);

		if (ring_size > size) {
			size = ring_size;
			largest = ring;
		}
	}
	mutex_unlock(&memlog_create_lock);
	if (!largest)
		return -ENOSPC;

	/* Sizes stay multiples of 8 (a cap's half may not be) */
	target = ALIGN_DOWN(size / 2, MEMLOG_RECORD_ALIGN);
	if (target < MEMLOG_RING_FIRST_BUF)
		target = 0;
	if (target) {
		buf = kvmalloc(target, MEMLOG_GFP);
		if (!buf)
			return -ENOMEM;
	}
	if (mutex_lock_killable(&largest->move_lock)) {
		kvfree(buf);
		return -EINTR;
	}
	if (largest->size == size)
		old = memlog_ring_move(largest, buf, target, true,
				       size - target);
	else
		old = buf;
	mutex_unlock(&largest->move_lock);
	kvfree(old);
	return 0;
}

/*
 * Charge @bytes to @user (see "Fair share"): when max_bytes is used up,
 * take the room from the user holding the most, while @user stays within
 * its share and that user holds more than its own. The @first buffer of a
 * ring of a user past its share comes from the user's own largest ring.
 * Called under memlog_resize_sem (read). Return: 0, -ENOSPC, -ENOMEM,
 * -EINTR.
 */
static int memlog_charge_fair(struct memlog_user *user, long bytes,
			      bool first)
{
	int ret = 0;

	if (memlog_charge(user, bytes))
		return 0;
	if (mutex_lock_killable(&memlog_reclaim_lock))
		return -EINTR;
	while (!memlog_charge(user, bytes)) {
		struct memlog_user *victim;

		if (memlog_within_share(user, bytes)) {
			victim = memlog_user_biggest();
			if (!victim || victim == user ||
			    atomic_long_read(&victim->bytes) <=
			    memlog_share(user)) {
				ret = -ENOSPC;
				break;
			}
		} else if (first) {
			victim = user;
		} else {
			ret = -ENOSPC;
			break;
		}
		ret = memlog_user_shrink(victim);
		if (ret)
			break;
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		cond_resched();
	}
	mutex_unlock(&memlog_reclaim_lock);
	return ret;
}

/* The rings a user may hold: as many first buffers as max_bytes holds */
static u32 memlog_user_rings_max(void)
{
	return READ_ONCE(memlog_max_bytes) / MEMLOG_RING_FIRST_BUF;
}

static struct memlog_ring *memlog_ring_lookup(kuid_t uid)
{
	return xa_load(&memlog_rings, __kuid_val(uid));
}

static struct memlog_ring *memlog_ring_by_id(u32 id)
{
	return xa_load(&memlog_ring_ids, id);
}

static void memlog_ring_free(struct memlog_ring *ring)
{
	memlog_ring_trim(ring, 0, U32_MAX, false);
	kvfree(ring->buf);
	kfree(ring);
}

/* Insert @ring for its uid, or return the ring another writer inserted */
static struct memlog_ring *memlog_ring_insert(struct memlog_ring *ring)
{
	struct memlog_ring *found;
	u32 id;
	int ret;

	if (mutex_lock_killable(&memlog_create_lock))
		return ERR_PTR(-EINTR);
	found = memlog_ring_lookup(ring->uid);
	if (found)
		goto out;
	if (ring->user->nr_rings >= memlog_user_rings_max()) {
		found = ERR_PTR(-ENOSPC);
		goto out;
	}
	id = memlog_nr_rings;
	ring->id = id;
	/* The uid's slot, reserved: lookups see nothing there yet */
	ret = xa_reserve(&memlog_rings, __kuid_val(ring->uid),
			 GFP_KERNEL_ACCOUNT);
	if (ret) {
		found = ERR_PTR(ret);
		goto out;
	}
	ret = xa_insert(&memlog_ring_ids, id, ring, GFP_KERNEL_ACCOUNT);
	if (ret) {
		xa_release(&memlog_rings, __kuid_val(ring->uid));
		found = ERR_PTR(ret);
		goto out;
	}
	list_add_tail(&ring->user_node, &ring->user->rings);
	WRITE_ONCE(ring->user->nr_rings, ring->user->nr_rings + 1);
	spin_lock(&memlog_seq_lock);
	list_add(&ring->active, &memlog_active);
	/* Publishes the ring for readers that load memlog_nr_rings first */
	smp_store_release(&memlog_nr_rings, id + 1);
	spin_unlock(&memlog_seq_lock);
	/*
	 * Findable by writers only now that it is counted and on memlog_active:
	 * a write moves its ring on that list, and an all-uid reader sizes its
	 * cursors by memlog_nr_rings. The reserved slot needs no allocation.
	 */
	xa_store(&memlog_rings, __kuid_val(ring->uid), ring, GFP_KERNEL_ACCOUNT);
	found = ring;
out:
	mutex_unlock(&memlog_create_lock);
	return found;
}

/*
 * A new ring for @uid, charged to @owner, its first buffer large enough
 * for a @rec record
 */
static struct memlog_ring *memlog_ring_create(kuid_t uid, kuid_t owner,
					      u32 rec)
{
	struct memlog_ring *ring, *found;
	struct memlog_user *user;
	u32 size;
	int ret;

	user = memlog_user_get(owner);
	if (IS_ERR(user))
		return ERR_CAST(user);
	/* Checked again on insertion; here so as not to evict for nothing */
	if (READ_ONCE(user->nr_rings) >= memlog_user_rings_max())
		return ERR_PTR(-ENOSPC);
	ring = kzalloc_obj(*ring, GFP_KERNEL_ACCOUNT);
	if (!ring)
		return ERR_PTR(-ENOMEM);
	spin_lock_init(&ring->lock);
	mutex_init(&ring->move_lock);
	INIT_LIST_HEAD(&ring->active);
	INIT_LIST_HEAD(&ring->user_node);
	ring->uid = uid;
	ring->user = user;

	if (down_read_killable(&memlog_resize_sem)) {
		kfree(ring);
		return ERR_PTR(-EINTR);
	}
	size = memlog_first_size(rec);
	ret = memlog_charge_fair(user, size, true);
	if (ret) {
		found = ERR_PTR(ret);
		goto err_free;
	}
	ring->buf = kvmalloc(size, MEMLOG_GFP);
	if (!ring->buf) {
		memlog_uncharge(user, size);
		found = ERR_PTR(-ENOMEM);
		goto err_free;
	}
	ring->size = size;
	found = memlog_ring_insert(ring);
	up_read(&memlog_resize_sem);
	if (found != ring) {
		memlog_uncharge(user, size);
		memlog_ring_free(ring);
	}
	return found;

err_free:
	up_read(&memlog_resize_sem);
	kfree(ring);
	return found;
}

/*
 * Grow @ring, seen with @size bytes of buffer and its records spanning
 * @span, so that a @rec record fits. Return: 0 (grown, or changed
 * meanwhile: look again), -ENOSPC (max_bytes or the ring size stand in the
 * way), -ENOMEM, -EINTR.
 */
static int memlog_ring_grow(struct memlog_ring *ring, u32 size, u32 span,
			    u32 rec)
{
	void *buf, *old;
	u32 target;
	int ret = 0;

	if (down_read_killable(&memlog_resize_sem))
		return -EINTR;
	if (size) {
		target = size * 2;
		while (target < span + 2 * rec)
			target *= 2;
	} else {
		/* A cleared or reclaimed ring starts again as a new one does */
		target = memlog_first_size(rec);
	}
	target = min(target, memlog_cap());
	if (target <= size) {
		ret = -ENOSPC;
		goto out;
	}
	ret = memlog_charge_fair(ring->user, target - size, !size);
	if (ret)
		goto out;
	buf = kvmalloc(target, MEMLOG_GFP);
	if (!buf) {
		memlog_uncharge(ring->user, target - size);
		ret = -ENOMEM;
		goto out;
	}
	if (mutex_lock_killable(&ring->move_lock)) {
		kvfree(buf);
		memlog_uncharge(ring->user, target - size);
		ret = -EINTR;
		goto out;
	}
	if (ring->size == size) {
		old = memlog_ring_move(ring, buf, target, true, 0);
	} else {
		old = buf;
		memlog_uncharge(ring->user, target - size);
	}
	mutex_unlock(&ring->move_lock);
	/* The grown ring's charge covers what the old buffer held */
	kvfree(old);
out:
	up_read(&memlog_resize_sem);
	return ret;
}

/* Whether growing @ring by at least double could be allowed at all */
static bool memlog_may_grow(const struct memlog_ring *ring)
{
	long more = max(ring->size, MEMLOG_RING_FIRST_BUF);

	if (ring->size >= memlog_cap())
		return false;
	/* A first buffer is always tried: memlog_charge_fair() decides */
	if (!ring->size)
		return true;
	if ((unsigned long)atomic_long_read(&memlog_bytes) + more <=
	    READ_ONCE(memlog_max_bytes))
		return true;
	/* Room may be taken from a user holding more than its share */
	return memlog_within_share(ring->user, more);
}

/*
 * Store the record @hdr with @blob in the ring of @mf's uid; sets hdr->seq.
 * The record takes over the reference to @pid, unless this fails. While
 * another task moves the ring to a new buffer, wait for it, or (@nowait:
 * O_NONBLOCK) fail with -EAGAIN.
 */
static int memlog_store(struct memlog_file *mf,
			struct memlog_record_header *hdr, const void *blob,
			struct pid *pid, bool nowait)
{
	u32 rec = memlog_record_size(hdr->length);
	struct memlog_ring *ring;
	int grow_err = 0;
	u64 start;
	void *dst;
	int ret;

	/* Rings live as long as the module: the fd keeps the one it found */
	ring = READ_ONCE(mf->ring);
	if (!ring) {
		ring = memlog_ring_lookup(mf->uid);
		if (!ring)
			ring = memlog_ring_create(mf->uid, mf->owner, rec);
		if (IS_ERR(ring))
			return PTR_ERR(ring);
		WRITE_ONCE(mf->ring, ring);
	}

	for (;;) {
		u32 size, span;
		bool grow;

		spin_lock(&ring->lock);
		if (unlikely(ring->moving)) {
			spin_unlock(&ring->lock);
			if (nowait)
				return -EAGAIN;
			if (wait_var_event_killable(&ring->moving,
						    !READ_ONCE(ring->moving)))
				return -EINTR;
			continue;
		}
		if (rec > memlog_cap()) {
			spin_unlock(&ring->lock);
			return -EMSGSIZE;
		}
		/* Evict this ring's own oldest records only if it cannot grow */
		grow = !grow_err && memlog_may_grow(ring);
		dst = memlog_ring_place(ring, hdr->length, !grow, &start);
		if (dst)
			break;
		if (!grow) {
			spin_unlock(&ring->lock);
			return grow_err ?: -ENOSPC;
		}
		size = ring->size;
		span = memlog_ring_span(ring);
		spin_unlock(&ring->lock);
		ret = memlog_ring_grow(ring, size, span, rec);
		if (ret == -EINTR)
			return ret;
		grow_err = ret;
	}

	memcpy(dst, blob, hdr->length);
	spin_lock(&memlog_seq_lock);
	hdr->seq = ++memlog_seq;
	/* Read without the lock by memlog_all_sync()'s long walk */
	WRITE_ONCE(ring->last_seq, hdr->seq);
	/* Moving touches two other rings' list nodes: not when already last */
	if (!list_is_last(&ring->active, &memlog_active))
		list_move_tail(&ring->active, &memlog_active);
	memlog_ring_publish(ring, start, hdr, pid);
	spin_unlock(&memlog_seq_lock);
	spin_unlock(&ring->lock);
	return 0;
}

/* Wake the readers that can see a new record of @uid, if any wait */
static void memlog_wake(kuid_t uid)
{
	wait_queue_head_t *wq = memlog_wait_of(uid);

	/* One barrier for both queues, as in wq_has_sleeper(); pairs with poll */
	smp_mb();
	/* waitqueue_active() is safe after the barrier above */
	if (waitqueue_active(wq))
		wake_up_interruptible_poll(wq, EPOLLIN | EPOLLRDNORM);
	/* waitqueue_active() is safe after the barrier above */
	if (waitqueue_active(&memlog_all_wait))
		wake_up_interruptible_poll(&memlog_all_wait,
					   EPOLLIN | EPOLLRDNORM);
}

/* Stamp and store @count bytes at @blob, written through @mf */
static ssize_t memlog_commit(struct memlog_file *mf, const void *blob,
			     size_t count, bool nowait)
{
	struct memlog_record_header hdr = {
		.magic = MEMLOG_MAGIC,
		.schema_version = MEMLOG_SCHEMA_VERSION,
		.length = count,
		.uid = __kuid_val(mf->uid),
		.ts_ns = ktime_get_real_ns(),
	};
	struct pid *pid = get_task_pid(current, PIDTYPE_TGID);
	unsigned int seq;
	int ret;

	do {
		seq = read_seqbegin(&mf->session_lock);
		memcpy(hdr.session_id, mf->session_id, sizeof(hdr.session_id));
	} while (read_seqretry(&mf->session_lock, seq));

	/* For the tracepoint: the ring keeps the struct pid, not this */
	hdr.pid = pid_nr(pid);
	ret = memlog_store(mf, &hdr, blob, pid, nowait);
	if (ret) {
		put_pid(pid);
		return ret;
	}
	trace_record_written(hdr.seq, hdr.uid, hdr.pid, hdr.length);
	memlog_wake(mf->uid);
	return count;
}

/*
 * Check a write of @count bytes and choose where its blob is copied in:
 * @stack when it fits, else a buffer of its size, freed when the write
 * returns (an idle fd holds none).
 */
static int memlog_blob_get(size_t count, u8 *stack, void **blob)
{
	if (count > MEMLOG_RECORD_MAX ||
	    memlog_record_size(count) > memlog_cap())
		return -EMSGSIZE;
	if (count <= MEMLOG_STACK_BLOB) {
		*blob = stack;
		return 0;
	}
	*blob = kvmalloc(count, MEMLOG_GFP);
	return *blob ? 0 : -ENOMEM;
}

static void memlog_blob_put(void *blob, u8 *stack)
{
	if (blob != stack)
		kvfree(blob);
}

/*
 * One record of @count bytes, from @from, or from @buf if @from is NULL.
 * Every write path copies the blob in once, under no lock, before anything
 * is stored: a fault stores nothing and delays no one else. @nowait: the
 * file is O_NONBLOCK (or the call RWF_NOWAIT).
 */
static ssize_t memlog_write_one(struct memlog_file *mf, size_t count,
				const char __user *buf, struct iov_iter *from,
				bool nowait)
{
	u8 stack[MEMLOG_STACK_BLOB];
	bool copied;
	void *blob;
	ssize_t ret;

	if (!count)
		return 0;
	ret = memlog_blob_get(count, stack, &blob);
	if (ret)
		return ret;
	if (from)
		copied = copy_from_iter_full(blob, count, from);
	else
		copied = !copy_from_user(blob, buf, count);
	ret = copied ? memlog_commit(mf, blob, count, nowait) : -EFAULT;
	memlog_blob_put(blob, stack);
	return ret;
}

/* write(2) comes here without an iov_iter: the cheapest path */
static ssize_t memlog_write(struct file *file, const char __user *buf,
			    size_t count, loff_t *ppos)
{
	return memlog_write_one(file->private_data, count, buf, NULL,
				file->f_flags & O_NONBLOCK);
}

/* writev, pwritev2, io_uring: the iovecs are one record, all or nothing */
static ssize_t memlog_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	return memlog_write_one(iocb->ki_filp->private_data,
				iov_iter_count(from), NULL, from,
				(iocb->ki_filp->f_flags & O_NONBLOCK) ||
				(iocb->ki_flags & IOCB_NOWAIT));
}

/* Put @cur at the oldest record of @ring, or at its start if @ring is NULL */
static void memlog_cursor_start(struct memlog_cursor *cur,
				struct memlog_ring *ring)
{
	*cur = (struct memlog_cursor){ .ring = ring };
	if (!ring)
		return;
	spin_lock(&ring->lock);
	cur->pos = ring->tail;
	cur->ord = ring->tail_ord;
	spin_unlock(&ring->lock);
}

/* Records of @ring lost to a reader whose next record is ordinal @ord */
static u64 memlog_lost_since(const struct memlog_ring *ring, u64 ord)
{
	return ord < ring->tail_ord ? ring->tail_ord - ord : 0;
}

/* Bring @cur up to date with @ring (locked): count what was lost */
static void memlog_cursor_sync(struct memlog_file *mf,
			       struct memlog_cursor *cur,
			       const struct memlog_ring *ring)
{
	lockdep_assert_held(&ring->lock);

	if (cur->ord <= ring->tail_ord) {
		/* At or before the oldest record: read on from there */
		mf->lost += memlog_lost_since(ring, cur->ord);
		cur->ord = ring->tail_ord;
		cur->pos = ring->tail;
	}
	/* Else @cur->pos is still where record @cur->ord lies */
}

/*
 * Copy the record @hdr at @pos of @ring (locked, unlocked on return) to
 * the user through @out, which has room for it, then move @cur past it.
 */
static ssize_t memlog_copy_out(struct memlog_file *mf,
			       struct memlog_cursor *cur,
			       struct memlog_ring *ring,
			       const struct memlog_record_header *hdr, u64 pos,
			       struct memlog_record_header *out,
			       struct iov_iter *to)
{
	size_t len = MEMLOG_HDR_SIZE + hdr->length;

	memcpy(out, hdr, len);
	/* The record's pid reference is the ring's: read it under its lock */
	out->pid = pid_nr_ns(memlog_hdr_pid(hdr), mf->pid_ns);
	spin_unlock(&ring->lock);

	out->uid = from_kuid_munged(mf->user_ns, ring->uid);
	if (copy_to_iter(out, len, to) != len)
		return -EFAULT;
	cur->pos = pos + memlog_record_size(out->length);
	cur->ord++;
	return len;
}

/* The all-uid view's heap of ring ids, least key first */
static bool memlog_heap_less(const struct memlog_file *mf, u32 a, u32 b)
{
	return mf->curs[mf->heap[a]].key < mf->curs[mf->heap[b]].key;
}

static void memlog_heap_swap(struct memlog_file *mf, u32 a, u32 b)
{
	swap(mf->heap[a], mf->heap[b]);
}

static void memlog_heap_down(struct memlog_file *mf, u32 i)
{
	for (;;) {
		u32 least = i, l = 2 * i + 1, r = 2 * i + 2;

		if (l < mf->nheap && memlog_heap_less(mf, l, least))
			least = l;
		if (r < mf->nheap && memlog_heap_less(mf, r, least))
			least = r;
		if (least == i)
			return;
		memlog_heap_swap(mf, i, least);
		i = least;
	}
}

static void memlog_heap_push(struct memlog_file *mf, u32 id)
{
	u32 i = mf->nheap++;

	mf->heap[i] = id;
	mf->curs[id].in_heap = true;
	while (i && memlog_heap_less(mf, i, (i - 1) / 2)) {
		memlog_heap_swap(mf, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void memlog_heap_pop(struct memlog_file *mf)
{
	mf->curs[mf->heap[0]].in_heap = false;
	mf->heap[0] = mf->heap[--mf->nheap];
	memlog_heap_down(mf, 0);
}

/* Room for @n rings in the all-uid view's arrays */
static int memlog_curs_reserve(struct memlog_file *mf, u32 n)
{
	struct memlog_cursor *curs;
	u32 *heap, *pending;
	u32 size;

	if (n <= mf->ncurs)
		return 0;
	size = max3(n, 2 * mf->ncurs, 16U);
	curs = kvcalloc(size, sizeof(*curs), MEMLOG_GFP);
	heap = kvcalloc(size, sizeof(*heap), MEMLOG_GFP);
	pending = kvcalloc(size, sizeof(*pending), MEMLOG_GFP);
	if (!curs || !heap || !pending) {
		kvfree(curs);
		kvfree(heap);
		kvfree(pending);
		return -ENOMEM;
	}
	if (mf->ncurs) {
		memcpy(curs, mf->curs, mf->ncurs * sizeof(*curs));
		memcpy(heap, mf->heap, mf->nheap * sizeof(*heap));
	}
	kvfree(mf->curs);
	kvfree(mf->heap);
	kvfree(mf->pending);
	mf->curs = curs;
	mf->heap = heap;
	mf->pending = pending;
	mf->ncurs = size;
	return 0;
}

/* Set @cur's key from @ring (locked); false if it has nothing to return */
static bool memlog_cursor_key(struct memlog_file *mf,
			      struct memlog_cursor *cur,
			      const struct memlog_ring *ring)
{
	const struct memlog_record_header *hdr;
	u64 pos;

	memlog_cursor_sync(mf, cur, ring);
	pos = cur->pos;
	hdr = memlog_ring_peek(ring, &pos);
	if (!hdr || hdr->seq > mf->synced)
		return false;
	cur->key = hdr->seq;
	return true;
}

/* Let the all-uid view return every record written so far */
static int memlog_all_sync(struct memlog_file *mf)
{
	u32 npending = 0, walked = 0, nr, i;
	struct memlog_ring *ring;
	u64 seq;
	int ret;

	for (;;) {
		/* Pairs with the release in memlog_ring_insert() */
		nr = smp_load_acquire(&memlog_nr_rings);
		ret = memlog_curs_reserve(mf, nr);
		if (ret)
			return ret;
		spin_lock(&memlog_seq_lock);
		if (memlog_nr_rings <= mf->ncurs)
			break;
		spin_unlock(&memlog_seq_lock);
	}
	seq = memlog_seq;
	nr = memlog_nr_rings;
	/* The rings written since the last sync, newest first */
	list_for_each_entry_reverse(ring, &memlog_active, active) {
		if (ring->last_seq <= mf->synced)
			break;
		if (++walked > MEMLOG_BATCH)
			break;
		if (!mf->curs[ring->id].in_heap)
			mf->pending[npending++] = ring->id;
	}
	spin_unlock(&memlog_seq_lock);

	if (walked > MEMLOG_BATCH) {
		/*
		 * Too many for one lock hold: look at every ring unlocked. A
		 * ring with a record up to @seq has a last_seq at least that
		 * record's, stored before @seq was read under the lock.
		 */
		npending = 0;
		for (i = 0; i < nr; i++) {
			ring = memlog_ring_by_id(i);
			if (READ_ONCE(ring->last_seq) > mf->synced &&
			    !mf->curs[i].in_heap)
				mf->pending[npending++] = i;
			if (!(i % MEMLOG_BATCH))
				cond_resched();
		}
	}
	mf->synced = seq;

	for (i = 0; i < npending; i++) {
		struct memlog_cursor *cur = &mf->curs[mf->pending[i]];
		bool found;

		ring = memlog_ring_by_id(mf->pending[i]);
		cur->ring = ring;
		spin_lock(&ring->lock);
		found = memlog_cursor_key(mf, cur, ring);
		spin_unlock(&ring->lock);
		if (found)
			memlog_heap_push(mf, ring->id);
		cond_resched();
	}
	return 0;
}

/*
 * The cursor of the all-uid view's next record, its ring locked; NULL if
 * there is none (or *err was set).
 */
static struct memlog_cursor *memlog_all_next(struct memlog_file *mf, int *err)
{
	struct memlog_cursor *cur;
	struct memlog_ring *ring;
	u64 key;

	for (;;) {
		if (!mf->nheap) {
			if (READ_ONCE(memlog_seq) <= mf->synced)
				return NULL;
			*err = memlog_all_sync(mf);
			if (*err || !mf->nheap)
				return NULL;
		}
		cur = &mf->curs[mf->heap[0]];
		ring = cur->ring;
		key = cur->key;
		spin_lock(&ring->lock);
		if (!memlog_cursor_key(mf, cur, ring)) {
			spin_unlock(&ring->lock);
			memlog_heap_pop(mf);
			continue;
		}
		if (cur->key != key) {
			/* Keys only grow: this ring may no longer be first */
			spin_unlock(&ring->lock);
			memlog_heap_down(mf, 0);
			continue;
		}
		return cur;
	}
}

/* The cursor of the one-uid view's next record, its ring locked; or NULL */
static struct memlog_cursor *memlog_one_next(struct memlog_file *mf)
{
	struct memlog_cursor *cur = &mf->one;
	struct memlog_ring *ring;
	u64 pos;

	if (!cur->ring) {
		cur->ring = memlog_ring_lookup(mf->view);
		if (!cur->ring)
			return NULL;
	}
	ring = cur->ring;
	spin_lock(&ring->lock);
	memlog_cursor_sync(mf, cur, ring);
	pos = cur->pos;
	if (!memlog_ring_peek(ring, &pos)) {
		spin_unlock(&ring->lock);
		return NULL;
	}
	return cur;
}

/* The fd's next record, its ring locked; NULL if none. mf->lock held. */
static struct memlog_cursor *memlog_next(struct memlog_file *mf, int *err)
{
	*err = 0;
	return mf->view_all ? memlog_all_next(mf, err) : memlog_one_next(mf);
}

/*
 * A record is copied out of its ring into @stack when it fits, else into a
 * buffer of its size allocated with the ring unlocked (then the fd's next
 * record is looked up again) and freed before returning: an idle fd holds
 * no buffer.
 */
static ssize_t memlog_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct memlog_file *mf = iocb->ki_filp->private_data;
	u64 stack[MEMLOG_STACK_RECORD / sizeof(u64)];
	const struct memlog_record_header *hdr;
	struct memlog_cursor *cur;
	size_t len, room = sizeof(stack);
	void *buf = stack;
	ssize_t ret;
	int err;
	u64 pos;

	if (mutex_lock_killable(&mf->lock))
		return -EINTR;
	for (;;) {
		cur = memlog_next(mf, &err);
		if (!cur) {
			ret = err;
			break;
		}
		pos = cur->pos;
		hdr = memlog_ring_peek(cur->ring, &pos);
		len = MEMLOG_HDR_SIZE + hdr->length;
		if (iov_iter_count(to) < len) {
			spin_unlock(&cur->ring->lock);
			ret = -EINVAL;
			break;
		}
		if (len <= room) {
			ret = memlog_copy_out(mf, cur, cur->ring, hdr, pos, buf,
					      to);
			break;
		}
		spin_unlock(&cur->ring->lock);
		if (buf != stack)
			kvfree(buf);
		buf = kvmalloc(len, MEMLOG_GFP);
		if (!buf) {
			ret = -ENOMEM;
			break;
		}
		room = len;
	}
	if (buf != stack)
		kvfree(buf);
	memlog_file_unlock(mf);
	return ret;
}

/*
 * Make the view every uid (@all) or @view, read from its start; on failure
 * (-ENOMEM) the fd's view and place are unchanged. mf->lock held or fd not
 * shared.
 */
static int memlog_view_set(struct memlog_file *mf, bool all, kuid_t view)
{
	u32 nr = 0, id;
	int ret;

	if (all) {
		/* Pairs with the release in memlog_ring_insert() */
		nr = smp_load_acquire(&memlog_nr_rings);
		ret = memlog_curs_reserve(mf, nr);
		if (ret)
			return ret;
	}
	WRITE_ONCE(mf->view_all, all);
	WRITE_ONCE(mf->view, view);
	mf->lost = 0;
	mf->synced = 0;
	mf->nheap = 0;
	if (!all) {
		memlog_cursor_start(&mf->one, memlog_ring_lookup(view));
		return 0;
	}
	for (id = 0; id < mf->ncurs; id++) {
		struct memlog_ring *ring = id < nr ? memlog_ring_by_id(id) :
						     NULL;

		memlog_cursor_start(&mf->curs[id], ring);
		cond_resched();
	}
	return 0;
}

/* Read from the start of the view again */
static int memlog_rewind(struct memlog_file *mf)
{
	return memlog_view_set(mf, mf->view_all, mf->view);
}

static int memlog_open(struct inode *inode, struct file *file)
{
	struct memlog_file *mf;

	mf = kzalloc_obj(*mf, GFP_KERNEL_ACCOUNT);
	if (!mf)
		return -ENOMEM;
	mutex_init(&mf->lock);
	seqlock_init(&mf->session_lock);
	init_waitqueue_head(&mf->wait);
	init_waitqueue_func_entry(&mf->relay, memlog_relay_wake);
	spin_lock_init(&mf->relay_lock);
	mf->uid = file->f_cred->euid;
	mf->owner = memlog_owner_of(file->f_cred);
	mf->user_ns = file->f_cred->user_ns;
	mf->pid_ns = get_pid_ns(task_active_pid_ns(current));
	memlog_view_set(mf, false, mf->uid);
	file->private_data = mf;
	/* Records are read in order, never at an offset */
	file->f_mode &= ~(FMODE_PREAD | FMODE_PWRITE);
	return 0;
}

static int memlog_release(struct inode *inode, struct file *file)
{
	struct memlog_file *mf = file->private_data;

	if (mf->relay_on)
		remove_wait_queue(mf->relay_on, &mf->relay);
	kvfree(mf->curs);
	kvfree(mf->heap);
	kvfree(mf->pending);
	put_pid_ns(mf->pid_ns);
	kfree(mf);
	return 0;
}

/* Whether a read would return a record, if the fd is free: false if not */
static bool memlog_poll_look(struct memlog_file *mf, bool *readable)
{
	struct memlog_cursor *cur;
	int err;

	if (!mutex_trylock(&mf->lock))
		return false;
	cur = memlog_next(mf, &err);
	if (cur)
		spin_unlock(&cur->ring->lock);
	*readable = cur || err;
	memlog_file_unlock(mf);
	return true;
}

static __poll_t memlog_poll(struct file *file, poll_table *wait)
{
	struct memlog_file *mf = file->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;
	bool readable = false;

	/* One queue for the fd's life: epoll registers once, views change */
	poll_wait(file, &mf->wait, wait);
	memlog_relay_move(mf, true);
	/* Pairs with the barrier in memlog_wake() */
	smp_mb();

	if (!memlog_poll_look(mf, &readable)) {
		/* Busy: its holder wakes us when it lets go, and we look again */
		set_bit(0, &mf->poll_busy);
		/* Before the trylock: either the holder sees the bit or we see it gone */
		smp_mb__after_atomic();
		memlog_poll_look(mf, &readable);
	}
	if (readable)
		mask |= EPOLLIN | EPOLLRDNORM;
	return mask;
}

/* Only lseek(fd, 0, SEEK_SET), which rewinds, is supported */
static loff_t memlog_llseek(struct file *file, loff_t offset, int whence)
{
	struct memlog_file *mf = file->private_data;
	int ret;

	if (whence != SEEK_SET || offset)
		return -ESPIPE;
	if (mutex_lock_killable(&mf->lock))
		return -EINTR;
	ret = memlog_rewind(mf);
	memlog_file_unlock(mf);
	return ret;
}

static int memlog_ioctl_stats(struct memlog_file *mf,
			      struct memlog_stats __user *arg)
{
	unsigned long max_bytes = READ_ONCE(memlog_max_bytes);
	struct memlog_stats st = { };
	struct memlog_ring *ring;
	unsigned long id;

	if (READ_ONCE(mf->view_all)) {
		st.ring_capacity = min_t(unsigned long, max_bytes, U32_MAX);
		xa_for_each(&memlog_ring_ids, id, ring) {
			spin_lock(&ring->lock);
			memlog_ring_stats_add(ring, &st);
			spin_unlock(&ring->lock);
			cond_resched();
		}
	} else {
		st.ring_capacity = min_t(unsigned long, memlog_cap(),
					 max_bytes);
		ring = memlog_ring_lookup(READ_ONCE(mf->view));
		if (ring) {
			spin_lock(&ring->lock);
			memlog_ring_stats_add(ring, &st);
			spin_unlock(&ring->lock);
		}
	}
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* CLEAR one ring: its records dropped a batch per lock hold, then its buffer */
static void memlog_ring_empty(struct memlog_ring *ring)
{
	void *old;

	mutex_lock(&ring->move_lock);
	/*
	 * Its writers wait meanwhile, so that CLEAR ends; its uid's next write
	 * finds the room it freed
	 */
	old = memlog_ring_move(ring, NULL, 0, false, ring->size);
	mutex_unlock(&ring->move_lock);
	kvfree(old);
}

static int memlog_ioctl_clear(struct memlog_file *mf)
{
	struct memlog_ring *ring;
	unsigned long id;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	if (READ_ONCE(mf->view_all)) {
		xa_for_each(&memlog_ring_ids, id, ring) {
			memlog_ring_empty(ring);
			cond_resched();
		}
	} else {
		ring = memlog_ring_lookup(READ_ONCE(mf->view));
		if (ring)
			memlog_ring_empty(ring);
	}
	return 0;
}

/* Resize every ring; all or nothing. Growing rings grow with use. */
static int memlog_resize(u32 capacity)
{
	u32 usable = memlog_ring_usable(capacity);
	struct memlog_ring *ring;
	void **bufs = NULL;
	u32 nr = 0, id;
	int ret = 0;

	if (capacity < MEMLOG_RING_SIZE_MIN || capacity > MEMLOG_RING_SIZE_MAX)
		return -EINVAL;
	if (down_write_killable(&memlog_resize_sem))
		return -EINTR;
	if (capacity >= memlog_ring_size)
		goto done;

	/* Shrinking: every new buffer first, outside the ring locks */
	/* Pairs with the release in memlog_ring_insert() */
	nr = smp_load_acquire(&memlog_nr_rings);
	bufs = kvcalloc(max(nr, 1U), sizeof(*bufs), GFP_KERNEL);
	if (!bufs) {
		ret = -ENOMEM;
		goto out;
	}
	for (id = 0; id < nr; id++) {
		ring = memlog_ring_by_id(id);
		if (READ_ONCE(ring->size) > usable) {
			bufs[id] = kvmalloc(usable, MEMLOG_GFP);
			if (!bufs[id]) {
				ret = -ENOMEM;
				goto out;
			}
		}
		cond_resched();
	}
	for (id = 0; id < nr; id++) {
		void *old = bufs[id];

		if (!old)
			continue;
		ring = memlog_ring_by_id(id);
		mutex_lock(&ring->move_lock);
		/* Sizes only shrink meanwhile (CLEAR): growth waits for us */
		if (ring->size > usable)
			old = memlog_ring_move(ring, bufs[id], usable, true,
					       ring->size - usable);
		mutex_unlock(&ring->move_lock);
		bufs[id] = NULL;
		kvfree(old);
		cond_resched();
	}
done:
	WRITE_ONCE(memlog_ring_size, capacity);
out:
	up_write(&memlog_resize_sem);
	if (bufs) {
		for (id = 0; id < nr; id++)
			kvfree(bufs[id]);
		kvfree(bufs);
	}
	return ret;
}

static int memlog_ioctl_set_ring_size(u32 __user *arg)
{
	u32 capacity;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (get_user(capacity, arg))
		return -EFAULT;
	return memlog_resize(capacity);
}

static int memlog_ioctl_filter_uid(struct memlog_file *mf, u32 __user *arg)
{
	kuid_t uid = INVALID_UID;
	bool all;
	int ret;
	u32 val;

	if (get_user(val, arg))
		return -EFAULT;
	all = val == MEMLOG_UID_ALL;
	if (!all) {
		uid = make_kuid(current_user_ns(), val);
		if (!uid_valid(uid))
			return -EINVAL;
	}
	if ((all || !uid_eq(uid, mf->uid)) && !capable(CAP_SYS_ADMIN))
		return -EPERM;

	if (mutex_lock_killable(&mf->lock))
		return -EINTR;
	ret = memlog_view_set(mf, all, all ? mf->uid : uid);
	if (!ret)
		memlog_relay_move(mf, false);
	memlog_file_unlock(mf);
	return ret;
}

static int memlog_ioctl_set_session(struct memlog_file *mf,
				    struct memlog_session __user *arg)
{
	struct memlog_session session;

	if (copy_from_user(&session, arg, sizeof(session)))
		return -EFAULT;
	write_seqlock(&mf->session_lock);
	memcpy(mf->session_id, session.id, sizeof(mf->session_id));
	write_sequnlock(&mf->session_lock);
	return 0;
}

/* The same, taking @ring's lock */
static u64 memlog_ring_lost(struct memlog_ring *ring, u64 ord)
{
	u64 lost;

	spin_lock(&ring->lock);
	lost = memlog_lost_since(ring, ord);
	spin_unlock(&ring->lock);
	return lost;
}

static int memlog_ioctl_get_lost(struct memlog_file *mf, u64 __user *arg)
{
	struct memlog_ring *ring;
	unsigned long id;
	u64 lost;

	if (mutex_lock_killable(&mf->lock))
		return -EINTR;
	lost = mf->lost;
	if (mf->view_all) {
		xa_for_each(&memlog_ring_ids, id, ring) {
			/* A ring past the cursors was made after the rewind */
			lost += memlog_ring_lost(ring, id < mf->ncurs ?
						 mf->curs[id].ord : 0);
			cond_resched();
		}
	} else {
		ring = mf->one.ring ?: memlog_ring_lookup(mf->view);
		if (ring)
			lost += memlog_ring_lost(ring, mf->one.ord);
	}
	memlog_file_unlock(mf);
	return put_user(lost, arg);
}

static long memlog_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	struct memlog_file *mf = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case MEMLOG_IOC_STATS:
		return memlog_ioctl_stats(mf, argp);
	case MEMLOG_IOC_CLEAR:
		return memlog_ioctl_clear(mf);
	case MEMLOG_IOC_SET_RING_SIZE:
		return memlog_ioctl_set_ring_size(argp);
	case MEMLOG_IOC_FILTER_UID:
		return memlog_ioctl_filter_uid(mf, argp);
	case MEMLOG_IOC_GET_VERSION:
		return put_user(MEMLOG_SCHEMA_VERSION, (u32 __user *)argp);
	case MEMLOG_IOC_SET_SESSION:
		return memlog_ioctl_set_session(mf, argp);
	case MEMLOG_IOC_GET_LOST:
		return memlog_ioctl_get_lost(mf, argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations memlog_fops = {
	.owner = THIS_MODULE,
	.open = memlog_open,
	.release = memlog_release,
	.read_iter = memlog_read_iter,
	.write = memlog_write,
	.write_iter = memlog_write_iter,
	.poll = memlog_poll,
	.llseek = memlog_llseek,
	.unlocked_ioctl = memlog_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice memlog_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = MEMLOG_DEVICE_NAME,
	.fops = &memlog_fops,
	/* No .mode: the node is 0600 root:root until the udev rule says otherwise */
};

/* kernel.memlog.ring_size: out of range -EINVAL, a failure changes nothing */
static int
memlog_sysctl_ring_size(MEMLOG_CTL_HANDLER_CONST struct ctl_table *table,
			int write, void *buffer, size_t *lenp, loff_t *ppos)
{
	unsigned int value;
	MEMLOG_CTL_HANDLER_CONST struct ctl_table tmp = {
		.data = &value,
		.maxlen = sizeof(value),
		.mode = table->mode,
	};
	int ret;

	if (write && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	/* The size a resize in progress sets, not the one it replaces */
	if (down_read_killable(&memlog_resize_sem))
		return -EINTR;
	value = memlog_ring_size;
	up_read(&memlog_resize_sem);
	ret = proc_douintvec(&tmp, write, buffer, lenp, ppos);
	/* A write that gave no number changes nothing (no stale value back) */
	if (ret || !write || !*lenp)
		return ret;
	return memlog_resize(value);
}

/* kernel.memlog.max_bytes: below MEMLOG_MAX_BYTES_MIN -EINVAL */
static int
memlog_sysctl_max_bytes(MEMLOG_CTL_HANDLER_CONST struct ctl_table *table,
			int write, void *buffer, size_t *lenp, loff_t *ppos)
{
	unsigned long value = READ_ONCE(memlog_max_bytes);
	MEMLOG_CTL_HANDLER_CONST struct ctl_table tmp = {
		.data = &value,
		.maxlen = sizeof(value),
		.mode = table->mode,
		.extra1 = &memlog_max_bytes_min,
		.extra2 = &memlog_max_bytes_max,
	};
	int ret;

	if (write && !capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = proc_doulongvec_minmax(&tmp, write, buffer, lenp, ppos);
	if (!ret && write)
		WRITE_ONCE(memlog_max_bytes, value);
	return ret;
}

static MEMLOG_CTL_TABLE_CONST struct ctl_table memlog_sysctl_table[] = {
	{
		.procname = "ring_size",
		.maxlen = sizeof(unsigned int),
		.mode = 0644,
		.proc_handler = memlog_sysctl_ring_size,
	},
	{
		.procname = "max_bytes",
		.maxlen = sizeof(unsigned long),
		.mode = 0644,
		.proc_handler = memlog_sysctl_max_bytes,
	},
	MEMLOG_CTL_TABLE_END
};

static void memlog_rings_free(void)
{
	struct memlog_user *user;
	struct memlog_ring *ring;
	unsigned long id;

	xa_for_each(&memlog_ring_ids, id, ring)
		memlog_ring_free(ring);
	xa_destroy(&memlog_ring_ids);
	xa_destroy(&memlog_rings);
	xa_for_each(&memlog_users, id, user)
		kfree(user);
	xa_destroy(&memlog_users);
}

static int __init memlog_init(void)
{
	int ret, i;

	for (i = 0; i < ARRAY_SIZE(memlog_waits); i++)
		init_waitqueue_head(&memlog_waits[i]);

	memlog_sysctl_header = register_sysctl("kernel/memlog",
					       memlog_sysctl_table);
	if (!memlog_sysctl_header)
		return -ENOMEM;

	ret = misc_register(&memlog_misc);
	if (ret) {
		unregister_sysctl_table(memlog_sysctl_header);
		return ret;
	}

	pr_info("driver version %s, ring size %u bytes per uid, %lu bytes in all\n",
		MEMLOG_DRIVER_VERSION, memlog_ring_size, memlog_max_bytes);
	return 0;
}

static void __exit memlog_exit(void)
{
	misc_deregister(&memlog_misc);
	unregister_sysctl_table(memlog_sysctl_header);
	memlog_rings_free();
}

module_init(memlog_init);
module_exit(memlog_exit);

MODULE_DESCRIPTION("memlog: per-uid in-memory record rings");
MODULE_LICENSE("GPL");
MODULE_VERSION(MEMLOG_DRIVER_VERSION);
