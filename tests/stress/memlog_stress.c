// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog_stress: many writers, readers and an admin on /dev/memlog at once,
 * with one writer stalled in a page fault (userfaultfd) for most of the run.
 *
 * Run as root in a throw-away guest with the memlog module loaded:
 *
 *   memlog_stress [--seconds 30] [--seed N] [--writers 6] [--uids 3]
 *                 [--uid-base 30000] [--latency-limit 5] [--max-ring BYTES]
 *                 [--ns-uids 0] [--max-bytes BYTES]
 *
 * --ns-uids N adds a flood: N writers, each the root of a user namespace of
 * its own that one user (uid-base + 60) made, so N uids that count as one
 * user. --max-bytes sets kernel.memlog.max_bytes (default: room for every
 * uid's ring), small enough that the flood uses it up and the fair share
 * decides: the quiet uid, far below its share, must still lose nothing and
 * never get ENOSPC.
 *
 * Every process but the stalled writer measures each device, sysctl and
 * close() call it makes; the parent watches the calls in flight and fails
 * the run if one takes longer than --latency-limit seconds (the contract:
 * "a writer stalled in a page fault delays only itself").  After the run it
 * checks what every reader got (byte-exact records, seq order, uids), the
 * exact accounting (per uid: successful writes == records read + GET_LOST
 * of a reader opened before that uid's first write) and STATS.
 *
 * Output: one JSON line on stdout; exit 0 when every check passed, 1 with a
 * one-line reason on stderr when one did not, 2 when the run could not be
 * set up, 3 when the watchdog fired.  See tests/stress/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memlog.h>
#include <linux/userfaultfd.h>

#define DEVICE		"/dev/memlog"
#define SYSCTL_RING	"/proc/sys/kernel/memlog/ring_size"
#define SYSCTL_MAXB	"/proc/sys/kernel/memlog/max_bytes"
#define HDR		((uint32_t)sizeof(struct memlog_record_header))
#define RECBUF		(HDR + MEMLOG_RECORD_MAX)
#define FALLBACK_GID	30999	/* the node's group if it has none (root) */

#define MAX_UIDS	42	/* noisy uids + the quiet one + the stalled one + namespaces */
#define MAX_NS_UIDS	32
/*
 * How long a namespace writer and root wait for each other's half of the uid
 * map: a limit for a hang, not a measure (a slow debug kernel under TCG took
 * more than 30 s to start 16 of them beside another guest)
 */
#define NS_MAP_WAIT_NS	120000000000ULL
#define MAX_WRITERS	72
#define MAX_PROCS	160
#define MSG_SLOTS	40
#define MSG_LEN		300

#define BLOB_MAGIC	0x4D4C5354U	/* 'MLST' */
#define BLOB_HDR	32		/* struct blob below */
#define STALL_LEN	1000
#define STALL_HEAD	100		/* bytes of the stalled write before the fault */
#define QUIET_BUDGET	(20U << 10)	/* record bytes the quiet uid may ever write */
#define PAGE		4096

/* The first BLOB_HDR bytes of every blob of at least that length */
struct blob {
	uint32_t magic;
	uint32_t nonce;		/* this run's */
	uint16_t writer;
	uint16_t pad;
	uint32_t counter;	/* per writer, strictly increasing */
	uint32_t length;	/* the whole blob */
	uint32_t checksum;	/* FNV-1a of the blob with this field 0 */
	uint64_t reserved;
};

enum check {
	C_BYTES, C_HEADER, C_SEQ, C_UID, C_ORDER, C_SESSION, C_ACCOUNT,
	C_QUIET, C_STATS, C_LATENCY, C_STALL, C_ERRNO, C_LOST, C_POLL,
	C_SYSCTL, C_PROC, NCHECK
};

static const char *const check_names[NCHECK] = {
	"bytes", "header", "seq", "uid", "writer_order", "session", "accounting",
	"quiet_uid", "stats", "latency", "stall", "errno", "get_lost", "poll",
	"sysctl", "processes",
};

enum op {
	OP_NONE, OP_OPEN, OP_CLOSE, OP_WRITE, OP_WRITEV, OP_PWRITEV2, OP_READ,
	OP_POLL, OP_STATS, OP_GET_LOST, OP_FILTER, OP_LSEEK, OP_CLEAR,
	OP_SYSCTL_WRITE, OP_SET_RING_SIZE, OP_SYSCTL_READ, OP_SESSION, NOPS
};

/* Which violation the one-line reason names: the first of the gravest kind */
static const enum check gravity[NCHECK] = {
	C_PROC, C_STALL, C_LATENCY, C_UID, C_BYTES, C_HEADER, C_SEQ, C_ORDER,
	C_SESSION, C_QUIET, C_ACCOUNT, C_STATS, C_ERRNO, C_LOST, C_POLL, C_SYSCTL,
};

static const char *const op_names[NOPS] = {
	"none", "open", "close", "write", "writev", "pwritev2", "read", "poll",
	"STATS", "GET_LOST", "FILTER_UID", "lseek", "CLEAR", "sysctl write",
	"SET_RING_SIZE", "sysctl read", "SET_SESSION",
};

enum role { R_MAIN, R_WRITER, R_QUIET, R_STALL, R_ACCT, R_TAIL, R_DUMP, R_ALL, R_ADMIN };

static const char *const role_names[] = {
	"main", "writer", "quiet-writer", "stalled-writer", "uid-reader",
	"tail-reader", "dump-reader", "all-reader", "admin",
};

enum phase { PH_SETUP, PH_RUN, PH_STOP, PH_DRAIN };

struct slot {
	_Atomic int pid;
	int role;
	int idx;
	uint32_t uid;
	_Atomic uint64_t op_start_ns;	/* 0: no call in flight */
	_Atomic int op;
	uint64_t ops;
	uint64_t max_lat_ns;
	int max_lat_op;
	uint64_t max_stall_lat_ns;	/* calls overlapping the stall */
	int max_stall_lat_op;
	_Atomic int flagged;		/* its in-flight call was reported */
	_Atomic int ready;
};

struct writer_info {
	_Atomic int pid;
	int uidx;
	uint32_t uid;
	bool ns;			/* root of a user namespace mapped to uid */
	_Atomic int ns_state;		/* 1: unshared, waits for its map; 2: mapped */
	_Atomic uint64_t ok, emsgsize, enospc, enomem;
};

struct uid_result {
	_Atomic int done;
	_Atomic uint64_t read;
	uint64_t lost;
	int lost_errno;			/* GET_LOST failed with this */
	uint64_t foreign;
};

struct shared {
	uint64_t seed;
	uint32_t nonce;
	int nuids;			/* all uids: noisy, quiet, stalled, namespaces */
	int quiet_uidx, stall_uidx, ns_uidx, nns;
	uint32_t ns_owner;		/* the user whose namespaces flood */
	unsigned long long max_bytes;	/* kernel.memlog.max_bytes during the run */
	uint32_t uids[MAX_UIDS];
	uint64_t baseline_writes[MAX_UIDS];
	int nwriters;
	int stall_writer;		/* index in writers[] */
	int latency_limit_s;
	uint32_t max_ring;
	_Atomic int phase;
	_Atomic int stall_go;
	_Atomic int stall_state;	/* 0 waiting, 1 writing, 2 done */
	_Atomic int64_t stall_ret;
	_Atomic int stall_errno;
	_Atomic uint64_t stall_start_ns, stall_end_ns;
	_Atomic uint32_t ring_cur, ring_lo, ring_min_ever;
	_Atomic uint64_t ring_epoch;
	_Atomic uint64_t writes_ok[MAX_UIDS];
	_Atomic uint64_t quiet_bytes;
	struct writer_info writers[MAX_WRITERS];
	struct uid_result acct[MAX_UIDS];
	struct uid_result tail;
	_Atomic uint64_t resizes, clears, rewinds, records_read, polls, stats_calls;
	_Atomic uint64_t checks[NCHECK], viol[NCHECK];
	_Atomic int nmsg;
	char msgs[MSG_SLOTS][MSG_LEN];
	int nslots;
	struct slot slots[MAX_PROCS];
};

static struct shared *sh;
static struct slot *me;		/* this process's slot */
static uint64_t rng_state;
static gid_t dev_gid;
static const char *prog = "memlog_stress";
static int g_uffd = -1;		/* the parent's alone: workers close it */

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(void)
{
	return splitmix(&rng_state);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void seed_rng(uint64_t seed, int role, int idx)
{
	rng_state = seed ^ ((uint64_t)role << 40) ^ ((uint64_t)idx << 20);
	rnd();
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint32_t fnv1a(const uint8_t *p, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619U;
	}
	return h;
}

#define FNV_INIT 2166136261U

static uint32_t blob_checksum(const uint8_t *b, uint32_t len)
{
	static const uint8_t zero[4];
	uint32_t h = fnv1a(b, offsetof(struct blob, checksum), FNV_INIT);

	h = fnv1a(zero, 4, h);
	return fnv1a(b + offsetof(struct blob, checksum) + 4,
		     len - offsetof(struct blob, checksum) - 4, h);
}

/* The content of every blob shorter than BLOB_HDR bytes */
static uint8_t small_byte(uint32_t len, uint32_t k)
{
	return (uint8_t)((k * 131U + len * 7U + sh->nonce) ^ 0x5AU);
}

static uint32_t record_size(uint32_t len)
{
	return (HDR + len + 7U) & ~7U;
}

static void session_of(int w, uint8_t id[MEMLOG_SESSION_ID_LEN])
{
	memset(id, 0, MEMLOG_SESSION_ID_LEN);
	memcpy(id, "MLST", 4);
	memcpy(id + 4, &sh->nonce, 4);
	id[8] = (uint8_t)w;
	id[9] = 0xEE;
}

/* ---- violations --------------------------------------------------------- */

static void check(enum check c)
{
	atomic_fetch_add(&sh->checks[c], 1);
}

__attribute__((format(printf, 2, 3)))
static void violation(enum check c, const char *fmt, ...)
{
	char text[MSG_LEN - 80];
	va_list ap;
	int n;

	atomic_fetch_add(&sh->checks[c], 1);
	if (atomic_fetch_add(&sh->viol[c], 1) >= 4)
		return;	/* counted; the first few of each kind are kept */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = atomic_fetch_add(&sh->nmsg, 1);
	if (n >= MSG_SLOTS)
		return;
	snprintf(sh->msgs[n], MSG_LEN, "%s: %s %d (uid %u): %s", check_names[c],
		 me ? role_names[me->role] : "main", me ? me->idx : 0,
		 me ? me->uid : 0, text);
}

/* ---- measured calls --------------------------------------------------------- */

static void op_begin(enum op op)
{
	atomic_store(&me->op, op);
	atomic_store(&me->op_start_ns, now_ns());
}

static void op_end(void)
{
	uint64_t start = atomic_load(&me->op_start_ns);
	uint64_t end = now_ns(), lat = end - start;
	uint64_t s0 = atomic_load(&sh->stall_start_ns);
	uint64_t s1 = atomic_load(&sh->stall_end_ns);
	int op = atomic_load(&me->op);

	atomic_store(&me->op_start_ns, 0);
	me->ops++;
	if (lat > me->max_lat_ns) {
		me->max_lat_ns = lat;
		me->max_lat_op = op;
	}
	if (s0 && start < (s1 ? s1 : end) && end > s0 && lat > me->max_stall_lat_ns) {
		me->max_stall_lat_ns = lat;
		me->max_stall_lat_op = op;
	}
	if (op != OP_POLL && lat > (uint64_t)sh->latency_limit_s * 1000000000ULL &&
	    !atomic_exchange(&me->flagged, 1))
		violation(C_LATENCY, "%s took %.1f s (limit %d s)", op_names[op],
			  lat / 1e9, sh->latency_limit_s);
	atomic_store(&me->flagged, 0);
}

static int m_open(const char *path, int flags)
{
	int fd;

	op_begin(OP_OPEN);
	fd = open(path, flags | O_CLOEXEC);
	op_end();
	return fd;
}

static void m_close(int fd)
{
	op_begin(OP_CLOSE);
	close(fd);
	op_end();
}

static int m_ioctl(int fd, enum op op, unsigned long cmd, void *arg)
{
	int r;

	op_begin(op);
	r = ioctl(fd, cmd, arg);
	op_end();
	return r;
}

static ssize_t m_read(int fd, void *buf, size_t n)
{
	ssize_t r;

	op_begin(OP_READ);
	r = read(fd, buf, n);
	op_end();
	return r;
}

/* Read a sysctl: its value, or -1 with errno */
static long long read_sysctl(const char *path)
{
	char buf[64] = "";
	ssize_t n;
	int fd, e;

	fd = m_open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	op_begin(OP_SYSCTL_READ);
	n = read(fd, buf, sizeof(buf) - 1);
	e = errno;
	op_end();
	m_close(fd);
	if (n <= 0) {
		errno = n < 0 ? e : EIO;
		return -1;
	}
	buf[n] = 0;
	return strtoll(buf, NULL, 10);
}

/* Write a sysctl: 0, or -1 with errno */
static int write_sysctl(const char *path, unsigned long long value)
{
	char buf[32];
	ssize_t n;
	int fd, e, len;

	len = snprintf(buf, sizeof(buf), "%llu\n", value);
	fd = m_open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	op_begin(OP_SYSCTL_WRITE);
	n = write(fd, buf, (size_t)len);
	e = errno;
	op_end();
	m_close(fd);
	if (n == len)
		return 0;
	errno = n < 0 ? e : EIO;
	return -1;
}

/* ---- identities ------------------------------------------------------------ */

static void become(uint32_t uid)
{
	gid_t groups[1] = { dev_gid };

	if (uid == 0)
		return;
	if (setgroups(1, groups) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid)) {
		violation(C_PROC, "cannot become uid %u: %s", uid, strerror(errno));
		_exit(1);
	}
}

/*
 * A namespace writer: become the flood's owner, make a user namespace, wait
 * for the parent (root) to map its uid 0 to @w's uid, then be that uid 0.
 */
static void enter_namespace(int w)
{
	struct writer_info *wi = &sh->writers[w];
	gid_t groups[1] = { dev_gid };
	uint64_t give_up = now_ns() + NS_MAP_WAIT_NS;

	if (setgroups(1, groups) || setresgid(sh->ns_owner, sh->ns_owner, sh->ns_owner) ||
	    setresuid(sh->ns_owner, sh->ns_owner, sh->ns_owner) || unshare(CLONE_NEWUSER)) {
		violation(C_PROC, "uid %u cannot make a user namespace: %s", sh->ns_owner,
			  strerror(errno));
		_exit(1);
	}
	atomic_store(&wi->pid, getpid());	/* the parent maps /proc/PID/uid_map */
	atomic_store(&wi->ns_state, 1);
	while (atomic_load(&wi->ns_state) != 2) {
		if (now_ns() > give_up) {
			violation(C_PROC, "namespace writer %d: its uid map was never written", w);
			_exit(1);
		}
		sleep_ms(5);
	}
	if (setresuid(0, 0, 0)) {
		violation(C_PROC, "namespace writer %d cannot become its uid 0 (uid %u): %s", w,
			  wi->uid, strerror(errno));
		_exit(1);
	}
}

static int open_device(int flags)
{
	int fd = m_open(DEVICE, flags);

	if (fd < 0) {
		violation(C_ERRNO, "open(%s) failed: %s", DEVICE, strerror(errno));
		_exit(1);
	}
	return fd;
}

static int filter(int fd, uint32_t uid)
{
	int r = m_ioctl(fd, OP_FILTER, MEMLOG_IOC_FILTER_UID, &uid);

	if (r)
		violation(C_ERRNO, "FILTER_UID(%u) as root failed: %s", uid, strerror(errno));
	return r;
}

static bool get_lost(int fd, uint64_t *lost)
{
	if (!m_ioctl(fd, OP_GET_LOST, MEMLOG_IOC_GET_LOST, lost))
		return true;
	violation(C_LOST, "GET_LOST failed: %s", strerror(errno));
	return false;
}

static int uid_index(uint32_t uid)
{
	for (int i = 0; i < sh->nuids; i++)
		if (sh->uids[i] == uid)
			return i;
	return -1;
}

static int writer_of_pid(uint32_t pid)
{
	for (int w = 0; w < sh->nwriters; w++)
		if ((uint32_t)atomic_load(&sh->writers[w].pid) == pid)
			return w;
	return -1;
}

/* ---- record checks ------------------------------------------------------------ */

struct rstate {
	int64_t view;			/* a uid, or -1 for every uid */
	uint64_t last_seq;
	uint64_t last_lost;
	uint32_t last_counter[MAX_WRITERS];
	bool seen[MAX_WRITERS];
	uint64_t nread, foreign;
};

static void rstate_rewind(struct rstate *st)
{
	st->last_seq = 0;
	st->last_lost = 0;
	memset(st->seen, 0, sizeof(st->seen));
}

/* The blob of writer @w is as written; returns its counter, or -1 if it has none */
static int64_t check_blob(const uint8_t *b, uint32_t len, int w, uint64_t seq)
{
	struct blob bh;

	check(C_BYTES);
	if (w == sh->stall_writer) {
		bool ok = len == STALL_LEN;

		for (uint32_t k = 0; ok && k < len; k++)
			ok = b[k] == (k < STALL_HEAD ? 0xA5 : 0x5C) ||
			     (k >= STALL_HEAD && b[k] == 0);
		if (!ok)
			violation(C_BYTES, "seq %" PRIu64 ": the stalled writer's record "
				  "(%u bytes) is not what it wrote", seq, len);
		return -1;
	}
	if (len < BLOB_HDR) {
		for (uint32_t k = 0; k < len; k++)
			if (b[k] != small_byte(len, k)) {
				violation(C_BYTES, "seq %" PRIu64 ": %u-byte record of writer %d "
					  "differs at byte %u", seq, len, w, k);
				break;
			}
		return -1;
	}
	memcpy(&bh, b, sizeof(bh));
	if (bh.magic != BLOB_MAGIC || bh.nonce != sh->nonce) {
		violation(C_BYTES, "seq %" PRIu64 ": %u-byte record of writer %d does not "
			  "start a blob (a piece of a record?)", seq, len, w);
		return -1;
	}
	if (bh.length != len) {
		violation(C_BYTES, "seq %" PRIu64 ": writer %d wrote %u bytes, the record "
			  "holds %u", seq, w, bh.length, len);
		return -1;
	}
	if (bh.writer != w) {
		violation(C_UID, "seq %" PRIu64 ": blob of writer %u came from the pid of "
			  "writer %d", seq, bh.writer, w);
		return -1;
	}
	if (blob_checksum(b, len) != bh.checksum) {
		violation(C_BYTES, "seq %" PRIu64 ": checksum mismatch in the %u-byte record "
			  "of writer %d, counter %u", seq, len, w, bh.counter);
		return -1;
	}
	return bh.counter;
}

static void check_record(const uint8_t *buf, ssize_t n, struct rstate *st)
{
	struct memlog_record_header h;
	uint8_t want_session[MEMLOG_SESSION_ID_LEN];
	int64_t counter;
	uint64_t seq;
	int w, ui;

	check(C_HEADER);
	if (n < (ssize_t)HDR) {
		violation(C_HEADER, "read returned %zd bytes, less than a header", n);
		return;
	}
	memcpy(&h, buf, HDR);
	if (h.magic != MEMLOG_MAGIC || h.schema_version != MEMLOG_SCHEMA_VERSION ||
	    h.reserved || h.length != (uint64_t)n - HDR || !h.length ||
	    h.length > MEMLOG_RECORD_MAX) {
		violation(C_HEADER, "bad header: magic %#x version %u length %u reserved %u "
			  "for a %zd-byte read", h.magic, h.schema_version, h.length,
			  h.reserved, n);
		return;
	}
	seq = h.seq;
	st->nread++;
	atomic_fetch_add(&sh->records_read, 1);
	check(C_SEQ);
	if (seq <= st->last_seq)
		violation(C_SEQ, "seq %" PRIu64 " after %" PRIu64 " in one pass", seq,
			  st->last_seq);
	st->last_seq = seq;

	check(C_UID);
	if (st->view >= 0 && h.uid != (uint32_t)st->view)
		violation(C_UID, "record seq %" PRIu64 " of uid %u in the view of uid %" PRId64,
			  seq, h.uid, st->view);
	w = writer_of_pid(h.pid);
	if (w < 0) {
		ui = uid_index(h.uid);
		if (ui >= 0)
			violation(C_UID, "record seq %" PRIu64 " of uid %u from pid %u, which "
				  "is no writer of this run", seq, h.uid, h.pid);
		else
			st->foreign++;
		return;
	}
	if (h.uid != sh->writers[w].uid)
		violation(C_UID, "record seq %" PRIu64 " of writer %d (uid %u) is stamped "
			  "uid %u", seq, w, sh->writers[w].uid, h.uid);
	check(C_SESSION);
	if (w == sh->stall_writer)
		memset(want_session, 0, sizeof(want_session));
	else
		session_of(w, want_session);
	if (memcmp(h.session_id, want_session, sizeof(want_session)))
		violation(C_SESSION, "record seq %" PRIu64 " of writer %d has another "
			  "writer's session id", seq, w);
	counter = check_blob(buf + HDR, h.length, w, seq);
	if (counter >= 0) {
		check(C_ORDER);
		if (st->seen[w] && (uint32_t)counter <= st->last_counter[w])
			violation(C_ORDER, "writer %d's record %" PRId64 " after its record %u",
				  w, counter, st->last_counter[w]);
		st->seen[w] = true;
		st->last_counter[w] = (uint32_t)counter;
	}
}

/* Poll GET_LOST: it never goes down within a pass. False if it failed. */
static bool poll_lost(int fd, struct rstate *st)
{
	uint64_t lost;

	if (!get_lost(fd, &lost))
		return false;
	check(C_LOST);
	if (lost < st->last_lost)
		violation(C_LOST, "GET_LOST went down from %" PRIu64 " to %" PRIu64,
			  st->last_lost, lost);
	st->last_lost = lost;
	return true;
}

/* Read records until none is left (or @max); returns how many */
static uint64_t drain(int fd, uint8_t *buf, struct rstate *st, uint64_t max)
{
	uint64_t got = 0;
	ssize_t n;

	while (got < max) {
		n = m_read(fd, buf, RECBUF);
		if (n == 0)
			break;
		if (n < 0) {
			violation(C_ERRNO, "read with a %u-byte buffer failed: %s", RECBUF,
				  strerror(errno));
			sleep_ms(10);
			break;
		}
		check_record(buf, n, st);
		got++;
	}
	return got;
}

static void check_stats(const struct memlog_stats *s, bool one_uid, uint64_t prev_writes)
{
	check(C_STATS);
	if (s->records_in_ring > s->total_writes || s->total_evictions > s->total_writes ||
	    s->total_writes < prev_writes ||
	    (one_uid && (s->ring_bytes > s->ring_capacity ||
			 s->ring_bytes < s->records_in_ring * (HDR + 1) ||
			 s->ring_capacity > MEMLOG_RING_SIZE_MAX ||
			 (!s->records_in_ring) != (!s->oldest_ts_ns) ||
			 (!s->records_in_ring) != (!s->newest_ts_ns))))
		violation(C_STATS, "inconsistent STATS: writes %" PRIu64 " (before %" PRIu64
			  ") evictions %" PRIu64 " records %" PRIu64 " bytes %u capacity %u "
			  "oldest %" PRIu64 " newest %" PRIu64, (uint64_t)s->total_writes, prev_writes,
			  (uint64_t)s->total_evictions, (uint64_t)s->records_in_ring, s->ring_bytes,
			  s->ring_capacity, (uint64_t)s->oldest_ts_ns, (uint64_t)s->newest_ts_ns);
}

/* ---- writers -------------------------------------------------------------------- */

static uint32_t pick_len(void)
{
	uint64_t r = rnd_below(100);

	if (r < 55)
		return 1 + (uint32_t)rnd_below(128);
	if (r < 80)
		return 129 + (uint32_t)rnd_below(2048 - 128);
	if (r < 96)
		return 2049 + (uint32_t)rnd_below(MEMLOG_RECORD_MAX - 2049);
	return r < 98 ? MEMLOG_RECORD_MAX : 1 + (uint32_t)rnd_below(BLOB_HDR);
}

static void fill_blob(uint8_t *b, uint32_t len, int w, uint32_t counter)
{
	struct blob bh = {
		.magic = BLOB_MAGIC, .nonce = sh->nonce, .writer = (uint16_t)w,
		.counter = counter, .length = len,
	};
	uint64_t x = ((uint64_t)w << 32) ^ counter ^ sh->seed;

	if (len < BLOB_HDR) {
		for (uint32_t k = 0; k < len; k++)
			b[k] = small_byte(len, k);
		return;
	}
	for (uint32_t k = BLOB_HDR; k < len; k += 8) {
		uint64_t v = splitmix(&x);

		memcpy(b + k, &v, len - k < 8 ? len - k : 8);
	}
	memcpy(b, &bh, sizeof(bh));
	bh.checksum = blob_checksum(b, len);
	memcpy(b, &bh, sizeof(bh));
}

static int writer_open(int w)
{
	struct memlog_session s;
	int fd = open_device(O_WRONLY);

	session_of(w, s.id);
	if (m_ioctl(fd, OP_SESSION, MEMLOG_IOC_SET_SESSION, &s))
		violation(C_ERRNO, "SET_SESSION failed: %s", strerror(errno));
	return fd;
}

/* EMSGSIZE is right only if the record may not have fitted the ring then */
static bool emsgsize_ok(uint32_t len, uint32_t lo1, uint32_t lo2, bool resized)
{
	uint32_t lo = lo1 < lo2 ? lo1 : lo2;

	if (resized && atomic_load(&sh->ring_min_ever) < lo)
		lo = atomic_load(&sh->ring_min_ever);
	return record_size(len) + 8 > (lo & ~7U);
}

static void writer_main(int w, bool quiet)
{
	struct writer_info *wi = &sh->writers[w];
	uint8_t *buf = malloc(MEMLOG_RECORD_MAX);
	uint32_t counter = 0;
	int fd;

	if (!buf)
		_exit(1);
	if (wi->ns)
		enter_namespace(w);
	else
		become(wi->uid);
	atomic_store(&wi->pid, getpid());
	fd = writer_open(w);
	atomic_store(&me->ready, 1);
	while (atomic_load(&sh->phase) == PH_SETUP)
		sleep_ms(5);
	while (atomic_load(&sh->phase) == PH_RUN) {
		uint32_t len, lo1, lo2;
		uint64_t ep1, ep2;
		struct iovec iov[8];
		int niov = 1, how = 0, e;
		enum op op = OP_WRITE;
		ssize_t r;

		if (quiet) {
			len = 1 + (uint32_t)rnd_below(48);
			if (atomic_load(&sh->quiet_bytes) + record_size(len) > QUIET_BUDGET) {
				sleep_ms(50);
				continue;
			}
			atomic_fetch_add(&sh->quiet_bytes, record_size(len));
		} else {
			len = pick_len();
			how = (int)rnd_below(10);
		}
		fill_blob(buf, len, w, ++counter);
		iov[0].iov_base = buf;
		iov[0].iov_len = len;
		if (how >= 7) {
			/* cut the blob at random points, empty pieces included */
			uint32_t off = 0;

			niov = 1 + (int)rnd_below(8);
			for (int i = 0; i < niov; i++) {
				uint32_t piece = i == niov - 1 ? len - off :
					(uint32_t)rnd_below(len - off + 1);

				iov[i].iov_base = buf + off;
				iov[i].iov_len = piece;
				off += piece;
			}
		}
		ep1 = atomic_load(&sh->ring_epoch);
		lo1 = atomic_load(&sh->ring_lo);
		if (how == 9) {
			op = OP_PWRITEV2;
			op_begin(op);
			r = pwritev2(fd, iov, niov, -1, 0);
		} else if (how >= 7) {
			op = OP_WRITEV;
			op_begin(op);
			r = writev(fd, iov, niov);
		} else {
			op_begin(op);
			r = write(fd, buf, len);
		}
		e = errno;
		op_end();
		lo2 = atomic_load(&sh->ring_lo);
		ep2 = atomic_load(&sh->ring_epoch);
		check(C_ERRNO);
		if (r == (ssize_t)len) {
			atomic_fetch_add(&wi->ok, 1);
			atomic_fetch_add(&sh->writes_ok[wi->uidx], 1);
		} else if (r >= 0) {
			violation(C_ERRNO, "%s of %u bytes in %d iovecs returned %zd",
				  op_names[op], len, niov, r);
		} else if (e == EMSGSIZE && emsgsize_ok(len, lo1, lo2, ep1 != ep2)) {
			atomic_fetch_add(&wi->emsgsize, 1);
		} else if (e == ENOSPC) {
			atomic_fetch_add(&wi->enospc, 1);
			/* 20 KiB is far below any share: room must come from others */
			if (quiet)
				violation(C_QUIET, "the quiet uid %u got ENOSPC writing %u bytes "
					  "(%" PRIu64 " bytes in all): its share was not kept",
					  wi->uid, len, atomic_load(&sh->quiet_bytes));
		} else if (e == ENOMEM) {
			atomic_fetch_add(&wi->enomem, 1);
		} else {
			violation(C_ERRNO, "%s of %u bytes in %d iovecs failed: %s (ring size "
				  "at least %u)", op_names[op], len, niov, strerror(e),
				  lo1 < lo2 ? lo1 : lo2);
		}
		if (quiet)
			sleep_ms(100 + (unsigned int)rnd_below(200));
		else if (rnd_below(4) == 0)
			usleep((useconds_t)rnd_below(2000));
		if (rnd_below(500) == 0) {
			m_close(fd);
			fd = writer_open(w);
		}
	}
	m_close(fd);
	_exit(0);
}

/* ---- the stalled writer -------------------------------------------------------- */

static int send_fd(int sock, int fd)
{
	char data = 'u';
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char data;
	struct iovec iov = { &data, 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd = -1;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * As root: a userfaultfd over two pages, the first filled, the second
 * missing; the descriptor goes to the parent, the only one to serve it. Then,
 * as its own uid, write() STALL_LEN bytes straddling the two pages.
 */
static void stall_main(int sock)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_copy copy = { 0 };
	uint8_t *region, *page;
	int uffd, fd;
	ssize_t r;

	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	region = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	page = aligned_alloc(PAGE, PAGE);
	if (uffd < 0 || region == MAP_FAILED || !page || ioctl(uffd, UFFDIO_API, &api)) {
		violation(C_STALL, "userfaultfd setup failed: %s", strerror(errno));
		send_fd(sock, -1);
		_exit(1);
	}
	reg.range.start = (uintptr_t)region;
	reg.range.len = 2 * PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	memset(page, 0xA5, PAGE);
	copy.dst = (uintptr_t)region;
	copy.src = (uintptr_t)page;
	copy.len = PAGE;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_COPY, &copy)) {
		violation(C_STALL, "UFFDIO_REGISTER/COPY failed: %s", strerror(errno));
		_exit(1);
	}
	if (send_fd(sock, uffd)) {
		violation(C_STALL, "cannot pass the userfaultfd: %s", strerror(errno));
		_exit(1);
	}
	close(uffd);
	close(sock);
	become(me->uid);
	atomic_store(&sh->writers[sh->stall_writer].pid, getpid());
	fd = open_device(O_WRONLY);
	atomic_store(&me->ready, 1);
	while (!atomic_load(&sh->stall_go) && atomic_load(&sh->phase) <= PH_RUN)
		sleep_ms(5);
	atomic_store(&sh->stall_state, 1);
	r = write(fd, region + PAGE - STALL_HEAD, STALL_LEN);
	atomic_store(&sh->stall_errno, r < 0 ? errno : 0);
	atomic_store(&sh->stall_ret, (int64_t)r);
	if (r == STALL_LEN) {
		atomic_fetch_add(&sh->writers[sh->stall_writer].ok, 1);
		atomic_fetch_add(&sh->writes_ok[sh->stall_uidx], 1);
	}
	atomic_store(&sh->stall_state, 2);
	close(fd);
	_exit(0);
}

/* ---- readers -------------------------------------------------------------------- */

/*
 * One per uid, as that uid, opened before anything is written: reads every
 * record it can, never rewinds; at the end, records read + GET_LOST must be
 * the uid's successful writes. The tail reader (root, every uid) does the
 * same for all uids, with poll().
 */
static void acct_main(int uidx, bool tail)
{
	struct uid_result *res = tail ? &sh->tail : &sh->acct[uidx];
	struct rstate st = { .view = tail ? -1 : (int64_t)sh->uids[uidx] };
	uint8_t *buf = malloc(RECBUF);
	bool lost_ok = true;
	uint64_t polls = 0;
	int fd;

	if (!buf)
		_exit(1);
	if (!tail)
		become(sh->uids[uidx]);
	fd = open_device(O_RDONLY);
	if (tail && filter(fd, MEMLOG_UID_ALL))
		_exit(1);
	atomic_store(&me->ready, 1);
	while (atomic_load(&sh->phase) <= PH_STOP) {
		uint64_t got;

		if (tail) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int r;

			/* tail -f: wait for a record */
			op_begin(OP_POLL);
			r = poll(&p, 1, 200);
			op_end();
			polls++;
			check(C_POLL);
			if (r < 0 || (r > 0 && !(p.revents & POLLIN)))
				violation(C_POLL, "poll for POLLIN returned %d, revents %#x: %s", r,
					  p.revents, r < 0 ? strerror(errno) : "no POLLIN");
			/* and POLLOUT, always */
			p.events = POLLOUT;
			p.revents = 0;
			check(C_POLL);
			if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
				violation(C_POLL, "poll for POLLOUT: revents %#x", p.revents);
			if (r <= 0)
				continue;
		}
		got = drain(fd, buf, &st, 400);
		if (lost_ok && (rnd_below(8) == 0 || !got))
			lost_ok = poll_lost(fd, &st);
		if (!tail && !got)
			sleep_ms(3);
	}
	/* every writer has finished: read what is left, then count the lost */
	drain(fd, buf, &st, UINT64_MAX);
	res->lost_errno = 0;
	if (!m_ioctl(fd, OP_GET_LOST, MEMLOG_IOC_GET_LOST, &res->lost)) {
		check(C_LOST);
		if (res->lost < st.last_lost)
			violation(C_LOST, "GET_LOST went down from %" PRIu64 " to %" PRIu64,
				  st.last_lost, res->lost);
	} else {
		res->lost_errno = errno;
	}
	res->foreign = st.foreign;
	atomic_store(&res->read, st.nread);
	atomic_fetch_add(&sh->polls, polls);
	atomic_store(&res->done, 1);
	m_close(fd);
	_exit(0);
}

