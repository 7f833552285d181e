// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: a character device keeping per-uid rings of opaque records
 *
 * Each uid that writes gets a ring of kernel.memlog.ring_size bytes; a write
 * stores one record, evicting that uid's oldest records if needed. A read
 * returns one record of the fd's view (the caller's own uid, another uid, or
 * every uid in seq order). Each fd keeps a cursor per ring it read from.
 *
 * One mutex serialises the ring registry, the rings and the cursors: that
 * keeps all-uid reads in seq order trivially, and copies to and from user
 * space may sleep.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysctl.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/uidgid.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <linux/memlog.h>

#include "memlog_compat.h"
#include "memlog_ring.h"
#include "memlog_trace.h"
/* MEMLOG_DRIVER_VERSION: kernel.yaml's memlog.version, written by the build */
#include "memlog_version.h"

static DEFINE_MUTEX(memlog_lock);
static DEFINE_XARRAY(memlog_rings);		/* uid -> struct memlog_ring */
static DECLARE_WAIT_QUEUE_HEAD(memlog_wait);
static u32 memlog_ring_size = MEMLOG_RING_SIZE_DEFAULT;
static u64 memlog_seq;
static void *memlog_staging;			/* MEMLOG_RECORD_MAX bytes */
static struct ctl_table_header *memlog_sysctl_header;

/**
 * struct memlog_cursor - where an fd is in one ring
 * @epoch:	the ring's epoch when @pos was taken
 * @pos:	logical offset of the next record to read
 * @last_seq:	seq of the last record read, to find @pos again in a new epoch
 */
struct memlog_cursor {
	u64 epoch;
	u64 pos;
	u64 last_seq;
};

/**
 * struct memlog_file - an open /dev/memlog
 * @cursors:	uid -> struct memlog_cursor, for each ring read from
 * @view_uid:	the uid whose records are read, or MEMLOG_UID_ALL
 * @view_own:	the view is the caller's own euid (the default)
 * @session_id:	tag of the records written through this fd
 */
struct memlog_file {
	struct xarray cursors;
	u32 view_uid;
	bool view_own;
	u8 session_id[MEMLOG_SESSION_ID_LEN];
};

/* The next record an fd may read */
struct memlog_next {
	struct memlog_ring *ring;
	const struct memlog_record_header *hdr;
	u64 pos;
};

static u32 memlog_current_uid(void)
{
	return from_kuid(&init_user_ns, current_euid());
}

static u32 memlog_view(const struct memlog_file *mf)
{
	return mf->view_own ? memlog_current_uid() : mf->view_uid;
}

static void memlog_cursors_reset(struct memlog_file *mf)
{
	struct memlog_cursor *cur;
	unsigned long uid;

	xa_for_each(&mf->cursors, uid, cur)
		kfree(cur);
	xa_destroy(&mf->cursors);
}

/* Logical offset of the next record @cur has not read in @ring */
static u64 memlog_cursor_pos(struct memlog_cursor *cur,
			     const struct memlog_ring *ring)
{
	const struct memlog_record_header *hdr;
	u64 pos;

	if (!cur)
		return ring->tail;
	/* Within an epoch, records before tail were evicted unread */
	if (cur->epoch == ring->epoch)
		return max(cur->pos, ring->tail);

	/* Cleared or resized since: look for the first record not yet read */
	for (pos = ring->tail; (hdr = memlog_ring_peek(ring, &pos));
	     pos += memlog_record_size(hdr->length))
		if (hdr->seq > cur->last_seq)
			break;
	cur->epoch = ring->epoch;
	cur->pos = pos;
	return pos;
}

static void memlog_consider(struct memlog_file *mf, struct memlog_ring *ring,
			    struct memlog_next *next)
{
	const struct memlog_record_header *hdr;
	u64 pos;

	pos = memlog_cursor_pos(xa_load(&mf->cursors, ring->uid), ring);
	hdr = memlog_ring_peek(ring, &pos);
	if (hdr && (!next->hdr || hdr->seq < next->hdr->seq)) {
		next->ring = ring;
		next->hdr = hdr;
		next->pos = pos;
	}
}

