// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog_fuzz: a seeded random sequence of calls on /dev/memlog and its
 * sysctls, each judged against the contract in <linux/memlog.h>.
 *
 * Run as root in a throw-away guest with the memlog module loaded:
 *
 *   memlog_fuzz [--seed N] [--iterations 20000] [--seconds 60]
 *               [--uid-base 30100] [--max-ring BYTES] [--stop-at-first] [--trace]
 *
 * Four actors, each a process: root; a member of the device's group; a
 * non-member (open gives EACCES; it also holds an fd root opened and passed
 * on); a process in a new user namespace (uid 0 inside, mapped to a member
 * uid), holding device fds opened before and after unshare(CLONE_NEWUSER).
 * One actor runs at a time, so the sequence (actors, batches, calls,
 * arguments) is a function of the seed alone: --seed replays it.
 *
 * Every call must return what the contract says: a success value or one of
 * the errnos it lists for that call (plus the VFS's own EBADF for a mode the
 * fd lacks and EINVAL for a whence past SEEK_MAX). Besides the return value,
 * each write is checked to have stored one record or none (STATS of the
 * ring it must go to, before and after), each record read to carry the right
 * header (magic, length, seq order, uid as the fd's opener sees it), a failed
 * read to have consumed nothing, poll to agree with read.
 *
 * Output: "memlog_fuzz seed=N" first, one JSON line last, on stdout; exit 0
 * when every call was as documented, 1 otherwise (the first violation on
 * stderr, with the seed and the iteration), 2 when the run could not be set
 * up, 3 when its watchdog fired. The kernel log is the runner's to check
 * (ci/stress.py).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>
#include <linux/memlog.h>

#define DEVICE		"/dev/memlog"
#define SYSCTL_RING	"/proc/sys/kernel/memlog/ring_size"
#define SYSCTL_MAXB	"/proc/sys/kernel/memlog/max_bytes"
#define HDR		((uint32_t)sizeof(struct memlog_record_header))
#define RECBUF		(HDR + MEMLOG_RECORD_MAX)
#define FALLBACK_GID	30999
#define OVERFLOW_UID	65534
#define PAGE		4096UL
#define ARENA		(1UL << 20)	/* the good buffer; a PROT_NONE page follows */
#define MAX_FDS		8
#define MAX_VIOL	40
#define CALL_LEN	256
#define NACTORS		4

enum actor_id { A_ROOT, A_MEMBER, A_OUTSIDER, A_USERNS };
static const char *const actor_names[NACTORS] = { "root", "member", "non-member", "userns" };

enum ns { NS_INIT, NS_CHILD };

enum call {
	K_OPEN, K_CLOSE, K_WRITE, K_WRITEV, K_PWRITEV2, K_READ, K_READV, K_LSEEK,
	K_PREAD, K_PWRITE, K_POLL, K_IOCTL, K_SYSCTL_OPEN, K_SYSCTL_WRITE,
	K_SYSCTL_READ, K_STATS_PROBE, NCALLS
};
static const char *const call_names[NCALLS] = {
	"open", "close", "write", "writev", "pwritev2", "read", "readv", "lseek",
	"pread", "pwrite", "poll", "ioctl", "sysctl_open", "sysctl_write",
	"sysctl_read", "stats_probe",
};

struct violation {
	uint64_t iteration;
	int actor;
	char call[CALL_LEN];
	char got[80];
	char want[200];
};

struct shared {
	uint64_t seed;
	uint32_t uid_member, uid_outsider, uid_userns;
	gid_t dev_gid;
	uint32_t max_ring;
	/* what the sysctls hold: the actors run one at a time, so this is exact */
	uint32_t ring_size;
	uint64_t max_bytes;
	int has_max_bytes;
	int trace;
	uint64_t iteration;		/* of the call under way */
	char current[NACTORS][CALL_LEN];
	_Atomic uint64_t calls[NCALLS];
	_Atomic uint64_t total_viol;
	_Atomic int nviol;
	struct violation viol[MAX_VIOL];
	char userns_note[160];
};

/* One open /dev/memlog of an actor */
struct dfd {
	int fd;
	int mode;			/* O_RDONLY, O_WRONLY, O_RDWR */
	uint32_t opener;		/* the opener's uid (initial namespace) */
	int opener_ns;
	bool all;			/* view: every uid */
	uint32_t view;			/* view: this uid (initial namespace) */
	uint64_t last_seq;
	bool probe;			/* never filtered, never closed: STATS of its ring */
	char name[40];
};

struct actor {
	int id;
	bool cap;			/* CAP_SYS_ADMIN in the initial namespace */
	int ns;				/* the caller's user namespace */
	uint32_t uid;			/* the caller's uid (initial namespace) */
	bool may_open;
	struct dfd fds[MAX_FDS];
	int nfds;
	int cmd_fd, reply_fd;
};

struct cmd {
	uint64_t iteration;
	uint64_t batch_seed;
	uint32_t count;
	uint32_t sweep;			/* run the ioctl sweep first */
};

static struct shared *sh;
static struct actor *self;
static uint64_t rng_state;
static uint8_t *arena, *guard, *hole;
static struct iovec *iovs;		/* IOV_MAX of them */
static const char *prog = "memlog_fuzz";

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int percent)
{
	return rnd_below(100) < percent;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint32_t record_size(uint64_t len)
{
	return (uint32_t)((HDR + len + 7U) & ~7ULL);
}

/* Bytes a record may take in one uid's ring */
/*
 * The largest record a write may store: the ring size rounded down to 8
 * (EMSGSIZE past it). max_bytes does not change it: a ring grown before
 * max_bytes was lowered keeps its buffer, and one that cannot grow gets
 * ENOSPC.
 */
static uint64_t record_room(void)
{
	return sh->ring_size & ~7U;
}

/* STATS' ring_capacity of one uid: the usable ring size, at most max_bytes */
static uint64_t usable_ring(void)
{
	uint64_t u = sh->ring_size & ~7U;

	if (sh->has_max_bytes && sh->max_bytes < u)
		u = sh->max_bytes;
	return u;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

/* ---- the judge --------------------------------------------------------------- */

struct want {
	bool ok;			/* a success may come back */
	int64_t ok_exact;		/* ... this value, or -1 */
	int64_t ok_max;			/* ... at most this (with ok_exact -1) */
	int nerr;
	int errs[12];
};

static void want_err(struct want *w, int e)
{
	for (int i = 0; i < w->nerr; i++)
		if (w->errs[i] == e)
			return;
	if (w->nerr < 12)
		w->errs[w->nerr++] = e;
}

static void want_ok(struct want *w, int64_t exact)
{
	w->ok = true;
	w->ok_exact = exact;
}

static void want_upto(struct want *w, int64_t max)
{
	w->ok = true;
	w->ok_exact = -1;
	w->ok_max = max;
}

static void describe_want(const struct want *w, char *out, size_t n)
{
	size_t len = 0;

	out[0] = 0;
	if (w->ok) {
		if (w->ok_exact >= 0)
			len += (size_t)snprintf(out + len, n - len, "%" PRId64, w->ok_exact);
		else
			len += (size_t)snprintf(out + len, n - len, "0..%" PRId64, w->ok_max);
	}
	for (int i = 0; i < w->nerr && len < n; i++)
		len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "|" : "",
					errname(w->errs[i]));
	if (!len)
		snprintf(out, n, "(nothing)");
}

/* @a and @b alike but for their numbers? */
static bool alike(const char *a, const char *b)
{
	while (*a && *b) {
		bool da = *a >= '0' && *a <= '9', db = *b >= '0' && *b <= '9';

		if (da && db) {
			while (*a >= '0' && *a <= '9')
				a++;
			while (*b >= '0' && *b <= '9')
				b++;
			continue;
		}
		if (*a != *b)
			return false;
		a++;
		b++;
	}
	return *a == *b;
}

__attribute__((format(printf, 2, 3)))
static void fail(const char *got, const char *fmt, ...)
{
	struct violation *v;
	char want[200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	atomic_fetch_add(&sh->total_viol, 1);
	/* one entry per actor, call name, result and expectation (numbers aside) */
	for (int i = 0; i < atomic_load(&sh->nviol) && i < MAX_VIOL; i++) {
		const char *c = sh->viol[i].call, *d = sh->current[self->id];
		size_t name = strcspn(d, "(");

		if (sh->viol[i].actor == self->id && alike(sh->viol[i].got, got) &&
		    alike(sh->viol[i].want, want) && strlen(c) >= name && !strncmp(c, d, name))
			return;
	}
	n = atomic_fetch_add(&sh->nviol, 1);
	if (n >= MAX_VIOL)
		return;
	v = &sh->viol[n];
	v->iteration = sh->iteration;
	v->actor = self->id;
	memcpy(v->call, sh->current[self->id], sizeof(v->call));
	v->call[sizeof(v->call) - 1] = 0;
	snprintf(v->got, sizeof(v->got), "%s", got);
	snprintf(v->want, sizeof(v->want), "%s", want);
	if (sh->trace)
		fprintf(stderr, "  VIOLATION: got %s, expected %s\n", got, want);
}

/* A call's description, kept for the report */
__attribute__((format(printf, 2, 3)))
static void calling(enum call c, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&sh->calls[c], 1);
	va_start(ap, fmt);
	vsnprintf(sh->current[self->id], CALL_LEN, fmt, ap);
	va_end(ap);
	if (sh->trace)
		fprintf(stderr, "%" PRIu64 " %s: %s\n", sh->iteration, actor_names[self->id],
			sh->current[self->id]);
}

/* Is (r, e) what @w allows? If not, a violation. */
static bool judge(int64_t r, int e, const struct want *w)
{
	char got[80], want[200];

	if (r >= 0 && w->ok && (w->ok_exact >= 0 ? r == w->ok_exact : r <= w->ok_max))
		return true;
	if (r < 0)
		for (int i = 0; i < w->nerr; i++)
			if (w->errs[i] == e)
				return true;
	if (r < 0)
		snprintf(got, sizeof(got), "-1 %s", errname(e));
	else
		snprintf(got, sizeof(got), "%" PRId64, r);
	describe_want(w, want, sizeof(want));
	fail(got, "%s", want);
	return false;
}

/* ---- pointers ----------------------------------------------------------------- */

enum ptr_kind { P_GOOD, P_NULL, P_ONE, P_UNMAPPED, P_PARTIAL, P_KERNEL, P_NONCANON, NPTRS };
static const char *const ptr_names[NPTRS] = {
	"buf", "NULL", "(void *)1", "unmapped", "partly-mapped", "kernel-address",
	"non-canonical",
};

struct ptr {
	void *p;
	int kind;
	uint64_t mapped;		/* accessible bytes from p on */
};

static struct ptr make_ptr(int kind, uint64_t n)
{
	struct ptr p = { .kind = kind };

	switch (kind) {
	case P_GOOD:
		p.p = arena;
		p.mapped = ARENA;
		break;
	case P_NULL:
		break;
	case P_ONE:
		p.p = (void *)1;
		break;
	case P_UNMAPPED:
		p.p = hole;
		break;
	case P_PARTIAL:
		p.mapped = n > 1 ? 1 + rnd_below(n - 1) : 0;
		if (p.mapped > ARENA)
			p.mapped = ARENA;
		p.p = guard - p.mapped;
		break;
	case P_KERNEL:
		p.p = (void *)0xffffffff81000000UL;
		break;
	default:
		p.p = (void *)0xdead000000000000UL;
		break;
	}
	return p;
}

static int pick_ptr_kind(unsigned int good_percent)
{
	return chance(good_percent) ? P_GOOD : 1 + (int)rnd_below(NPTRS - 1);
}

/* The VFS refuses these addresses before the driver sees them */
static bool vfs_rejects(int kind)
{
	return kind == P_KERNEL || kind == P_NONCANON;
}

/* ---- identities and fds ------------------------------------------------------- */

static uint32_t xlate(int ns, uint32_t kuid)
{
	if (ns == NS_INIT)
		return kuid;
	return kuid == sh->uid_userns ? 0 : OVERFLOW_UID;
}

/* The caller's uid @uid in the initial namespace, or -1 if its namespace lacks it */
static int64_t map_uid(int ns, uint32_t uid)
{
	if (uid == MEMLOG_UID_ALL)
		return -1;
	if (ns == NS_INIT)
		return uid;
	return uid == 0 ? (int64_t)sh->uid_userns : -1;
}

static struct dfd *add_fd(int fd, int mode, const char *name, bool probe)
{
	struct dfd *f;

	if (self->nfds >= MAX_FDS) {
		close(fd);
		return NULL;
	}
	f = &self->fds[self->nfds++];
	memset(f, 0, sizeof(*f));
	f->fd = fd;
	f->mode = mode;
	f->opener = self->uid;
	f->opener_ns = self->ns;
	f->view = self->uid;
	f->probe = probe;
	snprintf(f->name, sizeof(f->name), "%s", name);
	return f;
}

static const char *mode_name(int mode)
{
	return mode == O_RDONLY ? "r" : mode == O_WRONLY ? "w" : "rw";
}

static bool readable(const struct dfd *f)
{
	return f->mode != O_WRONLY;
}

static bool writable(const struct dfd *f)
{
	return f->mode != O_RDONLY;
}

/* The never-filtered fd whose view is the ring @f's writes go to */
static struct dfd *probe_for(const struct dfd *f)
{
	for (int i = 0; i < self->nfds; i++)
		if (self->fds[i].probe && self->fds[i].opener == f->opener)
			return &self->fds[i];
	return NULL;
}

static struct dfd *pick_fd(void)
{
	return self->nfds ? &self->fds[rnd_below((uint64_t)self->nfds)] : NULL;
}

static int64_t total_writes(struct dfd *probe)
{
	struct memlog_stats s;

	if (!probe)
		return -1;
	calling(K_STATS_PROBE, "ioctl(%s, STATS) [probe]", probe->name);
	if (ioctl(probe->fd, MEMLOG_IOC_STATS, &s)) {
		char got[80];

		snprintf(got, sizeof(got), "-1 %s", errname(errno));
		fail(got, "0");
		return -1;
	}
	return (int64_t)s.total_writes;
}

/* After a write-like call: one record stored iff it succeeded with n > 0 */
static void check_stored(struct dfd *probe, int64_t before, bool stored, const char *what)
{
	int64_t after = total_writes(probe);
	char got[80];

	if (before < 0 || after < 0 || after - before == (stored ? 1 : 0))
		return;
	snprintf(sh->current[self->id], CALL_LEN, "%s", what);
	snprintf(got, sizeof(got), "%" PRId64 " records stored", after - before);
	fail(got, "%d record%s stored in the ring of uid %u (the opener's)", stored ? 1 : 0,
	     stored ? "" : "s", probe->opener);
}

/* ---- records ------------------------------------------------------------------- */

static void check_record(struct dfd *f, const uint8_t *buf, int64_t r)
{
	struct memlog_record_header h;
	char got[80];

	memcpy(&h, buf, HDR);
	if (r < HDR || h.magic != MEMLOG_MAGIC || h.schema_version != MEMLOG_SCHEMA_VERSION ||
	    h.reserved || h.length != (uint64_t)r - HDR || !h.length ||
	    h.length > MEMLOG_RECORD_MAX) {
		snprintf(got, sizeof(got), "a %" PRId64 "-byte read, header length %u", r,
			 h.length);
		fail(got, "a record: magic, version 1, length = bytes read - 56");
		return;
	}
	if (h.seq <= f->last_seq) {
		snprintf(got, sizeof(got), "seq %llu after %" PRIu64,
			 (unsigned long long)h.seq, f->last_seq);
		fail(got, "records in increasing seq order");
	}
	f->last_seq = h.seq;
	if (!f->all && h.uid != xlate(f->opener_ns, f->view)) {
		snprintf(got, sizeof(got), "a record of uid %u", h.uid);
		fail(got, "uid %u (the view's uid %u as the fd's opener sees it)",
		     xlate(f->opener_ns, f->view), f->view);
	} else if (f->all && f->opener_ns == NS_CHILD && h.uid != 0 && h.uid != OVERFLOW_UID) {
		snprintf(got, sizeof(got), "a record of uid %u", h.uid);
		fail(got, "uid 0 or %u in the opener's user namespace", OVERFLOW_UID);
	}
}

/* A read with a good, large buffer: the record count it returns (0 or 1) */
static int64_t plain_read(struct dfd *f, const char *why)
{
	struct want w = { 0 };
	int64_t r;
	int e;

	calling(K_READ, "read(%s, buf, %u) [%s]", f->name, RECBUF, why);
	want_upto(&w, RECBUF);
	r = read(f->fd, arena, RECBUF);
	e = errno;
	if (!judge(r, e, &w))
		return -1;
	if (r > 0)
		check_record(f, arena, r);
	return r;
}

/* ---- write-like calls ----------------------------------------------------------- */

static uint64_t pick_len(void)
{
	switch (rnd_below(10)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return MEMLOG_RECORD_MAX;
	case 3:
		return MEMLOG_RECORD_MAX + 1;
	case 4:
		return chance(50) ? 1UL << 20 : 1UL << 31;
	case 5:
		return 1 + rnd_below(MEMLOG_RECORD_MAX);
	default:
		return 1 + rnd_below(512);
	}
}

/* What a write of @n bytes, @bad (some byte unreadable) may return */
static struct want write_want(const struct dfd *f, uint64_t n, bool bad, bool vfs_bad)
{
	struct want w = { 0 };

	if (!writable(f)) {
		want_err(&w, EBADF);
		return w;
	}
	if (vfs_bad)
		want_err(&w, EFAULT);
	if (n == 0) {
		want_ok(&w, 0);
		return w;
	}
	if (n > MEMLOG_RECORD_MAX || record_size(n) > record_room()) {
		want_err(&w, EMSGSIZE);
		if (bad)
			want_err(&w, EFAULT);
		/* the exact boundary (padding counted or not) is the driver's */
		if (n <= MEMLOG_RECORD_MAX && record_size(n) <= record_room() + 8 && !bad)
			want_ok(&w, (int64_t)n);
		return w;
	}
	want_err(&w, ENOSPC);
	want_err(&w, ENOMEM);
	if (bad)
		want_err(&w, EFAULT);
	else
		want_ok(&w, (int64_t)n);
	if (record_size(n) + 8 > record_room())
		want_err(&w, EMSGSIZE);
	return w;
}

static void op_write(struct dfd *f)
{
	uint64_t n = pick_len();
	struct ptr p = make_ptr(pick_ptr_kind(70), n);
	bool bad = p.mapped < n;
	struct dfd *probe = probe_for(f);
	int64_t before = total_writes(probe), r;
	struct want w = write_want(f, n, bad, vfs_rejects(p.kind));
	char what[CALL_LEN];
	int e;

	if (p.kind == P_GOOD && n <= ARENA)
		for (uint64_t i = 0; i < n; i += 64)
			arena[i] = (uint8_t)rnd();
	calling(K_WRITE, "write(%s, %s, %" PRIu64 ") [ring_size %u, max_bytes %" PRIu64 "]",
		f->name, ptr_names[p.kind], n, sh->ring_size, sh->max_bytes);
	snprintf(what, sizeof(what), "%s", sh->current[self->id]);
	r = write(f->fd, p.p, n);
	e = errno;
	judge(r, e, &w);
	check_stored(probe, before, r > 0, what);
}

/* writev or pwritev2: random iovecs, maybe one bad */
static void op_writev(struct dfd *f, bool v2)
{
	int cnt = chance(5) ? (chance(50) ? 64 : 1024) : (int)rnd_below(9);
	int bad_at = chance(30) && cnt ? (int)rnd_below((uint64_t)cnt) : -1;
	bool array_bad = cnt && chance(5), bad = false, vfs_bad = false;
	int64_t off = v2 && chance(20) ? (int64_t)rnd_below(1U << 20) : -1;
	struct dfd *probe = probe_for(f);
	int64_t before = total_writes(probe), r;
	uint64_t total = 0, pos = 0;
	struct want w = { 0 };
	char what[CALL_LEN];
	struct ptr ap = { .p = iovs, .kind = P_GOOD };
	int e;

	for (int i = 0; i < cnt; i++) {
		uint64_t len;

		switch (rnd_below(6)) {
		case 0:
			len = 0;
			break;
		case 1:
			len = 1 + rnd_below(16);
			break;
		case 2:
			len = 1 + rnd_below(4096);
			break;
		case 3:
			len = cnt > 8 ? rnd_below(64) : 1 + rnd_below(MEMLOG_RECORD_MAX);
			break;
		default:
			len = rnd_below(300);
			break;
		}
		if (i == bad_at) {
			struct ptr p = make_ptr(1 + (int)rnd_below(NPTRS - 1), len);

			iovs[i].iov_base = p.p;
			if (len && p.mapped < len)
				bad = true;
			/* import_iovec() refuses such an address even for 0 bytes */
			if (vfs_rejects(p.kind))
				vfs_bad = true;
		} else {
			if (pos + len > ARENA)
				pos = 0;
			iovs[i].iov_base = arena + pos;
			pos += len;
		}
		iovs[i].iov_len = len;
		total += len;
	}
	if (array_bad)
		ap = make_ptr(1 + (int)rnd_below(P_PARTIAL - 1), 0);
	if (v2 && off >= 0) {
		want_err(&w, ESPIPE);
	} else if (array_bad) {
		if (!writable(f))
			want_err(&w, EBADF);
		want_err(&w, EFAULT);
	} else {
		w = write_want(f, total, bad, vfs_bad);
		if (vfs_bad)	/* the VFS checks every segment first */
			want_err(&w, EFAULT);
	}
	calling(v2 ? K_PWRITEV2 : K_WRITEV, "%s(%s, %s[%d iovecs, %" PRIu64 " bytes%s]%s)",
		v2 ? "pwritev2" : "writev", f->name, array_bad ? ptr_names[ap.kind] : "iov", cnt,
		total, bad_at >= 0 ? ", one bad" : "", v2 ? (off >= 0 ? ", offset>=0, 0" : ", -1, 0") : "");
	snprintf(what, sizeof(what), "%s", sh->current[self->id]);
	if (v2)
		r = pwritev2(f->fd, ap.p, cnt, off, 0);
	else
		r = writev(f->fd, ap.p, cnt);
	e = errno;
	judge(r, e, &w);
	check_stored(probe, before, r > 0, what);
}

static void op_pread_pwrite(struct dfd *f)
{
	bool wr = chance(50);
	uint64_t n = rnd_below(4) ? 1 + rnd_below(RECBUF) : 0;
	struct ptr p = make_ptr(pick_ptr_kind(70), n);
	int64_t off = (int64_t)rnd_below(1U << 30), r;
	struct want w = { 0 };
	int e;

	want_err(&w, ESPIPE);
	calling(wr ? K_PWRITE : K_PREAD, "%s(%s, %s, %" PRIu64 ", %" PRId64 ")",
		wr ? "pwrite" : "pread", f->name, ptr_names[p.kind], n, off);
	r = wr ? pwrite(f->fd, p.p, n, off) : pread(f->fd, p.p, n, off);
	e = errno;
	judge(r, e, &w);
}

/* ---- read-like calls ---------------------------------------------------------------- */

static uint64_t pick_read_size(void)
{
	switch (rnd_below(9)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return HDR - 1 + rnd_below(3);
	case 3:
		return HDR + rnd_below(600);
	case 4:
		return RECBUF - 1;
	case 5:
		return ARENA;
	default:
		return RECBUF;
	}
}

/*
 * After a failed read that must not have consumed anything: the next read
 * with a good buffer returns a record (bigger than @than bytes, if given).
 */
static void check_not_consumed(struct dfd *f, uint64_t than, const char *what)
{
	int64_t r = plain_read(f, "nothing consumed?");
	char got[80];

	if (r < 0 || (r > 0 && (uint64_t)r > than))
		return;
	snprintf(sh->current[self->id], CALL_LEN, "%s", what);
	snprintf(got, sizeof(got), "then a read returned %" PRId64, r);
	fail(got, "the record the failed read left (more than %" PRIu64 " bytes)", than);
}

static void op_read(struct dfd *f)
{
	uint64_t n = pick_read_size();
	struct ptr p = make_ptr(pick_ptr_kind(65), n);
	struct want w = { 0 };
	char what[CALL_LEN];
	int64_t r;
	int e;

	if (!readable(f)) {
		want_err(&w, EBADF);
	} else {
		want_upto(&w, n < p.mapped ? (int64_t)n : (int64_t)p.mapped);
		if (n < RECBUF)
			want_err(&w, EINVAL);
		if ((p.mapped < n && n) || vfs_rejects(p.kind))
			want_err(&w, EFAULT);
	}
	calling(K_READ, "read(%s, %s, %" PRIu64 ")", f->name, ptr_names[p.kind], n);
	snprintf(what, sizeof(what), "%s", sh->current[self->id]);
	r = read(f->fd, p.p, n);
	e = errno;
	if (!judge(r, e, &w))
		return;
	if (r > 0 && p.kind == P_GOOD)
		check_record(f, arena, r);
	else if (r > 0)
		check_record(f, p.p, r);
	if (r < 0 && e == EINVAL)
		check_not_consumed(f, n, what);
	else if (r < 0 && e == EFAULT && !vfs_rejects(p.kind))
		check_not_consumed(f, 0, what);
}

static void op_readv(struct dfd *f)
{
	int cnt = 1 + (int)rnd_below(4);
	int bad_at = chance(20) ? (int)rnd_below((uint64_t)cnt) : -1;
	uint64_t total = 0, good_prefix = 0, pos = 0;
	bool bad = false;
	struct want w = { 0 };
	char what[CALL_LEN];
	int64_t r;
	int e;

	for (int i = 0; i < cnt; i++) {
		uint64_t len = chance(50) ? rnd_below(200) : rnd_below(RECBUF);

		if (i == bad_at && len) {
			iovs[i].iov_base = make_ptr(1 + (int)rnd_below(P_PARTIAL - 1), len).p;
			bad = true;
		} else {
			iovs[i].iov_base = arena + pos;
			pos += len;
			if (!bad)
				good_prefix += len;
		}
		iovs[i].iov_len = len;
		total += len;
	}
	if (!readable(f)) {
		want_err(&w, EBADF);
	} else {
		want_upto(&w, (int64_t)good_prefix);
		if (total < RECBUF)
			want_err(&w, EINVAL);
		if (bad)
			want_err(&w, EFAULT);
	}
	calling(K_READV, "readv(%s, iov[%d iovecs, %" PRIu64 " bytes%s])", f->name, cnt, total,
		bad ? ", one bad" : "");
	snprintf(what, sizeof(what), "%s", sh->current[self->id]);
	r = readv(f->fd, iovs, cnt);
	e = errno;
	if (!judge(r, e, &w))
		return;
	if (r > 0) {
		/* the record lies in the good iovecs, in order: gather it */
		static uint8_t rec[RECBUF];
		uint64_t got = 0;

		for (int i = 0; i < cnt && got < (uint64_t)r; i++) {
			uint64_t take = iovs[i].iov_len;

			if (take > (uint64_t)r - got)
				take = (uint64_t)r - got;
			memcpy(rec + got, iovs[i].iov_base, take);
			got += take;
		}
		check_record(f, rec, r);
	}
	if (r < 0 && e == EINVAL)
		check_not_consumed(f, total, what);
}

/*
 * Drain @rd's view, write one record of n bytes to its ring through @wr, then:
 * a read one byte short (EINVAL, nothing consumed) or with a bad buffer
 * (EFAULT, nothing consumed), and a readv split over several iovecs that must
 * return exactly that record.
 */
static void op_roundtrip(struct dfd *rd, struct dfd *wr)
{
	uint64_t n = 1 + (chance(50) ? rnd_below(300) : rnd_below(MEMLOG_RECORD_MAX));
	uint64_t len, pos = 0;
	struct memlog_record_header h;
	struct want w = { 0 };
	int kind = chance(50) ? P_GOOD : P_NULL + (int)rnd_below(P_PARTIAL);
	char what[CALL_LEN];
	int64_t r;
	int cnt, e;

	if (record_size(n) + 8 > record_room())
		n = 1 + rnd_below(100);
	for (int i = 0; i < 100000; i++) {
		r = plain_read(rd, "drain");
		if (r <= 0)
			break;
	}
	if (r != 0)
		return;
	for (uint64_t i = 0; i < n; i++)
		arena[ARENA / 2 + i] = (uint8_t)(i * 7 + n);
	w = write_want(wr, n, false, false);
	calling(K_WRITE, "write(%s, buf, %" PRIu64 ") [round trip]", wr->name, n);
	r = write(wr->fd, arena + ARENA / 2, n);
	e = errno;
	if (!judge(r, e, &w) || r != (int64_t)n)
		return;
	len = HDR + n;
	if (kind == P_GOOD) {
		memset(&w, 0, sizeof(w));
		want_err(&w, EINVAL);
		calling(K_READ, "read(%s, buf, %" PRIu64 ") [one byte short]", rd->name, len - 1);
		snprintf(what, sizeof(what), "%s", sh->current[self->id]);
		r = read(rd->fd, arena, len - 1);
	} else {
		struct ptr p = make_ptr(kind, len);

		memset(&w, 0, sizeof(w));
		want_err(&w, EFAULT);
		if (p.mapped >= len)
			want_ok(&w, (int64_t)len);
		calling(K_READ, "read(%s, %s, %u) [a record of %" PRIu64 " bytes waits]", rd->name,
			ptr_names[p.kind], RECBUF, len);
		snprintf(what, sizeof(what), "%s", sh->current[self->id]);
		r = read(rd->fd, p.p, RECBUF);
	}
	e = errno;
	if (!judge(r, e, &w) || r > 0)
		return;
	/* the record is still there: fetch it in pieces */
	cnt = 1 + (int)rnd_below(4);
	for (int i = 0; i < cnt; i++) {
		uint64_t piece = i == cnt - 1 ? len - pos : rnd_below(len - pos + 1);

		iovs[i].iov_base = arena + pos;
		iovs[i].iov_len = piece;
		pos += piece;
	}
	memset(&w, 0, sizeof(w));
	want_ok(&w, (int64_t)len);
	calling(K_READV, "readv(%s, iov[%d iovecs, %" PRIu64 " bytes: the record exactly])",
		rd->name, cnt, len);
	r = readv(rd->fd, iovs, cnt);
	e = errno;
	(void)what;
	if (!judge(r, e, &w))
		return;
	check_record(rd, arena, r);
	memcpy(&h, arena, HDR);
	if (memcmp(arena + HDR, arena + ARENA / 2, n) || h.length != n ||
	    h.pid != (uint32_t)getpid())
		fail("another record", "the %" PRIu64 "-byte record just written, byte for byte", n);
	r = plain_read(rd, "nothing left after the round trip");
	if (r > 0)
		fail("one more record", "0: nothing left");
}

static void op_lseek(struct dfd *f)
{
	int whence = chance(40) ? SEEK_SET : (int)rnd_below(chance(10) ? 8 : 5);
	int64_t off = chance(50) ? 0 : (int64_t)(rnd() >> (rnd_below(63)));
	struct want w = { 0 };
	int64_t r;
	int e;

	if (chance(50))
		off = -off;
	if (whence == SEEK_SET && chance(60))
		off = 0;
	if (whence > SEEK_HOLE)
		want_err(&w, EINVAL);	/* the VFS's, before the driver's */
	else if (whence == SEEK_SET && off == 0)
		want_ok(&w, 0);
	else
		want_err(&w, ESPIPE);
	calling(K_LSEEK, "lseek(%s, %" PRId64 ", %d)", f->name, off, whence);
	r = lseek(f->fd, off, whence);
	e = errno;
	if (judge(r, e, &w) && r == 0)
		f->last_seq = 0;
}

static void op_poll(struct dfd *f)
{
	struct pollfd p = { .fd = f->fd, .events = POLLIN | POLLOUT };
	struct want w = { 0 };
	int64_t r, n;
	char what[CALL_LEN];

	want_ok(&w, 1);
	calling(K_POLL, "poll(%s, POLLIN|POLLOUT, 0)", f->name);
	snprintf(what, sizeof(what), "%s", sh->current[self->id]);
	r = poll(&p, 1, 0);
	if (!judge(r, errno, &w))
		return;
	if (!(p.revents & POLLOUT))
		fail("no POLLOUT", "POLLOUT, always");
	if (!readable(f))
		return;
	n = plain_read(f, "poll said");
	if (n < 0)
		return;
	if ((n > 0) != !!(p.revents & POLLIN)) {
		char got[80];

		snprintf(sh->current[self->id], CALL_LEN, "%s", what);
		snprintf(got, sizeof(got), "revents %#x, then read returned %" PRId64, p.revents, n);
		fail(got, "POLLIN exactly when a record is readable");
	}
}

/* ---- ioctls ---------------------------------------------------------------------------- */

static const unsigned long defined_cmds[] = {
	MEMLOG_IOC_STATS, MEMLOG_IOC_CLEAR, MEMLOG_IOC_SET_RING_SIZE, MEMLOG_IOC_FILTER_UID,
	MEMLOG_IOC_GET_VERSION, MEMLOG_IOC_SET_SESSION, MEMLOG_IOC_GET_LOST,
};

static bool is_defined(unsigned long cmd)
{
	for (size_t i = 0; i < sizeof(defined_cmds) / sizeof(defined_cmds[0]); i++)
		if (cmd == defined_cmds[i])
			return true;
	return false;
}

/* Types whose numbers the VFS itself answers (fs/ioctl.c), whatever the driver */
static bool vfs_type(unsigned int type)
{
	return type == 0x00 || type == 0x15 || type == 'T' || type == 'X' || type == 'f' ||
	       type == 0x94;
}

static uint32_t pick_u32_arg(unsigned long cmd)
{
	if (cmd == MEMLOG_IOC_SET_RING_SIZE) {
		switch (rnd_below(6)) {
		case 0:
			return MEMLOG_RING_SIZE_MIN - (uint32_t)rnd_below(2);
		case 1:
			return MEMLOG_RING_SIZE_MAX + 1;
		case 2: {
			/* anything, but never a ring bigger than --max-ring */
			uint32_t v = (uint32_t)rnd();

			if (v > sh->max_ring && v <= MEMLOG_RING_SIZE_MAX)
				v = MEMLOG_RING_SIZE_MAX + 1 + v % 1000;
			return v;
		}
		default:
			return MEMLOG_RING_SIZE_MIN + (uint32_t)rnd_below(sh->max_ring -
								     MEMLOG_RING_SIZE_MIN + 1);
		}
	}
	switch (rnd_below(8)) {
	case 0:
		return MEMLOG_UID_ALL;
	case 1:
		return 0;
	case 2:
		return sh->uid_member;
	case 3:
		return sh->uid_userns;
	case 4:
		return self->ns == NS_CHILD ? 0 : self->uid;
	case 5:
		return (uint32_t)rnd();
	case 6:
		return 65534;
	default:
		return sh->uid_outsider;
	}
}

static void check_stats(const struct dfd *f, const struct memlog_stats *s)
{
	uint64_t cap = f->all ? (sh->has_max_bytes ? sh->max_bytes : 0) : usable_ring();
	char got[120];

	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	/*
	 * A uid's records fit its ring size (a shrinking resize evicts); what
	 * lowering max_bytes does to records already stored is not documented.
	 */
	bool size_binds = !sh->has_max_bytes || (sh->ring_size & ~7U) <= sh->max_bytes;

	if (s->records_in_ring > s->total_writes || s->total_evictions > s->total_writes ||
	    (!f->all && size_binds && s->ring_bytes > s->ring_capacity) ||
	    (!s->records_in_ring) != (!s->newest_ts_ns) ||
	    (!s->records_in_ring) != (!s->oldest_ts_ns)) {
		snprintf(got, sizeof(got), "writes %llu evictions %llu records %llu bytes %u "
			 "capacity %u", (unsigned long long)s->total_writes,
			 (unsigned long long)s->total_evictions,
			 (unsigned long long)s->records_in_ring, s->ring_bytes, s->ring_capacity);
		fail(got, "consistent STATS (ring_size %u, max_bytes %" PRIu64 ")", sh->ring_size,
		     sh->max_bytes);
	}
	if ((f->all && sh->has_max_bytes) || !f->all) {
		if (s->ring_capacity != cap) {
			snprintf(got, sizeof(got), "ring_capacity %u", s->ring_capacity);
			fail(got, "ring_capacity %" PRIu64 " (%s)", cap, f->all ?
			     "every uid: max_bytes" : "ring_size rounded down to 8, at most max_bytes");
		}
	}
}

static void do_ioctl(struct dfd *f, unsigned long cmd, int kind, uint32_t value)
{
	unsigned int size = _IOC_SIZE(cmd);
	struct ptr p = make_ptr(kind, size ? size : 1);
	struct want w = { 0 };
	int64_t r;
	int e;

	if (kind == P_GOOD) {
		memset(arena, 0, 64);
		memcpy(arena, &value, sizeof(value));
	}
	if (!is_defined(cmd)) {
		want_err(&w, ENOTTY);
	} else if (cmd == MEMLOG_IOC_CLEAR) {
		if (self->cap)
			want_ok(&w, 0);
		else
			want_err(&w, EPERM);
	} else if (p.mapped < size) {
		want_err(&w, EFAULT);
		if (cmd == MEMLOG_IOC_SET_RING_SIZE && !self->cap)
			want_err(&w, EPERM);
	} else if (cmd == MEMLOG_IOC_SET_RING_SIZE) {
		bool range = value >= MEMLOG_RING_SIZE_MIN && value <= MEMLOG_RING_SIZE_MAX;

		if (!self->cap)
			want_err(&w, EPERM);
		if (!range)
			want_err(&w, EINVAL);
		if (self->cap && range) {
			want_ok(&w, 0);
			want_err(&w, ENOMEM);
		}
	} else if (cmd == MEMLOG_IOC_FILTER_UID) {
		int64_t k = map_uid(self->ns, value);

		if (value == MEMLOG_UID_ALL) {
			if (self->cap)
				want_ok(&w, 0);
			else
				want_err(&w, EPERM);
		} else if (k < 0) {
			want_err(&w, EINVAL);
			if (!self->cap)
				want_err(&w, EPERM);
		} else if (self->cap || (uint32_t)k == f->opener) {
			want_ok(&w, 0);
		} else {
			want_err(&w, EPERM);
		}
	} else {
		want_ok(&w, 0);	/* STATS, GET_VERSION, SET_SESSION, GET_LOST */
	}
	if (f->probe && cmd == MEMLOG_IOC_FILTER_UID)
		return;	/* probes keep their view */
	calling(K_IOCTL, "ioctl(%s, %#lx [dir %u type %#x nr %u size %u], %s%s%u)", f->name, cmd,
		(unsigned int)_IOC_DIR(cmd), (unsigned int)_IOC_TYPE(cmd),
		(unsigned int)_IOC_NR(cmd), size, ptr_names[kind],
		kind == P_GOOD ? " holding " : " ", kind == P_GOOD ? value : 0);
	r = ioctl(f->fd, cmd, p.p);
	e = errno;
	if (!judge(r, e, &w) || r != 0)
		return;
	if (cmd == MEMLOG_IOC_SET_RING_SIZE) {
		sh->ring_size = value;
	} else if (cmd == MEMLOG_IOC_FILTER_UID) {
		f->all = value == MEMLOG_UID_ALL;
		if (!f->all)
			f->view = (uint32_t)map_uid(self->ns, value);
		f->last_seq = 0;
	} else if (cmd == MEMLOG_IOC_GET_VERSION) {
		uint32_t v;

		memcpy(&v, p.p, sizeof(v));
		if (v != MEMLOG_SCHEMA_VERSION) {
			char got[40];

			snprintf(got, sizeof(got), "version %u", v);
			fail(got, "version %u", MEMLOG_SCHEMA_VERSION);
		}
	} else if (cmd == MEMLOG_IOC_STATS) {
		struct memlog_stats s;

		memcpy(&s, p.p, sizeof(s));
		check_stats(f, &s);
	}
}

static unsigned long random_cmd(void)
{
	static const unsigned int sizes[] = { 0, 1, 4, 8, 16, 48, 56 };
	unsigned int dir = (unsigned int)rnd_below(4), nr, type, size;

	size = chance(70) ? sizes[rnd_below(7)] : (unsigned int)rnd_below(_IOC_SIZEMASK + 1);
	if (chance(70)) {
		type = MEMLOG_IOC_TYPE;
		nr = chance(50) ? (unsigned int)rnd_below(9) : (unsigned int)rnd_below(256);
	} else {
		do
			type = (unsigned int)rnd_below(256);
		while (vfs_type(type) || type == MEMLOG_IOC_TYPE);
		nr = (unsigned int)rnd_below(256);
	}
	if (dir == _IOC_NONE && chance(50))
		size = 0;
	return _IOC(dir, type, nr, size);
}

static void op_ioctl(struct dfd *f)
{
	unsigned long cmd;

	if (chance(35))
		cmd = defined_cmds[rnd_below(sizeof(defined_cmds) / sizeof(defined_cmds[0]))];
	else
		cmd = random_cmd();
	do_ioctl(f, cmd, pick_ptr_kind(75), pick_u32_arg(cmd));
}

/* Every number of memlog's type, every direction, several sizes; a few other types */
static void ioctl_sweep(struct dfd *f)
{
	static const unsigned int sizes[] = { 0, 4, 8, 16, 48 };

	for (unsigned int nr = 0; nr < 256; nr++)
		for (unsigned int dir = 0; dir < 4; dir++)
			for (unsigned int s = 0; s <= 5; s++) {
				unsigned int size = s < 5 ? sizes[s] :
					(unsigned int)rnd_below(_IOC_SIZEMASK + 1);
				unsigned long cmd = _IOC(dir, MEMLOG_IOC_TYPE, nr, size);

				do_ioctl(f, cmd, pick_ptr_kind(60), pick_u32_arg(cmd));
			}
	for (int i = 0; i < 256; i++)
		do_ioctl(f, random_cmd(), pick_ptr_kind(60), (uint32_t)rnd());
}

/* ---- sysctls ----------------------------------------------------------------------------- */

/* 0: must succeed with this value; 1: must fail EINVAL; 2: garbage, either */
struct sysctl_input {
	char text[6000];
	int kind;
	uint64_t value;
};

static struct sysctl_input pick_sysctl_input(bool ring)
{
	static const char *const garbage[] = {
		"abc", "\n", " 131072", "131072 262144", "0x20000", "1e6", "+131072",
		"131072abc", "  ", "\t-", "0b1", "131072\n\n", "--1",
	};
	uint64_t lo = ring ? MEMLOG_RING_SIZE_MIN : MEMLOG_MAX_BYTES_MIN;
	uint64_t hi = ring ? sh->max_ring : (1ULL << 30);
	struct sysctl_input in = { .kind = 0 };
	uint64_t v;

	switch (rnd_below(12)) {
	case 0:
		in.kind = 1;
		snprintf(in.text, sizeof(in.text), "%" PRIu64, lo - 1 - rnd_below(lo));
		break;
	case 1:
		if (ring) {
			in.kind = 1;
			snprintf(in.text, sizeof(in.text), "%u", MEMLOG_RING_SIZE_MAX + 1 +
				 (uint32_t)rnd_below(1000));
		} else {
			in.kind = 2;
			snprintf(in.text, sizeof(in.text), "%" PRIu64, (uint64_t)(1ULL << 40) + rnd());
		}
		break;
	case 2:
		in.kind = 1;
		snprintf(in.text, sizeof(in.text), "-%" PRIu64, chance(50) ? 1 : rnd_below(1ULL << 40));
		break;
	case 3:
		in.kind = ring ? 1 : 2;
		snprintf(in.text, sizeof(in.text), "%s", chance(50) ? "18446744073709551616" :
			 "99999999999999999999999999");
		break;
	case 4:
		in.kind = ring ? 1 : 2;
		snprintf(in.text, sizeof(in.text), "4294967296");
		break;
	case 5:
		in.kind = 2;
		snprintf(in.text, sizeof(in.text), "%s", garbage[rnd_below(sizeof(garbage) /
								       sizeof(garbage[0]))]);
		break;
	case 6:
		in.kind = 2;
		memset(in.text, '7', sizeof(in.text) - 1);
		in.text[sizeof(in.text) - 1] = 0;
		break;
	case 7:
		in.value = lo;
		snprintf(in.text, sizeof(in.text), "%" PRIu64 "\n", lo);
		break;
	default:
		v = lo + rnd_below(hi - lo + 1);
		in.value = v;
		snprintf(in.text, sizeof(in.text), "%" PRIu64 "%s", v, chance(50) ? "\n" : "");
		break;
	}
	return in;
}

static int64_t read_sysctl_value(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return (int64_t)strtoull(buf, NULL, 10);
}

static void op_sysctl(void)
{
	bool ring = chance(55), wr = chance(75);
	const char *path = ring ? SYSCTL_RING : SYSCTL_MAXB;
	struct want w = { 0 };
	struct sysctl_input in;
	int64_t r, before, after;
	int fd, e, mode = wr ? (chance(80) ? O_WRONLY : O_RDWR) : O_RDONLY;

	/* the driver's sysctls exist, readable by all (0644) */
	if (self->uid == 0 || !wr)
		want_upto(&w, 1 << 30);
	else
		want_err(&w, EACCES);
	calling(K_SYSCTL_OPEN, "open(%s, %s)", path, wr ? mode_name(mode) : "r");
	fd = open(path, mode | O_CLOEXEC);
	e = errno;
	if (!judge(fd, e, &w) || fd < 0)
		return;
	if (!wr) {
		char buf[64];

		memset(&w, 0, sizeof(w));
		want_upto(&w, 63);
		calling(K_SYSCTL_READ, "read(%s)", path);
		r = read(fd, buf, sizeof(buf) - 1);
		judge(r, errno, &w);
		close(fd);
		return;
	}
	in = pick_sysctl_input(ring);
	before = read_sysctl_value(path);
	memset(&w, 0, sizeof(w));
	if (!self->cap) {
		want_err(&w, EPERM);
		if (in.kind)	/* out of range too: either check may come first */
			want_err(&w, EINVAL);
	} else if (in.kind == 0)
		want_ok(&w, (int64_t)strlen(in.text));
	else if (in.kind == 1)
		want_err(&w, EINVAL);
	else
		want_upto(&w, (int64_t)strlen(in.text)), want_err(&w, EINVAL);
	if (self->cap && ring && in.kind != 1)
		want_err(&w, ENOMEM);
	calling(K_SYSCTL_WRITE, "write(%s, \"%.40s%s\" [%s], %zu)", path, in.text,
		strlen(in.text) > 40 ? "..." : "", in.kind == 0 ? "in range" : in.kind == 1 ?
		"out of range" : "garbage", strlen(in.text));
	r = write(fd, in.text, strlen(in.text));
	e = errno;
	close(fd);
	judge(r, e, &w);
	after = read_sysctl_value(path);
	if (after < 0)
		return;
	if (r >= 0 && in.kind == 0 && self->cap && after != (int64_t)in.value) {
		char got[64];

		snprintf(got, sizeof(got), "then it reads %" PRId64, after);
		fail(got, "%" PRIu64, in.value);
	} else if ((r < 0 || !self->cap) && after != before) {
		char got[64];

		snprintf(got, sizeof(got), "it changed from %" PRId64 " to %" PRId64, before, after);
		fail(got, "no change by a failed write");
	} else if (after < (ring ? MEMLOG_RING_SIZE_MIN : (int64_t)MEMLOG_MAX_BYTES_MIN) ||
		   (ring && after > MEMLOG_RING_SIZE_MAX)) {
		char got[64];

		snprintf(got, sizeof(got), "then it reads %" PRId64, after);
		fail(got, "a value in range");
	}
	if (ring)
		sh->ring_size = (uint32_t)after;
	else
		sh->max_bytes = (uint64_t)after;
}

/* ---- open and close ------------------------------------------------------------------------ */

static void op_open(void)
{
	static const int modes[] = { O_RDONLY, O_WRONLY, O_RDWR };
	int mode = modes[rnd_below(3)], extra = chance(20) ? O_NONBLOCK : 0, fd, e;
	struct want w = { 0 };
	char name[40];

	if (self->may_open)
		want_upto(&w, 1 << 20), want_err(&w, ENOMEM);
	else
		want_err(&w, EACCES);
	calling(K_OPEN, "open(%s, %s%s)", DEVICE, mode_name(mode), extra ? "|O_NONBLOCK" : "");
	fd = open(DEVICE, mode | extra | O_CLOEXEC);
	e = errno;
	if (!judge(fd, e, &w) || fd < 0)
		return;
	if (self->nfds >= MAX_FDS) {
		/* make room: close one that is no probe */
		for (int i = self->nfds - 1; i >= 0; i--)
			if (!self->fds[i].probe) {
				close(self->fds[i].fd);
				self->fds[i] = self->fds[--self->nfds];
				break;
			}
	}
	snprintf(name, sizeof(name), "fd%d:%s-%s%s", fd, actor_names[self->id], mode_name(mode),
		 self->ns == NS_CHILD ? "-after-unshare" : "");
	add_fd(fd, mode, name, false);
}

static void op_close(void)
{
	struct want w = { 0 };
	int i = (int)rnd_below((uint64_t)self->nfds), r;

	if (!self->nfds || self->fds[i].probe)
		return;
	want_ok(&w, 0);
	calling(K_CLOSE, "close(%s)", self->fds[i].name);
	r = close(self->fds[i].fd);
	judge(r, errno, &w);
	self->fds[i] = self->fds[--self->nfds];
}

/* ---- root without CAP_SYS_ADMIN --------------------------------------------------------- */

static void open_named(int mode, const char *what, bool probe);

static void nocap_probe(void)
{
	pid_t pid = fork();

	if (pid < 0)
		return;
	if (pid == 0) {
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct data[2];

		memset(data, 0, sizeof(data));
		if (syscall(SYS_capget, &hdr, data) == 0) {
			data[CAP_SYS_ADMIN / 32].effective &= ~(1U << (CAP_SYS_ADMIN % 32));
			data[CAP_SYS_ADMIN / 32].permitted &= ~(1U << (CAP_SYS_ADMIN % 32));
			if (syscall(SYS_capset, &hdr, data) == 0) {
				/* fds of its own: the parent's share cursors and views */
				for (int i = 0; i < self->nfds; i++)
					close(self->fds[i].fd);
				self->nfds = 0;
				self->cap = false;
				open_named(O_RDWR, "root-without-CAP_SYS_ADMIN-rw", false);
				open_named(O_RDONLY, "root-without-CAP_SYS_ADMIN", true);
				for (int i = 0; i < 12; i++) {
					struct dfd *f = pick_fd();

					if (chance(40))
						op_sysctl();
					else if (f)
						op_ioctl(f);
				}
			}
		}
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

/* ---- the actors ------------------------------------------------------------------------------ */

static void one_op(void)
{
	struct dfd *f = pick_fd();
	uint64_t what = rnd_below(100);

	if (!f || what < 5) {
		if (self->nfds < 3 || chance(60))
			op_open();
		else
			op_close();
		return;
	}
	if (what < 22)
		op_write(f);
	else if (what < 30)
		op_writev(f, chance(30));
	else if (what < 44)
		op_read(f);
	else if (what < 49)
		op_readv(f);
	else if (what < 53)
		op_lseek(f);
	else if (what < 55)
		op_pread_pwrite(f);
	else if (what < 59)
		op_poll(f);
	else if (what < 82)
		op_ioctl(f);
	else if (what < 90)
		op_sysctl();
	else if (what < 98) {
		/* a round trip: a reader with its own view, a writer to the same ring */
		struct dfd *rd = NULL, *wr = NULL;

		for (int i = 0; i < self->nfds; i++) {
			struct dfd *c = &self->fds[(i + (int)what) % self->nfds];

			if (!rd && readable(c) && !c->all && c->view == c->opener)
				rd = c;
		}
		for (int i = 0; rd && i < self->nfds; i++)
			if (writable(&self->fds[i]) && self->fds[i].opener == rd->opener)
				wr = &self->fds[i];
		if (rd && wr)
			op_roundtrip(rd, wr);
		else
			op_read(f);
	} else if (self->id == A_ROOT) {
		nocap_probe();
	} else {
		op_lseek(f);
	}
}

static void actor_loop(void)
{
	struct cmd c;

	while (read(self->cmd_fd, &c, sizeof(c)) == sizeof(c)) {
		uint32_t done = 0;

		rng_state = c.batch_seed;
		if (c.sweep) {
			sh->iteration = c.iteration;
			for (int i = 0; i < self->nfds; i++)
				if (!self->fds[i].probe) {
					ioctl_sweep(&self->fds[i]);
					break;
				}
		}
		for (; done < c.count; done++) {
			sh->iteration = c.iteration + done;
			one_op();
		}
		if (write(self->reply_fd, &done, sizeof(done)) != sizeof(done))
			_exit(1);
	}
	_exit(0);
}

static void die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(errno));
	_exit(2);
}

static void become(uint32_t uid, bool member)
{
	gid_t g = sh->dev_gid;

	if (setgroups(member ? 1 : 0, &g) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		die("setgroups/setresgid/setresuid");
}

static void open_named(int mode, const char *what, bool probe)
{
	char name[40];
	int fd = open(DEVICE, mode | O_CLOEXEC);

	if (fd < 0)
		die("open " DEVICE);
	snprintf(name, sizeof(name), "fd%d:%s%s", fd, what, probe ? "-probe" : "");
	add_fd(fd, mode, name, probe);
}

/* Set up actor @id in this (child) process; the userns actor needs @sync */
static void actor_setup(int id, int sync_to_parent, int sync_from_parent)
{
	self->id = id;
	self->ns = NS_INIT;
	switch (id) {
	case A_ROOT:
		self->cap = true;
		self->may_open = true;
		open_named(O_RDWR, "root-rw", false);
		open_named(O_RDONLY, "root", true);
		open_named(O_RDONLY, "root-r", false);
		break;
	case A_MEMBER:
	case A_OUTSIDER:
		/* an fd root opened and passed on: its identity is root's */
		open_named(O_RDWR, "passed-from-root-rw", false);
		open_named(O_RDONLY, "passed-from-root", true);
		self->uid = id == A_MEMBER ? sh->uid_member : sh->uid_outsider;
		become(self->uid, id == A_MEMBER);
		self->may_open = id == A_MEMBER;
		if (self->may_open) {
			open_named(O_RDWR, "member-rw", false);
			open_named(O_RDONLY, "member", true);
		}
		break;
	case A_USERNS: {
		char c = 'x';

		self->uid = sh->uid_userns;
		become(self->uid, true);
		self->may_open = true;
		open_named(O_RDWR, "userns-before-unshare-rw", false);
		open_named(O_RDONLY, "userns-before-unshare", true);
		if (unshare(CLONE_NEWUSER)) {
			snprintf(sh->userns_note, sizeof(sh->userns_note),
				 "unshare(CLONE_NEWUSER) failed: %s; the actor stays outside",
				 strerror(errno));
			c = 'n';
		}
		if (write(sync_to_parent, &c, 1) != 1 || read(sync_from_parent, &c, 1) != 1)
			die("userns sync");
		if (c == 'm') {
			self->ns = NS_CHILD;
			if (getuid() != 0)
				die("uid 0 in the new user namespace");
			open_named(O_RDWR, "userns-after-unshare-rw", false);
		}
		break;
	}
	}
}

static pid_t spawn_actor(int id, struct actor *a)
{
	int cmd[2], reply[2], up[2], down[2];
	pid_t pid;

	if (pipe(cmd) || pipe(reply) || pipe(up) || pipe(down))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(cmd[1]);
		close(reply[0]);
		self = a;
		self->cmd_fd = cmd[0];
		self->reply_fd = reply[1];
		actor_setup(id, up[1], down[0]);
		actor_loop();
	}
	close(cmd[0]);
	close(reply[1]);
	a->cmd_fd = cmd[1];
	a->reply_fd = reply[0];
	if (id == A_USERNS) {
		char c, path[64], map[64];
		int fd;
		bool ok = true;

		if (read(up[0], &c, 1) != 1)
			die("userns actor");
		if (c == 'x') {
			/* uid 0 inside is the member uid outside; gid likewise */
			const char *files[2] = { "uid_map", "gid_map" };

			for (int i = 0; i < 2 && ok; i++) {
				snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[i]);
				snprintf(map, sizeof(map), "0 %u 1\n", sh->uid_userns);
				fd = open(path, O_WRONLY);
				ok = fd >= 0 && write(fd, map, strlen(map)) == (ssize_t)strlen(map);
				if (!ok)
					snprintf(sh->userns_note, sizeof(sh->userns_note),
						 "writing %s failed: %s", path, strerror(errno));
				if (fd >= 0)
					close(fd);
			}
			c = ok ? 'm' : 'n';
		}
		if (write(down[1], &c, 1) != 1)
			die("userns actor");
	}
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	return pid;
}