/* As uid @uidx: open, STATS, dump the view, maybe rewind, GET_LOST, close; again. */
static void dump_main(int uidx)
{
	uint8_t *buf = malloc(RECBUF);
	uint32_t uid = sh->uids[uidx];
	uint64_t prev_writes = 0;

	if (!buf)
		_exit(1);
	become(uid);
	atomic_store(&me->ready, 1);
	while (atomic_load(&sh->phase) == PH_SETUP)
		sleep_ms(5);
	while (atomic_load(&sh->phase) == PH_RUN) {
		struct rstate st = { .view = uid };
		struct memlog_stats s;
		uint64_t before, after;
		int fd = open_device(O_RDONLY);

		before = atomic_load(&sh->writes_ok[uidx]);
		if (m_ioctl(fd, OP_STATS, MEMLOG_IOC_STATS, &s)) {
			violation(C_ERRNO, "STATS failed: %s", strerror(errno));
		} else {
			atomic_fetch_add(&sh->stats_calls, 1);
			after = atomic_load(&sh->writes_ok[uidx]);
			check_stats(&s, true, prev_writes);
			prev_writes = s.total_writes;
			check(C_STATS);
			if (s.total_writes - sh->baseline_writes[uidx] < before ||
			    s.total_writes - sh->baseline_writes[uidx] > after + (uint64_t)sh->nwriters)
				violation(C_STATS, "STATS total_writes %" PRIu64 " (from %" PRIu64
					  ") while the uid's writers had %" PRIu64 "..%" PRIu64
					  " successful writes", (uint64_t)s.total_writes,
					  sh->baseline_writes[uidx], before, after);
		}
		drain(fd, buf, &st, 50 + rnd_below(400));
		poll_lost(fd, &st);
		if (rnd_below(3) == 0) {
			op_begin(OP_LSEEK);
			if (lseek(fd, 0, SEEK_SET) != 0)
				violation(C_ERRNO, "lseek(0, SEEK_SET) failed: %s", strerror(errno));
			op_end();
			atomic_fetch_add(&sh->rewinds, 1);
			rstate_rewind(&st);
			drain(fd, buf, &st, rnd_below(100));
			poll_lost(fd, &st);
		}
		if (read_sysctl(SYSCTL_RING) < 0)
			violation(C_SYSCTL, "reading %s failed: %s", SYSCTL_RING, strerror(errno));
		m_close(fd);
		sleep_ms(10 + (unsigned int)rnd_below(40));
	}
	_exit(0);
}