/* Find the record a read on @mf would return; false if there is none */
static bool memlog_find_next(struct memlog_file *mf, struct memlog_next *next)
{
	struct memlog_ring *ring;
	unsigned long uid;
	u32 view = memlog_view(mf);

	lockdep_assert_held(&memlog_lock);

	next->hdr = NULL;
	if (view == MEMLOG_UID_ALL) {
		xa_for_each(&memlog_rings, uid, ring)
			memlog_consider(mf, ring, next);
	} else {
		ring = xa_load(&memlog_rings, view);
		if (ring)
			memlog_consider(mf, ring, next);
	}
	return next->hdr;
}

static struct memlog_cursor *memlog_cursor_get(struct memlog_file *mf,
					       const struct memlog_ring *ring)
{
	struct memlog_cursor *cur;
	int ret;

	cur = xa_load(&mf->cursors, ring->uid);
	if (cur)
		return cur;

	cur = kmalloc(sizeof(*cur), GFP_KERNEL);
	if (!cur)
		return ERR_PTR(-ENOMEM);
	cur->epoch = ring->epoch;
	cur->pos = ring->tail;
	cur->last_seq = 0;
	ret = xa_insert(&mf->cursors, ring->uid, cur, GFP_KERNEL);
	if (ret) {
		kfree(cur);
		return ERR_PTR(ret);
	}
	return cur;
}

static struct memlog_ring *memlog_ring_get(u32 uid)
{
	struct memlog_ring *ring;
	int ret;

	ring = xa_load(&memlog_rings, uid);
	if (ring)
		return ring;

	ring = memlog_ring_alloc(uid, memlog_ring_size);
	if (!ring)
		return ERR_PTR(-ENOMEM);
	ret = xa_insert(&memlog_rings, uid, ring, GFP_KERNEL);
	if (ret) {
		memlog_ring_free(ring);
		return ERR_PTR(ret);
	}
	return ring;
}

static void memlog_rings_free(void)
{
	struct memlog_ring *ring;
	unsigned long uid;

	xa_for_each(&memlog_rings, uid, ring)
		memlog_ring_free(ring);
	xa_destroy(&memlog_rings);
}

/* Resize every ring; on any failure nothing changes */
static int memlog_resize_locked(u32 capacity)
{
	struct memlog_ring *ring;
	unsigned long uid;
	int ret = 0;

	lockdep_assert_held(&memlog_lock);

	if (capacity < MEMLOG_RING_SIZE_MIN || capacity > MEMLOG_RING_SIZE_MAX)
		return -EINVAL;
	if (capacity == memlog_ring_size)
		return 0;

	xa_for_each(&memlog_rings, uid, ring) {
		ret = memlog_ring_resize_prepare(ring, capacity);
		if (ret)
			break;
	}
	if (ret) {
		xa_for_each(&memlog_rings, uid, ring)
			memlog_ring_resize_abort(ring);
		return ret;
	}
	xa_for_each(&memlog_rings, uid, ring)
		memlog_ring_resize_commit(ring, capacity);
	memlog_ring_size = capacity;
	return 0;
}

static int memlog_open(struct inode *inode, struct file *file)
{
	struct memlog_file *mf;

	mf = kzalloc(sizeof(*mf), GFP_KERNEL);
	if (!mf)
		return -ENOMEM;
	xa_init(&mf->cursors);
	mf->view_own = true;
	file->private_data = mf;
	/* Records are read in order, never at an offset */
	file->f_mode &= ~(FMODE_PREAD | FMODE_PWRITE);
	return 0;
}

static int memlog_release(struct inode *inode, struct file *file)
{
	struct memlog_file *mf = file->private_data;

	mutex_lock(&memlog_lock);
	memlog_cursors_reset(mf);
	mutex_unlock(&memlog_lock);
	kfree(mf);
	return 0;
}