static void watchdog(int sig)
{
	static const char msg[] =
		"{\"program\":\"memlog_fuzz\",\"ok\":false,\"reason\":\"watchdog: the run did "
		"not finish in time (a call that never returns?)\"}\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0 ||
	    write(STDERR_FILENO, "memlog_fuzz: FAIL: watchdog\n", 28) < 0)
		_exit(3);
	_exit(3);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void usage(void)
{
	fprintf(stderr, "usage: %s [--seed N] [--iterations N] [--seconds N] [--uid-base N]\n"
		"          [--max-ring BYTES] [--stop-at-first] [--trace]\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 16);
	uint64_t iterations = 20000, iter = 0, deadline, started;
	int seconds = 60, stop_first = 0, trace = 0;
	uint32_t uid_base = 30100, max_ring = 16U << 20;
	long long orig_ring, orig_maxb;
	struct actor *actors;
	pid_t pids[NACTORS];
	struct stat devst;
	char hung[CALL_LEN] = "";
	int hung_actor = -1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--stop-at-first")) {
			stop_first = 1;
			continue;
		}
		if (!strcmp(a, "--trace")) {
			trace = 1;
			continue;
		}
		if (!v)
			usage();
		if (!strcmp(a, "--seed"))
			seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--iterations"))
			iterations = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			seconds = atoi(v);
		else if (!strcmp(a, "--uid-base"))
			uid_base = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--max-ring"))
			max_ring = (uint32_t)strtoul(v, NULL, 0);
		else
			usage();
		i++;
	}
	if (seconds < 1 || max_ring < MEMLOG_RING_SIZE_MIN || max_ring > MEMLOG_RING_SIZE_MAX)
		usage();
	printf("memlog_fuzz seed=%llu\n", seed);
	fflush(stdout);
	if (geteuid() != 0) {
		fprintf(stderr, "%s: run me as root\n", prog);
		return 2;
	}
	signal(SIGALRM, watchdog);
	alarm((unsigned int)seconds + 300);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	actors = calloc(NACTORS, sizeof(*actors));	/* each actor's copy is its own */
	arena = mmap(NULL, ARENA + 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		     -1, 0);
	iovs = calloc(1024, sizeof(*iovs));
	if (sh == MAP_FAILED || !actors || arena == MAP_FAILED || !iovs)
		die("mmap");
	/* arena | PROT_NONE guard | hole (unmapped) | PROT_NONE */
	guard = arena + ARENA;
	hole = guard + PAGE;
	if (mprotect(guard, PAGE, PROT_NONE) || munmap(hole, PAGE) ||
	    mprotect(hole + PAGE, PAGE, PROT_NONE))
		die("mprotect");
	memset(arena, 0x3C, ARENA);

	sh->seed = seed;
	sh->trace = trace;
	sh->uid_member = uid_base;
	sh->uid_outsider = uid_base + 1;
	sh->uid_userns = uid_base + 2;
	sh->max_ring = max_ring;
	snprintf(sh->userns_note, sizeof(sh->userns_note), "ok");
	rng_state = seed;

	if (stat(DEVICE, &devst)) {
		fprintf(stderr, "%s: %s: %s (is the module loaded?)\n", prog, DEVICE, strerror(errno));
		return 2;
	}
	sh->dev_gid = devst.st_gid ? devst.st_gid : FALLBACK_GID;
	if (chown(DEVICE, 0, sh->dev_gid) || chmod(DEVICE, 0660))
		die("chown/chmod " DEVICE);
	orig_ring = read_sysctl_value(SYSCTL_RING);
	orig_maxb = read_sysctl_value(SYSCTL_MAXB);
	if (orig_ring < 0)
		die(SYSCTL_RING);
	sh->has_max_bytes = orig_maxb >= 0;
	sh->max_bytes = orig_maxb >= 0 ? (uint64_t)orig_maxb : 0;
	{
		/* a known ring size to start from */
		int fd = open(SYSCTL_RING, O_WRONLY);

		if (fd < 0 || write(fd, "1048576\n", 8) != 8)
			die("setting " SYSCTL_RING);
		close(fd);
		sh->ring_size = 1U << 20;
	}

	for (int i = 0; i < NACTORS; i++)
		pids[i] = spawn_actor(i, &actors[i]);

	started = now_ns();
	deadline = started + (uint64_t)seconds * 1000000000ULL;
	{
		bool swept[NACTORS] = { false };

		while (iter < iterations && now_ns() < deadline &&
		       !(stop_first && atomic_load(&sh->total_viol))) {
			uint64_t pick = rnd_below(100);
			int a = pick < 35 ? A_ROOT : pick < 65 ? A_MEMBER : pick < 75 ? A_OUTSIDER :
				A_USERNS;
			struct cmd c = {
				.iteration = iter, .batch_seed = rnd(),
				.count = 1 + (uint32_t)rnd_below(40), .sweep = !swept[a],
			};
			struct pollfd p = { .fd = actors[a].reply_fd, .events = POLLIN };
			uint32_t done;

			if (c.count > iterations - iter)
				c.count = (uint32_t)(iterations - iter);
			swept[a] = true;
			if (write(actors[a].cmd_fd, &c, sizeof(c)) != sizeof(c) ||
			    poll(&p, 1, 120000) != 1 ||
			    read(actors[a].reply_fd, &done, sizeof(done)) != sizeof(done)) {
				hung_actor = a;
				snprintf(hung, sizeof(hung), "%s", sh->current[a]);
				break;
			}
			iter += c.count;
		}
	}
	for (int i = 0; i < NACTORS; i++)
		close(actors[i].cmd_fd);
	for (int i = 0; i < NACTORS; i++) {
		uint64_t give_up = now_ns() + 20000000000ULL;

		if (i == hung_actor)
			kill(pids[i], SIGKILL);
		/* one stuck in the kernel cannot be killed: do not wait for ever */
		while (waitpid(pids[i], NULL, WNOHANG) == 0 && now_ns() < give_up)
			usleep(20000);
	}

	/* leave the guest as it was */
	{
		char text[32];
		int fd;

		snprintf(text, sizeof(text), "%lld\n", orig_ring);
		fd = open(SYSCTL_RING, O_WRONLY);
		if (fd < 0 || write(fd, text, strlen(text)) < 0)
			fprintf(stderr, "%s: restoring %s: %s\n", prog, SYSCTL_RING, strerror(errno));
		if (fd >= 0)
			close(fd);
		if (orig_maxb >= 0) {
			snprintf(text, sizeof(text), "%lld\n", orig_maxb);
			fd = open(SYSCTL_MAXB, O_WRONLY);
			if (fd < 0 || write(fd, text, strlen(text)) < 0)
				fprintf(stderr, "%s: restoring %s: %s\n", prog, SYSCTL_MAXB,
					strerror(errno));
			if (fd >= 0)
				close(fd);
		}
		if (chown(DEVICE, devst.st_uid, devst.st_gid) || chmod(DEVICE, devst.st_mode & 07777))
			fprintf(stderr, "%s: restoring %s: %s\n", prog, DEVICE, strerror(errno));
	}

	{
		uint64_t total = atomic_load(&sh->total_viol);
		int nv = atomic_load(&sh->nviol);
		char reason[600] = "";
		bool ok = !total && hung_actor < 0;

		if (nv > MAX_VIOL)
			nv = MAX_VIOL;
		if (hung_actor >= 0)
			snprintf(reason, sizeof(reason), "actor %s: a call did not return within "
				 "120 s: %s", actor_names[hung_actor], hung);
		else if (nv)
			snprintf(reason, sizeof(reason), "iteration %" PRIu64 ", actor %s: %s = %s; "
				 "expected %s", sh->viol[0].iteration, actor_names[sh->viol[0].actor],
				 sh->viol[0].call, sh->viol[0].got, sh->viol[0].want);
		printf("{\"program\":\"memlog_fuzz\",\"ok\":%s,\"seed\":%llu,\"iterations\":%" PRIu64
		       ",\"seconds\":%.1f,\"reason\":", ok ? "true" : "false", seed, iter,
		       (now_ns() - started) / 1e9);
		json_str(stdout, reason);
		printf(",\"violations_total\":%" PRIu64 ",\"violations\":[", total);
		for (int i = 0; i < nv; i++) {
			printf("%s{\"iteration\":%" PRIu64 ",\"actor\":\"%s\",\"call\":", i ? "," : "",
			       sh->viol[i].iteration, actor_names[sh->viol[i].actor]);
			json_str(stdout, sh->viol[i].call);
			printf(",\"got\":");
			json_str(stdout, sh->viol[i].got);
			printf(",\"expected\":");
			json_str(stdout, sh->viol[i].want);
			printf("}");
		}
		printf("],\"calls\":{");
		for (int c = 0; c < NCALLS; c++)
			printf("%s\"%s\":%" PRIu64, c ? "," : "", call_names[c],
			       atomic_load(&sh->calls[c]));
		printf("},\"userns\":");
		json_str(stdout, sh->userns_note);
		printf(",\"max_bytes_sysctl\":%s}\n", sh->has_max_bytes ? "true" : "false");
		fflush(stdout);
		if (!ok) {
			fprintf(stderr, "%s: FAIL seed=%llu: %s\n", prog, seed, reason);
			return 1;
		}
	}
	return 0;
}