/* Root, every uid: read in seq order, rewinding now and then. */
static void all_main(void)
{
	struct rstate st = { .view = -1 };
	uint8_t *buf = malloc(RECBUF);
	uint64_t next_rewind = now_ns() + 1000000000ULL;
	uint64_t prev_writes = 0;
	int fd;

	if (!buf)
		_exit(1);
	fd = open_device(O_RDONLY);
	if (filter(fd, MEMLOG_UID_ALL))
		_exit(1);
	atomic_store(&me->ready, 1);
	while (atomic_load(&sh->phase) == PH_SETUP)
		sleep_ms(5);
	while (atomic_load(&sh->phase) == PH_RUN) {
		struct memlog_stats s;

		if (!drain(fd, buf, &st, 300))
			sleep_ms(5);
		poll_lost(fd, &st);
		if (now_ns() > next_rewind) {
			op_begin(OP_LSEEK);
			if (lseek(fd, 0, SEEK_SET) != 0)
				violation(C_ERRNO, "lseek(0, SEEK_SET) failed: %s", strerror(errno));
			op_end();
			atomic_fetch_add(&sh->rewinds, 1);
			rstate_rewind(&st);
			next_rewind = now_ns() + 500000000ULL + rnd_below(1500000000ULL);
			if (!m_ioctl(fd, OP_STATS, MEMLOG_IOC_STATS, &s)) {
				atomic_fetch_add(&sh->stats_calls, 1);
				check_stats(&s, false, prev_writes);
				prev_writes = s.total_writes;
			} else {
				violation(C_ERRNO, "STATS of every uid failed: %s", strerror(errno));
			}
		}
	}
	m_close(fd);
	_exit(0);
}