static ssize_t memlog_read(struct file *file, char __user *buf, size_t count,
			   loff_t *ppos)
{
	struct memlog_file *mf = file->private_data;
	struct memlog_cursor *cur;
	struct memlog_next next;
	ssize_t ret;
	size_t len;

	mutex_lock(&memlog_lock);
	if (!memlog_find_next(mf, &next)) {
		ret = 0;
		goto out;
	}
	len = MEMLOG_HDR_SIZE + next.hdr->length;
	if (count < len) {
		ret = -EINVAL;
		goto out;
	}
	cur = memlog_cursor_get(mf, next.ring);
	if (IS_ERR(cur)) {
		ret = PTR_ERR(cur);
		goto out;
	}
	if (copy_to_user(buf, next.hdr, len)) {
		ret = -EFAULT;
		goto out;
	}
	cur->epoch = next.ring->epoch;
	cur->pos = next.pos + memlog_record_size(next.hdr->length);
	cur->last_seq = next.hdr->seq;
	ret = len;
out:
	mutex_unlock(&memlog_lock);
	return ret;
}

static ssize_t memlog_write(struct file *file, const char __user *buf,
			    size_t count, loff_t *ppos)
{
	struct memlog_file *mf = file->private_data;
	struct memlog_record_header hdr = {
		.magic = MEMLOG_MAGIC,
		.schema_version = MEMLOG_SCHEMA_VERSION,
		.uid = memlog_current_uid(),
		.pid = task_tgid_nr(current),
	};
	struct memlog_ring *ring;
	struct memlog_resv resv;
	ssize_t ret;
	void *dst;

	if (!count)
		return 0;
	if (count > MEMLOG_RECORD_MAX)
		return -EMSGSIZE;
	hdr.length = count;

	mutex_lock(&memlog_lock);
	if (memlog_record_size(count) > memlog_ring_usable(memlog_ring_size)) {
		ret = -EMSGSIZE;
		goto out;
	}
	ring = memlog_ring_get(hdr.uid);
	if (IS_ERR(ring)) {
		ret = PTR_ERR(ring);
		goto out;
	}
	/* Nothing changes until the copy has succeeded */
	dst = memlog_ring_reserve(ring, count, memlog_staging, &resv);
	if (copy_from_user(dst, buf, count)) {
		ret = -EFAULT;
		goto out;
	}
	hdr.ts_ns = ktime_get_real_ns();
	hdr.seq = ++memlog_seq;
	memcpy(hdr.session_id, mf->session_id, sizeof(hdr.session_id));
	memlog_ring_commit(ring, &resv, &hdr, memlog_staging);
	ret = count;
out:
	mutex_unlock(&memlog_lock);
	if (ret > 0) {
		trace_record_written(hdr.seq, hdr.uid, hdr.pid, hdr.length);
		wake_up_interruptible_poll(&memlog_wait, EPOLLIN | EPOLLRDNORM);
	}
	return ret;
}

static __poll_t memlog_poll(struct file *file, poll_table *wait)
{
	struct memlog_file *mf = file->private_data;
	__poll_t mask = EPOLLOUT | EPOLLWRNORM;
	struct memlog_next next;

	poll_wait(file, &memlog_wait, wait);

	mutex_lock(&memlog_lock);
	if (memlog_find_next(mf, &next))
		mask |= EPOLLIN | EPOLLRDNORM;
	mutex_unlock(&memlog_lock);
	return mask;
}

/* Only lseek(fd, 0, SEEK_SET), which rewinds, is supported */
static loff_t memlog_llseek(struct file *file, loff_t offset, int whence)
{
	struct memlog_file *mf = file->private_data;

	if (whence != SEEK_SET || offset)
		return -ESPIPE;

	mutex_lock(&memlog_lock);
	memlog_cursors_reset(mf);
	mutex_unlock(&memlog_lock);
	return 0;
}

static int memlog_ioctl_stats(struct memlog_file *mf,
			      struct memlog_stats __user *arg)
{
	struct memlog_stats st = { };
	struct memlog_ring *ring;
	unsigned long uid;
	u32 view;