/* ---- the admin ------------------------------------------------------------------- */

static uint32_t pick_ring_size(void)
{
	uint32_t top = 16, v;
	uint64_t r = rnd_below(10);

	if (r == 0)
		return MEMLOG_RING_SIZE_MIN;
	if (r == 1)
		return sh->max_ring;
	/* log-uniform between the minimum and --max-ring */
	while (top < 31 && (1U << (top + 1)) <= sh->max_ring)
		top++;
	v = 1U << (16 + rnd_below(top - 16 + 1));
	v += (uint32_t)rnd_below(v);
	if (v > sh->max_ring)
		v = sh->max_ring;
	return v;
}

static void resize(int fd, bool by_sysctl)
{
	uint32_t cur = atomic_load(&sh->ring_cur), want = pick_ring_size();
	uint32_t lo = want < cur ? want : cur;
	int r, e;

	atomic_store(&sh->ring_lo, lo);
	if (lo < atomic_load(&sh->ring_min_ever))
		atomic_store(&sh->ring_min_ever, lo);
	atomic_fetch_add(&sh->ring_epoch, 1);
	if (by_sysctl) {
		r = write_sysctl(SYSCTL_RING, want);
	} else {
		r = m_ioctl(fd, OP_SET_RING_SIZE, MEMLOG_IOC_SET_RING_SIZE, &want);
	}
	e = errno;
	check(C_SYSCTL);
	if (!r) {
		cur = want;
		atomic_store(&sh->ring_cur, cur);
		atomic_fetch_add(&sh->resizes, 1);
	} else if (e != ENOMEM) {
		violation(C_SYSCTL, "setting ring size %u by %s failed: %s", want,
			  by_sysctl ? "sysctl" : "SET_RING_SIZE", strerror(e));
	}
	atomic_store(&sh->ring_lo, cur);
	atomic_fetch_add(&sh->ring_epoch, 1);
}

static void admin_main(void)
{
	int fd = open_device(O_RDONLY);
	int noisy = sh->nuids - 2;

	atomic_store(&me->ready, 1);
	while (atomic_load(&sh->phase) == PH_SETUP)
		sleep_ms(5);
	while (atomic_load(&sh->phase) == PH_RUN) {
		uint64_t what = rnd_below(100);

		sleep_ms(100 + (unsigned int)rnd_below(500));
		if (atomic_load(&sh->phase) != PH_RUN)
			break;
		if (what < 35) {
			resize(fd, true);
		} else if (what < 50) {
			resize(fd, false);
		} else if (what < 80) {
			/* CLEAR one noisy uid: never the quiet or the stalled one */
			uint32_t uid = sh->uids[rnd_below((uint64_t)noisy)];

			if (!filter(fd, uid)) {
				check(C_ERRNO);
				if (m_ioctl(fd, OP_CLEAR, MEMLOG_IOC_CLEAR, NULL))
					violation(C_ERRNO, "CLEAR of uid %u as root failed: %s",
						  uid, strerror(errno));
				else
					atomic_fetch_add(&sh->clears, 1);
			}
		} else {
			struct memlog_stats s;
			long long v;

			if (!filter(fd, MEMLOG_UID_ALL) &&
			    m_ioctl(fd, OP_STATS, MEMLOG_IOC_STATS, &s))
				violation(C_ERRNO, "STATS failed: %s", strerror(errno));
			v = read_sysctl(SYSCTL_RING);
			check(C_SYSCTL);
			if (v != (long long)atomic_load(&sh->ring_cur))
				violation(C_SYSCTL, "%s reads %lld, last set to %u", SYSCTL_RING,
					  v, atomic_load(&sh->ring_cur));
		}
	}
	m_close(fd);
	_exit(0);
}

/* ---- the parent ------------------------------------------------------------------ */

static struct slot *new_slot(int role, int idx, uint32_t uid)
{
	struct slot *s;

	if (sh->nslots >= MAX_PROCS) {
		fprintf(stderr, "%s: too many processes\n", prog);
		exit(2);
	}
	s = &sh->slots[sh->nslots++];
	s->role = role;
	s->idx = idx;
	s->uid = uid;
	return s;
}

/* Fork a worker; it runs @fn's role and never returns */
static pid_t spawn(struct slot *s, void (*fn)(int, int), int a, int b)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		exit(2);
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (g_uffd >= 0)
			close(g_uffd);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);	/* stdout is the parent's summary */
		me = s;
		atomic_store(&me->pid, getpid());
		seed_rng(sh->seed, s->role, s->idx);
		fn(a, b);
		_exit(0);
	}
	atomic_store(&s->pid, pid);
	return pid;
}

static void run_writer(int w, int quiet)
{
	writer_main(w, quiet);
}

static void run_acct(int uidx, int tail)
{
	acct_main(uidx, tail);
}

static void run_dump(int uidx, int unused)
{
	(void)unused;
	dump_main(uidx);
}

static void run_all(int a, int b)
{
	(void)a;
	(void)b;
	all_main();
}

static void run_admin(int a, int b)
{
	(void)a;
	(void)b;
	admin_main();
}

static void run_stall(int sock, int unused)
{
	(void)unused;
	stall_main(sock);
}

/* Report calls in flight for longer than the limit; the largest age seen */
static uint64_t watch_latency(void)
{
	uint64_t limit = (uint64_t)sh->latency_limit_s * 1000000000ULL, now = now_ns();
	uint64_t oldest = 0;

	for (int i = 0; i < sh->nslots; i++) {
		struct slot *s = &sh->slots[i];
		uint64_t start = atomic_load(&s->op_start_ns);
		int op = atomic_load(&s->op);

		if (s->role == R_STALL || !start || op == OP_POLL || now < start)
			continue;
		if (now - start > oldest)
			oldest = now - start;
		if (now - start > limit && !atomic_exchange(&s->flagged, 1)) {
			struct slot *keep = me;

			me = s;
			violation(C_LATENCY, "%s still in flight after %.1f s (limit %d s)%s",
				  op_names[op], (now - start) / 1e9, sh->latency_limit_s,
				  atomic_load(&sh->stall_start_ns) && !atomic_load(&sh->stall_end_ns) ?
				  ", while another uid's writer is stalled in a page fault" : "");
			me = keep;
		}
	}
	return oldest;
}