	mutex_lock(&memlog_lock);
	view = memlog_view(mf);
	if (view == MEMLOG_UID_ALL) {
		xa_for_each(&memlog_rings, uid, ring)
			memlog_ring_stats_add(ring, &st);
	} else {
		ring = xa_load(&memlog_rings, view);
		if (ring)
			memlog_ring_stats_add(ring, &st);
		else
			st.ring_capacity = memlog_ring_size;
	}
	mutex_unlock(&memlog_lock);

	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static int memlog_ioctl_clear(struct memlog_file *mf)
{
	struct memlog_ring *ring;
	unsigned long uid;
	u32 view;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	mutex_lock(&memlog_lock);
	view = memlog_view(mf);
	if (view == MEMLOG_UID_ALL) {
		xa_for_each(&memlog_rings, uid, ring)
			memlog_ring_clear(ring);
	} else {
		ring = xa_load(&memlog_rings, view);
		if (ring)
			memlog_ring_clear(ring);
	}
	mutex_unlock(&memlog_lock);
	return 0;
}

static int memlog_ioctl_set_ring_size(u32 __user *arg)
{
	u32 capacity;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (get_user(capacity, arg))
		return -EFAULT;

	mutex_lock(&memlog_lock);
	ret = memlog_resize_locked(capacity);
	mutex_unlock(&memlog_lock);
	return ret;
}

static int memlog_ioctl_filter_uid(struct memlog_file *mf, u32 __user *arg)
{
	u32 uid;

	if (get_user(uid, arg))
		return -EFAULT;
	if (uid != memlog_current_uid() && !capable(CAP_SYS_ADMIN))
		return -EPERM;

	mutex_lock(&memlog_lock);
	mf->view_uid = uid;
	mf->view_own = false;
	memlog_cursors_reset(mf);
	mutex_unlock(&memlog_lock);
	return 0;
}

static int memlog_ioctl_set_session(struct memlog_file *mf,
				    struct memlog_session __user *arg)
{
	struct memlog_session session;

	if (copy_from_user(&session, arg, sizeof(session)))
		return -EFAULT;

	mutex_lock(&memlog_lock);
	memcpy(mf->session_id, session.id, sizeof(mf->session_id));
	mutex_unlock(&memlog_lock);
	return 0;
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
	default:
		return -ENOTTY;
	}
}

static const struct file_operations memlog_fops = {
	.owner = THIS_MODULE,
	.open = memlog_open,
	.release = memlog_release,
	.read = memlog_read,
	.write = memlog_write,
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

/* The sysctl's value while its handler runs, under memlog_lock */
static unsigned int memlog_sysctl_value;

/* kernel.memlog.ring_size: out of range -EINVAL, any failure changes nothing */
static int
memlog_sysctl_ring_size(MEMLOG_CTL_HANDLER_CONST struct ctl_table *table,
			int write, void *buffer, size_t *lenp, loff_t *ppos)
{
	int ret;

	mutex_lock(&memlog_lock);
	memlog_sysctl_value = memlog_ring_size;
	ret = proc_douintvec(table, write, buffer, lenp, ppos);
	if (!ret && write)
		ret = memlog_resize_locked(memlog_sysctl_value);
	mutex_unlock(&memlog_lock);
	return ret;
}

static MEMLOG_CTL_TABLE_CONST struct ctl_table memlog_sysctl_table[] = {
	{
		.procname = "ring_size",
		.data = &memlog_sysctl_value,
		.maxlen = sizeof(memlog_sysctl_value),
		.mode = 0644,
		.proc_handler = memlog_sysctl_ring_size,
	},
	MEMLOG_CTL_TABLE_END
};

static int __init memlog_init(void)
{
	int ret;

	memlog_staging = vmalloc(MEMLOG_RECORD_MAX);
	if (!memlog_staging)
		return -ENOMEM;

	memlog_sysctl_header = register_sysctl("kernel/memlog",
					       memlog_sysctl_table);
	if (!memlog_sysctl_header) {
		ret = -ENOMEM;
		goto err_free_staging;
	}

	ret = misc_register(&memlog_misc);
	if (ret)
		goto err_unregister_sysctl;

	pr_info("driver version %s, ring size %u bytes per uid\n",
		MEMLOG_DRIVER_VERSION, memlog_ring_size);
	return 0;

err_unregister_sysctl:
	unregister_sysctl_table(memlog_sysctl_header);
err_free_staging:
	vfree(memlog_staging);
	return ret;
}

static void __exit memlog_exit(void)
{
	misc_deregister(&memlog_misc);
	unregister_sysctl_table(memlog_sysctl_header);
	memlog_rings_free();
	vfree(memlog_staging);
}

module_init(memlog_init);
module_exit(memlog_exit);

MODULE_DESCRIPTION("memlog: per-uid in-memory record rings");
MODULE_LICENSE("GPL");
MODULE_VERSION(MEMLOG_DRIVER_VERSION);