/* Wait for the slots of @roles (bitmask) to exit, up to @seconds; kill the rest */
static void reap(unsigned int roles, int seconds, uint64_t *stall_inflight_max)
{
	uint64_t deadline = now_ns() + (uint64_t)seconds * 1000000000ULL;

	for (;;) {
		bool left = false;

		for (int i = 0; i < sh->nslots; i++) {
			struct slot *s = &sh->slots[i];
			int pid = atomic_load(&s->pid), status, r;

			if (!(roles & (1U << s->role)) || pid <= 0)
				continue;
			r = waitpid(pid, &status, WNOHANG);
			if (r < 0) {
				atomic_store(&s->pid, -1);	/* not ours any more */
			} else if (r == pid) {
				atomic_store(&s->pid, -1);
				if (!WIFEXITED(status) || WEXITSTATUS(status)) {
					struct slot *keep = me;

					me = s;
					violation(C_PROC, "exited with %s %d",
						  WIFSIGNALED(status) ? "signal" : "status",
						  WIFSIGNALED(status) ? WTERMSIG(status) :
						  WEXITSTATUS(status));
					me = keep;
				}
			} else {
				left = true;
			}
		}
		if (!left)
			return;
		if (now_ns() > deadline)
			break;
		{
			uint64_t age = watch_latency();

			if (stall_inflight_max && age > *stall_inflight_max)
				*stall_inflight_max = age;
		}
		sleep_ms(50);
	}
	for (int i = 0; i < sh->nslots; i++) {
		struct slot *s = &sh->slots[i];
		int pid = atomic_load(&s->pid);

		if (!(roles & (1U << s->role)) || pid <= 0)
			continue;
		{
			struct slot *keep = me;

			me = s;
			violation(C_PROC, "did not finish within %d s (in %s); killed", seconds,
				  atomic_load(&s->op_start_ns) ?
				  op_names[atomic_load(&s->op)] : "no call");
			me = keep;
		}
		kill(pid, SIGKILL);
	}
}

/* Wait until every worker is ready or has exited (left for reap() to collect) */
static void wait_ready(void)
{
	for (int i = 0; i < sh->nslots; i++) {
		struct slot *s = &sh->slots[i];

		while (!atomic_load(&s->ready)) {
			siginfo_t info = { 0 };

			if (waitid(P_PID, (id_t)atomic_load(&s->pid), &info,
				   WEXITED | WNOHANG | WNOWAIT) || info.si_pid)
				break;
			sleep_ms(5);
		}
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void watchdog(int sig)
{
	static const char msg[] =
		"{\"program\":\"memlog_stress\",\"ok\":false,\"reason\":\"watchdog: the run did "
		"not finish in time (a call that never returns?)\"}\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0 ||
	    write(STDERR_FILENO, "memlog_stress: FAIL: watchdog\n", 30) < 0)
		_exit(3);
	_exit(3);
}

/* Map each namespace writer's uid 0 to its uid, once it has unshared */
static void map_namespaces(void)
{
	uint64_t give_up = now_ns() + NS_MAP_WAIT_NS;

	for (int w = sh->stall_writer + 1; w < sh->nwriters; w++) {
		struct writer_info *wi = &sh->writers[w];
		char path[64], map[64];
		int fd, n;

		while (atomic_load(&wi->ns_state) != 1 && now_ns() < give_up) {
			watch_latency();
			sleep_ms(5);
		}
		if (atomic_load(&wi->ns_state) != 1)
			break;	/* the writer reports it */
		snprintf(path, sizeof(path), "/proc/%d/uid_map", atomic_load(&wi->pid));
		n = snprintf(map, sizeof(map), "0 %u 1\n", wi->uid);
		fd = open(path, O_WRONLY);
		check(C_PROC);
		if (fd < 0 || write(fd, map, (size_t)n) != n)
			violation(C_PROC, "writing %s (%s) failed: %s", path, map, strerror(errno));
		if (fd >= 0)
			close(fd);
		atomic_store(&wi->ns_state, 2);
	}
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [--seconds N] [--seed N] [--writers N] [--uids N] [--uid-base N]\n"
		"          [--latency-limit S] [--max-ring BYTES] [--ns-uids N] [--max-bytes BYTES]\n",
		prog);
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 16);
	int seconds = 30, nwriters = 6, noisy = 3, limit = 5, sock[2], uffd = -1, nns = 0;
	uint32_t uid_base = 30000, max_ring = 4U << 20;
	unsigned long long max_bytes = 0;
	long long orig_ring, orig_maxb;
	struct memlog_stats s;
	struct slot main_slot = { .role = R_MAIN };
	uint64_t t0, stall_inflight_max = 0, t_release, t_end;
	struct stat devst;
	uint64_t fault_page = 0;
	bool stall_established = false;
	char stall_result[128] = "not started";
	int rootfd, wi = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v)
			usage();
		if (!strcmp(a, "--seconds"))
			seconds = atoi(v);
		else if (!strcmp(a, "--seed"))
			seed = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--writers"))
			nwriters = atoi(v);
		else if (!strcmp(a, "--uids"))
			noisy = atoi(v);
		else if (!strcmp(a, "--uid-base"))
			uid_base = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--latency-limit"))
			limit = atoi(v);
		else if (!strcmp(a, "--max-ring"))
			max_ring = (uint32_t)strtoul(v, NULL, 0);
		else if (!strcmp(a, "--ns-uids"))
			nns = atoi(v);
		else if (!strcmp(a, "--max-bytes"))
			max_bytes = strtoull(v, NULL, 0);
		else
			usage();
		i++;
	}
	if (seconds < 5 || nwriters < 1 || nwriters > MAX_WRITERS - 2 || noisy < 1 ||
	    noisy > MAX_UIDS - 2 - MAX_NS_UIDS || limit < 1 || max_ring < MEMLOG_RING_SIZE_MIN ||
	    max_ring > MEMLOG_RING_SIZE_MAX || nns < 0 || nns > MAX_NS_UIDS ||
	    nwriters + 2 + nns > MAX_WRITERS || (max_bytes && max_bytes < MEMLOG_MAX_BYTES_MIN))
		usage();
	printf("memlog_stress seed=%llu\n", seed);
	fflush(stdout);
	if (geteuid() != 0) {
		fprintf(stderr, "%s: run me as root\n", prog);
		return 2;
	}
	signal(SIGALRM, watchdog);
	alarm((unsigned int)seconds * 2 + 240);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	me = &main_slot;
	sh->seed = seed;
	seed_rng(seed, R_MAIN, 0);
	sh->nonce = (uint32_t)rnd();
	sh->latency_limit_s = limit;
	sh->max_ring = max_ring;
	for (int i = 0; i < noisy; i++)
		sh->uids[i] = uid_base + (uint32_t)i;
	sh->quiet_uidx = noisy;
	sh->uids[noisy] = uid_base + 50;
	sh->stall_uidx = noisy + 1;
	sh->uids[noisy + 1] = uid_base + 51;
	sh->ns_uidx = noisy + 2;
	sh->nns = nns;
	sh->ns_owner = uid_base + 60;
	for (int k = 0; k < nns; k++)
		sh->uids[noisy + 2 + k] = uid_base + 100 + (uint32_t)k;
	sh->nuids = noisy + 2 + nns;

	/* the node: group and mode as the packages set them */
	if (stat(DEVICE, &devst)) {
		fprintf(stderr, "%s: %s: %s (is the module loaded?)\n", prog, DEVICE, strerror(errno));
		return 2;
	}
	dev_gid = devst.st_gid ? devst.st_gid : FALLBACK_GID;
	if (chown(DEVICE, 0, dev_gid) || chmod(DEVICE, 0660)) {
		fprintf(stderr, "%s: chown/chmod %s: %s\n", prog, DEVICE, strerror(errno));
		return 2;
	}

	/* sysctls: a known start, restored at the end */
	orig_ring = read_sysctl(SYSCTL_RING);
	if (orig_ring < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, SYSCTL_RING, strerror(errno));
		return 2;
	}
	orig_maxb = read_sysctl(SYSCTL_MAXB);
	check(C_SYSCTL);
	if (orig_maxb < 0)
		violation(C_SYSCTL, "%s cannot be read: %s", SYSCTL_MAXB, strerror(errno));
	else if (max_bytes && write_sysctl(SYSCTL_MAXB, max_bytes))
		violation(C_SYSCTL, "setting %s failed: %s", SYSCTL_MAXB, strerror(errno));
	else if (!max_bytes &&
		 (unsigned long long)orig_maxb < (unsigned long long)sh->nuids * max_ring &&
		 write_sysctl(SYSCTL_MAXB, (unsigned long long)sh->nuids * max_ring))
		violation(C_SYSCTL, "setting %s failed: %s", SYSCTL_MAXB, strerror(errno));
	sh->max_bytes = (unsigned long long)read_sysctl(SYSCTL_MAXB);
	if (write_sysctl(SYSCTL_RING, 1U << 20)) {
		fprintf(stderr, "%s: setting %s: %s\n", prog, SYSCTL_RING, strerror(errno));
		return 2;
	}
	atomic_store(&sh->ring_cur, 1U << 20);
	atomic_store(&sh->ring_lo, 1U << 20);
	atomic_store(&sh->ring_min_ever, 1U << 20);

	/* empty every ring; the uids' counters so far are the baseline */
	rootfd = open_device(O_RDONLY);
	if (filter(rootfd, MEMLOG_UID_ALL) ||
	    m_ioctl(rootfd, OP_CLEAR, MEMLOG_IOC_CLEAR, NULL)) {
		fprintf(stderr, "%s: clearing the rings failed: %s\n", prog, strerror(errno));
		return 2;
	}
	for (int u = 0; u < sh->nuids; u++) {
		if (filter(rootfd, sh->uids[u]) ||
		    m_ioctl(rootfd, OP_STATS, MEMLOG_IOC_STATS, &s)) {
			fprintf(stderr, "%s: STATS failed: %s\n", prog, strerror(errno));
			return 2;
		}
		sh->baseline_writes[u] = s.total_writes;
	}

	/* writers' identities first: readers look records up by pid */
	for (int w = 0; w < nwriters; w++, wi++) {
		sh->writers[wi].uidx = w % noisy;
		sh->writers[wi].uid = sh->uids[w % noisy];
	}
	sh->writers[wi].uidx = sh->quiet_uidx;
	sh->writers[wi].uid = sh->uids[sh->quiet_uidx];
	wi++;
	sh->stall_writer = wi;
	sh->writers[wi].uidx = sh->stall_uidx;
	sh->writers[wi].uid = sh->uids[sh->stall_uidx];
	wi++;
	for (int k = 0; k < nns; k++, wi++) {
		sh->writers[wi].uidx = sh->ns_uidx + k;
		sh->writers[wi].uid = sh->uids[sh->ns_uidx + k];
		sh->writers[wi].ns = true;
	}
	sh->nwriters = wi;

	/* accounting readers: open before any record is written */
	for (int u = 0; u < sh->nuids; u++)
		spawn(new_slot(R_ACCT, u, sh->uids[u]), run_acct, u, 0);
	spawn(new_slot(R_TAIL, 0, 0), run_acct, 0, 1);
	wait_ready();

	/* the stalled writer hands its userfaultfd over */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock)) {
		fprintf(stderr, "%s: socketpair: %s\n", prog, strerror(errno));
		return 2;
	}
	spawn(new_slot(R_STALL, sh->stall_writer, sh->uids[sh->stall_uidx]), run_stall, sock[1], 0);
	close(sock[1]);
	uffd = recv_fd(sock[0]);
	close(sock[0]);
	if (uffd < 0)
		snprintf(stall_result, sizeof(stall_result), "no userfaultfd");
	g_uffd = uffd;	/* the workers forked from now on close it */

	for (int w = 0; w < sh->stall_writer; w++)
		spawn(new_slot(w == sh->stall_writer - 1 ? R_QUIET : R_WRITER, w, sh->writers[w].uid),
		      run_writer, w, w == sh->stall_writer - 1);
	for (int w = sh->stall_writer + 1; w < sh->nwriters; w++)
		spawn(new_slot(R_WRITER, w, sh->writers[w].uid), run_writer, w, 0);
	for (int u = 0; u < noisy; u++)
		spawn(new_slot(R_DUMP, u, sh->uids[u]), run_dump, u, 0);
	spawn(new_slot(R_ALL, 0, 0), run_all, 0, 0);
	spawn(new_slot(R_ADMIN, 0, 0), run_admin, 0, 0);
	map_namespaces();
	wait_ready();

	t0 = now_ns();
	t_end = t0 + (uint64_t)seconds * 1000000000ULL;
	t_release = t_end - (uint64_t)(seconds / 6 > 3 ? seconds / 6 : 3) * 1000000000ULL;
	atomic_store(&sh->phase, PH_RUN);

	/* let the load build up, then stall the writer */
	while (now_ns() < t0 + (uint64_t)(seconds / 10 > 1 ? seconds / 10 : 1) * 1000000000ULL) {
		watch_latency();
		sleep_ms(50);
	}
	if (uffd >= 0) {
		uint64_t give_up = now_ns() + 10000000000ULL;

		atomic_store(&sh->stall_go, 1);
		for (;;) {
			struct pollfd p = { .fd = uffd, .events = POLLIN };
			struct uffd_msg msg;

			if (poll(&p, 1, 50) == 1 && read(uffd, &msg, sizeof(msg)) == sizeof(msg) &&
			    msg.event == UFFD_EVENT_PAGEFAULT) {
				atomic_store(&sh->stall_start_ns, now_ns());
				stall_established = true;
				snprintf(stall_result, sizeof(stall_result), "stalled");
				fault_page = msg.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
				break;
			}
			watch_latency();
			if (atomic_load(&sh->stall_state) == 2 || now_ns() > give_up) {
				check(C_STALL);
				violation(C_STALL, "the stalled writer never faulted: write() "
					  "returned %" PRId64 " (%s)", atomic_load(&sh->stall_ret),
					  strerror(atomic_load(&sh->stall_errno)));
				snprintf(stall_result, sizeof(stall_result), "never stalled");
				break;
			}
		}
	}
	/* the stall lasts until shortly before the end */
	while (now_ns() < t_release) {
		uint64_t age = watch_latency();

		if (stall_established && age > stall_inflight_max)
			stall_inflight_max = age;
		sleep_ms(50);
	}
	if (stall_established) {
		struct uffdio_copy copy = { 0 };
		uint8_t *page = aligned_alloc(PAGE, PAGE);
		uint64_t give_up;

		memset(page, 0x5C, PAGE);
		copy.dst = fault_page;
		copy.src = (uintptr_t)page;
		copy.len = PAGE;
		if (ioctl(uffd, UFFDIO_COPY, &copy))
			fprintf(stderr, "%s: UFFDIO_COPY: %s; closing the userfaultfd instead\n",
				prog, strerror(errno));
		close(uffd);	/* any other fault of the region now gets zeroes */
		uffd = g_uffd = -1;
		atomic_store(&sh->stall_end_ns, now_ns());
		give_up = now_ns() + 30000000000ULL;
		while (atomic_load(&sh->stall_state) != 2 && now_ns() < give_up) {
			watch_latency();
			sleep_ms(20);
		}
		check(C_STALL);
		if (atomic_load(&sh->stall_state) != 2) {
			violation(C_STALL, "the stalled writer did not return within 30 s of "
				  "its fault being served");
			snprintf(stall_result, sizeof(stall_result), "still blocked after release");
		} else if (atomic_load(&sh->stall_ret) == STALL_LEN) {
			snprintf(stall_result, sizeof(stall_result), "completed");
		} else if (atomic_load(&sh->stall_ret) < 0 &&
			   (atomic_load(&sh->stall_errno) == EFAULT ||
			    atomic_load(&sh->stall_errno) == EINTR ||
			    atomic_load(&sh->stall_errno) == ENOMEM ||
			    atomic_load(&sh->stall_errno) == ENOSPC)) {
			snprintf(stall_result, sizeof(stall_result), "failed cleanly: %s",
				 strerror(atomic_load(&sh->stall_errno)));
		} else {
			violation(C_STALL, "the stalled write returned %" PRId64 " (%s)",
				  atomic_load(&sh->stall_ret),
				  strerror(atomic_load(&sh->stall_errno)));
			snprintf(stall_result, sizeof(stall_result), "returned %" PRId64,
				 atomic_load(&sh->stall_ret));
		}
	}
	while (now_ns() < t_end) {
		watch_latency();
		sleep_ms(50);
	}

	/* stop everything but the accounting readers, then let those drain */
	atomic_store(&sh->phase, PH_STOP);
	if (uffd >= 0)
		close(uffd);
	reap((1U << R_WRITER) | (1U << R_QUIET) | (1U << R_STALL) | (1U << R_DUMP) |
	     (1U << R_ALL) | (1U << R_ADMIN), 60, NULL);
	atomic_store(&sh->phase, PH_DRAIN);
	reap((1U << R_ACCT) | (1U << R_TAIL), 120, NULL);

	/* the exact accounting, per uid and for every uid */
	{
		uint64_t all_writes = 0;

		for (int u = 0; u < sh->nuids; u++) {
			struct uid_result *r = &sh->acct[u];
			uint64_t ok = atomic_load(&sh->writes_ok[u]);

			all_writes += ok;
			check(C_ACCOUNT);
			if (!atomic_load(&r->done))
				violation(C_ACCOUNT, "uid %u: its reader did not finish", sh->uids[u]);
			else if (r->lost_errno)
				violation(C_ACCOUNT, "uid %u: %" PRIu64 " successful writes, %" PRIu64
					  " read, lost unknown (GET_LOST: %s)", sh->uids[u], ok,
					  atomic_load(&r->read), strerror(r->lost_errno));
			else if (atomic_load(&r->read) + r->lost != ok)
				violation(C_ACCOUNT, "uid %u: %" PRIu64 " successful writes but %"
					  PRIu64 " read + %" PRIu64 " lost", sh->uids[u], ok,
					  atomic_load(&r->read), r->lost);
			if (u == sh->quiet_uidx) {
				check(C_QUIET);
				if (atomic_load(&r->done) && (r->lost || atomic_load(&r->read) != ok))
					violation(C_QUIET, "uid %u wrote %" PRIu64 " small records (%"
						  PRIu64 " bytes, never cleared) but %" PRIu64
						  " were read and %" PRIu64 " lost: another uid's "
						  "records pushed them out?", sh->uids[u], ok,
						  atomic_load(&sh->quiet_bytes),
						  atomic_load(&r->read), r->lost);
			}
		}
		check(C_ACCOUNT);
		if (!atomic_load(&sh->tail.done))
			violation(C_ACCOUNT, "the tail reader did not finish");
		else if (sh->tail.foreign)
			; /* another program wrote meanwhile: no exact sum for every uid */
		else if (sh->tail.lost_errno)
			violation(C_ACCOUNT, "every uid: lost unknown (GET_LOST: %s)",
				  strerror(sh->tail.lost_errno));
		else if (atomic_load(&sh->tail.read) + sh->tail.lost != all_writes)
			violation(C_ACCOUNT, "every uid: %" PRIu64 " successful writes but %"
				  PRIu64 " read + %" PRIu64 " lost", all_writes,
				  atomic_load(&sh->tail.read), sh->tail.lost);
	}

	/* STATS: each uid's total_writes grew by its successful writes */
	for (int u = 0; u < sh->nuids; u++) {
		uint64_t ok = atomic_load(&sh->writes_ok[u]);

		if (filter(rootfd, sh->uids[u]) ||
		    m_ioctl(rootfd, OP_STATS, MEMLOG_IOC_STATS, &s)) {
			violation(C_STATS, "final STATS of uid %u failed: %s", sh->uids[u],
				  strerror(errno));
			continue;
		}
		check_stats(&s, true, sh->baseline_writes[u]);
		check(C_STATS);
		if (s.total_writes - sh->baseline_writes[u] != ok)
			violation(C_STATS, "uid %u: STATS total_writes grew by %" PRIu64 ", its "
				  "writers had %" PRIu64 " successful writes", sh->uids[u],
				  (uint64_t)s.total_writes - sh->baseline_writes[u], ok);
	}
	close(rootfd);

	/* leave the guest as it was */
	if (write_sysctl(SYSCTL_RING, (unsigned long long)orig_ring))
		fprintf(stderr, "%s: restoring %s: %s\n", prog, SYSCTL_RING, strerror(errno));
	if (orig_maxb >= 0 && read_sysctl(SYSCTL_MAXB) != orig_maxb &&
	    write_sysctl(SYSCTL_MAXB, (unsigned long long)orig_maxb))
		fprintf(stderr, "%s: restoring %s: %s\n", prog, SYSCTL_MAXB, strerror(errno));
	if (chown(DEVICE, devst.st_uid, devst.st_gid) || chmod(DEVICE, devst.st_mode & 07777))
		fprintf(stderr, "%s: restoring %s: %s\n", prog, DEVICE, strerror(errno));

	/* the summary */
	{
		uint64_t lat = 0, lat_stall = 0, total_viol = 0, ok = 0, emsg = 0, nospc = 0,
			 nomem = 0, ops = 0;
		int lat_op = 0, lat_stall_op = 0;
		int nmsg = atomic_load(&sh->nmsg);
		const char *sep = "", *reason = NULL;

		for (int i = 0; i < sh->nslots; i++) {
			struct slot *sl = &sh->slots[i];

			if (sl->role == R_STALL)
				continue;
			ops += sl->ops;
			if (sl->max_lat_ns > lat) {
				lat = sl->max_lat_ns;
				lat_op = sl->max_lat_op;
			}
			if (sl->max_stall_lat_ns > lat_stall) {
				lat_stall = sl->max_stall_lat_ns;
				lat_stall_op = sl->max_stall_lat_op;
			}
		}
		if (stall_inflight_max > lat_stall) {
			lat_stall = stall_inflight_max;
			lat_stall_op = OP_NONE;
		}
		for (int w = 0; w < sh->nwriters; w++) {
			ok += atomic_load(&sh->writers[w].ok);
			emsg += atomic_load(&sh->writers[w].emsgsize);
			nospc += atomic_load(&sh->writers[w].enospc);
			nomem += atomic_load(&sh->writers[w].enomem);
		}
		for (int c = 0; c < NCHECK; c++)
			total_viol += atomic_load(&sh->viol[c]);

		printf("{\"program\":\"memlog_stress\",\"ok\":%s,\"seed\":%llu,\"seconds\":%d,",
		       total_viol ? "false" : "true", seed, seconds);
		for (int g = 0; g < NCHECK && !reason; g++)
			for (int i = 0; i < nmsg && i < MSG_SLOTS && !reason; i++)
				if (!strncmp(sh->msgs[i], check_names[gravity[g]],
					     strlen(check_names[gravity[g]])) &&
				    sh->msgs[i][strlen(check_names[gravity[g]])] == ':')
					reason = sh->msgs[i];
		printf("\"reason\":");
		json_str(stdout, reason ? reason : "");
		printf(",\"violations\":{");
		for (int c = 0; c < NCHECK; c++)
			if (atomic_load(&sh->viol[c])) {
				printf("%s\"%s\":%" PRIu64, sep, check_names[c],
				       atomic_load(&sh->viol[c]));
				sep = ",";
			}
		printf("},\"checks\":{");
		sep = "";
		for (int c = 0; c < NCHECK; c++) {
			printf("%s\"%s\":%" PRIu64, sep, check_names[c], atomic_load(&sh->checks[c]));
			sep = ",";
		}
		printf("},\"messages\":[");
		for (int i = 0; i < nmsg && i < MSG_SLOTS; i++) {
			if (i)
				putchar(',');
			json_str(stdout, sh->msgs[i]);
		}
		printf("],\"uids\":[");
		for (int u = 0; u < sh->nuids; u++) {
			struct uid_result *r = &sh->acct[u];

			printf("%s{\"uid\":%u,\"role\":\"%s\",\"writes_ok\":%" PRIu64 ",\"read\":%"
			       PRIu64 ",\"lost\":", u ? "," : "", sh->uids[u],
			       u == sh->quiet_uidx ? "quiet" : u == sh->stall_uidx ? "stalled" :
			       u >= sh->ns_uidx ? "namespace" : "noisy",
			       atomic_load(&sh->writes_ok[u]), atomic_load(&r->read));
			if (r->lost_errno || !atomic_load(&r->done))
				printf("null}");
			else
				printf("%" PRIu64 "}", r->lost);
		}
		printf("],\"every_uid\":{\"read\":%" PRIu64 ",\"lost\":", atomic_load(&sh->tail.read));
		if (sh->tail.lost_errno || !atomic_load(&sh->tail.done))
			printf("null");
		else
			printf("%" PRIu64, sh->tail.lost);
		printf(",\"foreign\":%" PRIu64 "}", sh->tail.foreign);
		printf(",\"writes\":{\"ok\":%" PRIu64 ",\"emsgsize\":%" PRIu64 ",\"enospc\":%" PRIu64
		       ",\"enomem\":%" PRIu64 "},\"records_read\":%" PRIu64 ",\"calls\":%" PRIu64
		       ",\"resizes\":%" PRIu64 ",\"clears\":%" PRIu64 ",\"rewinds\":%" PRIu64
		       ",\"polls\":%" PRIu64 ",\"stats_calls\":%" PRIu64, ok, emsg, nospc, nomem,
		       atomic_load(&sh->records_read), ops, atomic_load(&sh->resizes),
		       atomic_load(&sh->clears), atomic_load(&sh->rewinds), atomic_load(&sh->polls),
		       atomic_load(&sh->stats_calls));
		printf(",\"latency_max_ms\":%.1f,\"latency_max_op\":\"%s\"", lat / 1e6, op_names[lat_op]);
		printf(",\"latency_max_ms_during_stall\":%.1f,\"latency_max_op_during_stall\":\"%s\"",
		       lat_stall / 1e6, lat_stall_op ? op_names[lat_stall_op] : "in flight");
		printf(",\"stall\":{\"established\":%s,\"seconds\":%.1f,\"result\":",
		       stall_established ? "true" : "false",
		       stall_established ? (atomic_load(&sh->stall_end_ns) -
					    atomic_load(&sh->stall_start_ns)) / 1e9 : 0.0);
		json_str(stdout, stall_result);
		printf("},\"max_bytes_sysctl\":%s,\"max_bytes\":%llu,\"namespace_uids\":%d,"
		       "\"namespace_owner\":%u}\n", orig_maxb < 0 ? "false" : "true", sh->max_bytes,
		       sh->nns, sh->ns_owner);
		fflush(stdout);
		if (total_viol) {
			fprintf(stderr, "%s: FAIL seed=%llu: %s\n", prog, seed,
				reason ? reason : "violations counted");
			return 1;
		}
	}
	return 0;
}
