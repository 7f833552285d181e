// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * memlog_bench: memlog's write and read costs next to a pipe, /dev/null and
 * /dev/kmsg, measured side by side in one run.
 *
 * Run as root in a scratch machine with the memlog module loaded: it clears
 * the rings, changes kernel.memlog.ring_size (restored at the end), chmods
 * the device node 0666 (restored at the end), turns kernel.printk_devkmsg on
 * while it writes to /dev/kmsg (restored after each measure) and, with
 * --module, reloads the module before each read round.
 *
 * Every measure runs --rounds times, interleaved round by round, so that the
 * figures of one round were taken under the same machine load. Sections:
 *
 *   write      records/s into /dev/memlog, a pipe drained by a reader
 *              process, /dev/null (the syscall floor) for each --sizes blob
 *              size, and /dev/kmsg (64 B only), for --duration seconds each;
 *              the rings are cleared before each memlog measure.
 *   writers    64 B records/s of 1 writer, and of --writers concurrent
 *              writers each with its own uid (each opens the device after
 *              setresuid: identity is the opener's).
 *   ringbytes  MEMLOG_IOC_STATS ring_bytes / records_in_ring after writing
 *              64 B records.
 *   read       the time to read every record through an fd filtered to
 *              MEMLOG_UID_ALL, until read() returns 0: N records of one
 *              uid, 2N of one uid, N spread over --read-uids uids; each
 *              --passes times through a fresh fd, the fastest counting.
 *   grow       how long another uid waits while one uid grows its ring:
 *              a probe (its own uid) wakes every millisecond to write a
 *              64 B record and read it back, first alone, then while a
 *              grower (another uid) writes 64 KiB records until its ring
 *              has grown from 4 KiB to --grow-size and a root reader of
 *              the grower's ring reads along (both busy, one per vCPU).
 *              The figures: the longest and 99th-percentile time from the
 *              probe's wake-up to its write's return, and of its read,
 *              in each phase. kernel.memlog.max_bytes is raised for the
 *              section and restored.
 *
 * Output: one JSON object on stdout with every round's raw figures; progress
 * and errors on stderr. Any failed system call ends the run with exit 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/memlog.h>

#define HDR_SIZE		((unsigned long)sizeof(struct memlog_record_header))
#define RECORD_SIZE(len)	((HDR_SIZE + (len) + 7UL) & ~7UL)
#define MAX_SIZES		8
#define MAX_ROUNDS		50
#define MAX_WRITERS		16
#define MAX_READ_UIDS		4096
#define MAX_PASSES		10
#define RING_SIZE_SYSCTL	"/proc/sys/kernel/memlog/ring_size"
#define DEVKMSG_SYSCTL		"/proc/sys/kernel/printk_devkmsg"
#define CLOCKSOURCE	"/sys/devices/system/clocksource/clocksource0/current_clocksource"
#define RINGBYTES_RECORDS	1000
#define MAX_BYTES_SYSCTL	"/proc/sys/kernel/memlog/max_bytes"
#define GROW_PROBES		120000	/* probe ticks per phase, at most */
#define GROW_TICK_NS		1000000L
#define GROW_BLOB		(MEMLOG_RECORD_MAX - 64)
#define BLOB_FILL		'm'

enum target { T_MEMLOG, T_PIPE, T_NULL, T_KMSG, T_CLOCK, T_COUNT };
static const char *const target_name[T_COUNT] = {
	"memlog", "pipe", "devnull", "kmsg", "clock"
};

struct figure {
	unsigned long long records;
	double seconds;
};

static struct {
	int rounds;
	double duration;
	int passes;		/* read-all passes per round; the fastest counts */
	long n;
	int read_uids;
	int writers;
	unsigned int uid_base;		/* concurrent writers' uids */
	unsigned int read_uid_base;	/* read section's uids */
	unsigned long ring_size;	/* one uid holding 2N records */
	unsigned long ring_size_many;	/* --read-uids uids holding N in all */
	unsigned long sizes[MAX_SIZES];
	int nsizes;
	unsigned long grow_size;	/* the grower's ring grows to this */
	const char *device;
	const char *module;
	int do_write, do_writers, do_ringbytes, do_read, do_grow;
} opt = {
	.rounds = 5,
	.duration = 0.5,
	.passes = 3,
	.n = 20000,
	.read_uids = 256,
	.writers = 4,
	.uid_base = 20001,
	.read_uid_base = 30000,
	.ring_size = 16UL << 20,
	.ring_size_many = 256UL << 10,
	.sizes = { 64, 1024, 16384, 65536 },
	.nsizes = 4,
	.grow_size = 128UL << 20,
	.device = "/dev/memlog",
	.module = NULL,
	.do_write = 1, .do_writers = 1, .do_ringbytes = 1, .do_read = 1, .do_grow = 1,
};

/* One phase of the grow section: the probe's waits, in seconds */
struct grow_phase {
	double seconds;			/* the phase's length */
	long ticks;			/* probe ticks (writes, and reads) */
	double write_max, write_p99;	/* wake-up to write() returned */
	double read_max, read_p99;	/* write() returned to read() returned */
};

/* Results, filled as the run goes, printed at the end */
static struct figure res_write[T_COUNT][MAX_SIZES][MAX_ROUNDS];
static int res_write_done[T_COUNT][MAX_SIZES];
static struct figure res_one[MAX_ROUNDS];
static struct figure res_many[MAX_ROUNDS][MAX_WRITERS];
static struct figure res_read[3][MAX_ROUNDS];
static double res_read_passes[3][MAX_ROUNDS][MAX_PASSES];
static struct memlog_stats res_stats;
static struct grow_phase res_grow[2][MAX_ROUNDS];	/* [0]: alone, [1]: growing */
static unsigned long saved_ring_size;
static mode_t saved_mode;
static int saved_mode_valid;
static int kmsg_available;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("memlog_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define die_errno(fmt, ...) die(fmt ": %s", ##__VA_ARGS__, strerror(errno))

static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;

	fputs("memlog_bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static double now(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		die_errno("clock_gettime(CLOCK_MONOTONIC)");
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t size)
{
	void *p = malloc(size);

	if (!p)
		die("out of memory (%zu bytes)", size);
	return p;
}

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		die_errno("open %s", path);
	return fd;
}

static void xclose(int fd, const char *what)
{
	if (close(fd))
		die_errno("close %s", what);
}

static void xwrite_all(int fd, const void *buf, size_t len, const char *what)
{
	ssize_t ret = write(fd, buf, len);

	if (ret < 0)
		die_errno("write %zu bytes to %s", len, what);
	if ((size_t)ret != len)
		die("write %zu bytes to %s: short write of %zd", len, what, ret);
}

static pid_t xfork(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		die_errno("fork");
	return pid;
}

static void xwaitpid(pid_t pid, const char *what)
{
	int status;

	if (waitpid(pid, &status, 0) < 0)
		die_errno("waitpid (%s)", what);
	if (WIFSIGNALED(status))
		die("%s was killed by signal %d", what, WTERMSIG(status));
	if (WEXITSTATUS(status))
		die("%s failed with exit %d (its message is above)", what, WEXITSTATUS(status));
}

/* --- sysctl files -------------------------------------------------------- */

static int read_text(const char *path, char *buf, size_t size, int missing_ok)
{
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (missing_ok && errno == ENOENT)
			return -1;
		die_errno("open %s", path);
	}
	got = read(fd, buf, size - 1);
	if (got < 0)
		die_errno("read %s", path);
	buf[got] = '\0';
	while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' '))
		buf[--got] = '\0';
	xclose(fd, path);
	return 0;
}

static void write_text(const char *path, const char *text)
{
	int fd = xopen(path, O_WRONLY);

	xwrite_all(fd, text, strlen(text), path);
	xclose(fd, path);
}

static unsigned long get_ring_size(void)
{
	char buf[64], *end;
	unsigned long value;

	read_text(RING_SIZE_SYSCTL, buf, sizeof(buf), 0);
	errno = 0;
	value = strtoul(buf, &end, 10);
	if (errno || end == buf || *end)
		die("%s: not a number: '%s'", RING_SIZE_SYSCTL, buf);
	return value;
}

static void set_ring_size(unsigned long bytes)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu\n", bytes);
	write_text(RING_SIZE_SYSCTL, buf);
	if (get_ring_size() != bytes)
		die("%s: wrote %lu, reads back %lu", RING_SIZE_SYSCTL, bytes, get_ring_size());
}

/* --- the device ------------------------------------------------------------ */

/* An fd of root's viewing every uid (the admin view) */
static int open_all_view(int flags)
{
	__u32 all = MEMLOG_UID_ALL;
	int fd = xopen(opt.device, flags);

	if (ioctl(fd, MEMLOG_IOC_FILTER_UID, &all))
		die_errno("ioctl MEMLOG_IOC_FILTER_UID(MEMLOG_UID_ALL) on %s", opt.device);
	return fd;
}

static void clear_all(void)
{
	int fd = open_all_view(O_RDONLY);

	if (ioctl(fd, MEMLOG_IOC_CLEAR))
		die_errno("ioctl MEMLOG_IOC_CLEAR on %s", opt.device);
	xclose(fd, opt.device);
}

static void stats_all(struct memlog_stats *st)
{
	int fd = open_all_view(O_RDONLY);

	if (ioctl(fd, MEMLOG_IOC_STATS, st))
		die_errno("ioctl MEMLOG_IOC_STATS on %s", opt.device);
	xclose(fd, opt.device);
}

static void open_up_device(void)
{
	struct stat st;

	if (stat(opt.device, &st))
		die_errno("stat %s (is the memlog module loaded?)", opt.device);
	if (!S_ISCHR(st.st_mode))
		die("%s is not a character device", opt.device);
	if (!saved_mode_valid) {
		saved_mode = st.st_mode & 07777;
		saved_mode_valid = 1;
	}
	if (chmod(opt.device, 0666))
		die_errno("chmod 0666 %s", opt.device);
}

static void restore_device_mode(void)
{
	if (saved_mode_valid && chmod(opt.device, saved_mode))
		die_errno("chmod %o %s", (unsigned int)saved_mode, opt.device);
}

/* Unload and load --module again, so a read round starts from a fresh driver */
static void reload_module(void)
{
	struct stat st;
	double deadline;
	int fd;

	deadline = now() + 10;
	while (syscall(SYS_delete_module, "memlog", O_NONBLOCK)) {
		if ((errno != EAGAIN && errno != EWOULDBLOCK && errno != EBUSY) || now() > deadline)
			die_errno("delete_module(memlog)");
		usleep(20000);
	}
	fd = xopen(opt.module, O_RDONLY);
	if (syscall(SYS_finit_module, fd, "", 0))
		die_errno("finit_module(%s)", opt.module);
	xclose(fd, opt.module);
	deadline = now() + 10;
	while (stat(opt.device, &st)) {
		if (errno != ENOENT || now() > deadline)
			die_errno("stat %s after loading %s", opt.device, opt.module);
		usleep(10000);
	}
	if (chmod(opt.device, 0666))
		die_errno("chmod 0666 %s", opt.device);
}

/* In a child: become uid (and gid) with no supplementary groups */
static void become(unsigned int uid)
{
	if (setgroups(0, NULL))
		die_errno("setgroups(0) for uid %u", uid);
	if (setresgid(uid, uid, uid))
		die_errno("setresgid(%u)", uid);
	if (setresuid(uid, uid, uid))
		die_errno("setresuid(%u)", uid);
}

/* --- write rate ------------------------------------------------------------ */

/* Writes between two clock reads: about 16 KiB of blobs, at least one */
static unsigned long clock_every(unsigned long size)
{
	return size >= 16384 ? 1 : 16384 / size;
}

/* write(fd, buf, size) for --duration seconds; the count and exact seconds */
static struct figure write_loop(int fd, const char *buf, unsigned long size, const char *what)
{
	unsigned long every = clock_every(size), i;
	struct figure fig = { 0, 0 };
	double start, end, t;

	start = now();
	end = start + opt.duration;
	do {
		for (i = 0; i < every; i++)
			xwrite_all(fd, buf, size, what);
		fig.records += every;
		t = now();
	} while (t < end);
	fig.seconds = t - start;
	return fig;
}

static struct figure measure_memlog(const char *buf, unsigned long size)
{
	struct figure fig;
	int fd;

	clear_all();
	fd = xopen(opt.device, O_WRONLY);
	fig = write_loop(fd, buf, size, opt.device);
	xclose(fd, opt.device);
	return fig;
}

static struct figure measure_null(const char *buf, unsigned long size)
{
	struct figure fig;
	int fd = xopen("/dev/null", O_WRONLY);

	fig = write_loop(fd, buf, size, "/dev/null");
	xclose(fd, "/dev/null");
	return fig;
}

static struct figure measure_pipe(const char *buf, unsigned long size)
{
	const size_t drain_size = 1UL << 20;
	struct figure fig;
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		die_errno("pipe2");
	pid = xfork();
	if (pid == 0) {
		char *sink = xmalloc(drain_size);
		ssize_t got;

		xclose(fds[1], "the pipe's write end (drainer)");
		while ((got = read(fds[0], sink, drain_size)) != 0) {
			if (got < 0 && errno != EINTR)
				die_errno("read from the pipe (drainer)");
		}
		_exit(0);
	}
	xclose(fds[0], "the pipe's read end");
	fig = write_loop(fds[1], buf, size, "the pipe");
	xclose(fds[1], "the pipe's write end");
	xwaitpid(pid, "the pipe's drainer");
	return fig;
}

static struct figure measure_kmsg(unsigned long size)
{
	char saved[32], *line;
	struct figure fig;
	int fd;

	/* Level 7 (debug): kept in the log buffer, never printed on the console */
	line = xmalloc(size);
	memset(line, 'k', size);
	memcpy(line, "<7>memlog_bench ", 16);
	line[size - 1] = '\n';
	/* The default "ratelimit" drops (and so skips the cost of) most records */
	read_text(DEVKMSG_SYSCTL, saved, sizeof(saved), 0);
	write_text(DEVKMSG_SYSCTL, "on\n");
	fd = xopen("/dev/kmsg", O_WRONLY);
	fig = write_loop(fd, line, size, "/dev/kmsg");
	xclose(fd, "/dev/kmsg");
	strcat(saved, "\n");
	write_text(DEVKMSG_SYSCTL, saved);
	free(line);
	return fig;
}

/*
 * The kernel's CLOCK_REALTIME read, as a system call (the vDSO cannot read
 * every clocksource): what stamping a record costs beyond the syscall floor.
 * Counted per call, as records, beside the 64-byte writes.
 */
static struct figure measure_clock(void)
{
	unsigned long every = clock_every(64), i;
	struct figure fig = { 0, 0 };
	struct timespec ts;
	double start, end, t;

	start = now();
	end = start + opt.duration;
	do {
		for (i = 0; i < every; i++)
			if (syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts))
				die_errno("clock_gettime(CLOCK_REALTIME)");
		fig.records += every;
		t = now();
	} while (t < end);
	fig.seconds = t - start;
	return fig;
}

static void section_write(int round, const char *blob)
{
	int s;

	for (s = 0; s < opt.nsizes; s++) {
		unsigned long size = opt.sizes[s];

		res_write[T_NULL][s][round] = measure_null(blob, size);
		res_write[T_MEMLOG][s][round] = measure_memlog(blob, size);
		res_write[T_PIPE][s][round] = measure_pipe(blob, size);
		res_write_done[T_NULL][s] = res_write_done[T_MEMLOG][s] =
			res_write_done[T_PIPE][s] = round + 1;
		if (size == 64 && kmsg_available) {
			res_write[T_KMSG][s][round] = measure_kmsg(size);
			res_write_done[T_KMSG][s] = round + 1;
		}
		if (size == 64) {
			res_write[T_CLOCK][s][round] = measure_clock();
			res_write_done[T_CLOCK][s] = round + 1;
		}
	}
}

/* --- concurrent writers ---------------------------------------------------- */

/*
 * nwriters processes, uid_base + i each, open the device after becoming
 * their uid, say they are ready, wait for the start, write 64 B records for
 * --duration seconds and send back their figure.
 */
static void run_writers(int nwriters, struct figure *out)
{
	int ready[2], start[2], result[2], i;
	pid_t pids[MAX_WRITERS];
	char blob[64];

	memset(blob, BLOB_FILL, sizeof(blob));
	if (pipe2(ready, O_CLOEXEC) || pipe2(start, O_CLOEXEC) || pipe2(result, O_CLOEXEC))
		die_errno("pipe2");
	clear_all();
	for (i = 0; i < nwriters; i++) {
		pids[i] = xfork();
		if (pids[i] == 0) {
			struct figure fig;
			char c = 'r';
			int fd;

			xclose(ready[0], "the ready pipe (writer)");
			xclose(start[1], "the start pipe (writer)");
			xclose(result[0], "the result pipe (writer)");
			become(opt.uid_base + i);
			fd = xopen(opt.device, O_WRONLY);
			xwrite_all(ready[1], &c, 1, "the ready pipe");
			if (read(start[0], &c, 1) < 0)	/* 0: the parent closed it: go */
				die_errno("read the start pipe");
			fig = write_loop(fd, blob, sizeof(blob), opt.device);
			xwrite_all(result[1], &fig, sizeof(fig), "the result pipe");
			_exit(0);
		}
	}
	xclose(ready[1], "the ready pipe");
	xclose(start[0], "the start pipe");
	xclose(result[1], "the result pipe");
	for (i = 0; i < nwriters; i++) {
		char c;
		ssize_t got = read(ready[0], &c, 1);

		if (got < 0)
			die_errno("read the ready pipe");
		if (got == 0)
			die("a writer ended before it was ready (its message is above)");
	}
	xclose(start[1], "the start pipe");	/* every writer starts now */
	for (i = 0; i < nwriters; i++) {
		ssize_t got = read(result[0], &out[i], sizeof(out[i]));

		if (got < 0)
			die_errno("read the result pipe");
		if (got != (ssize_t)sizeof(out[i]))
			die("a writer ended without its figure (its message is above)");
	}
	for (i = 0; i < nwriters; i++)
		xwaitpid(pids[i], "a writer");
	xclose(ready[0], "the ready pipe");
	xclose(result[0], "the result pipe");
}

static void section_writers(int round)
{
	run_writers(1, &res_one[round]);
	run_writers(opt.writers, res_many[round]);
}

/* --- ring bytes per record ------------------------------------------------- */

static void section_ringbytes(void)
{
	char blob[64];
	int fd, i;

	memset(blob, BLOB_FILL, sizeof(blob));
	clear_all();
	fd = xopen(opt.device, O_RDWR);
	for (i = 0; i < RINGBYTES_RECORDS; i++)
		xwrite_all(fd, blob, sizeof(blob), opt.device);
	/* root's own view: the ring just written */
	if (ioctl(fd, MEMLOG_IOC_STATS, &res_stats))
		die_errno("ioctl MEMLOG_IOC_STATS on %s", opt.device);
	xclose(fd, opt.device);
	if (res_stats.records_in_ring != RINGBYTES_RECORDS)
		die("ring bytes: wrote %d records of 64 B after a clear, the ring holds %llu",
		    RINGBYTES_RECORDS, (unsigned long long)res_stats.records_in_ring);
}

/* --- read-all time --------------------------------------------------------- */

/* A child of uid writes count 64 B records */
static void write_as(unsigned int uid, long count)
{
	char blob[64];
	pid_t pid;
	long i;
	int fd;

	pid = xfork();
	if (pid == 0) {
		memset(blob, BLOB_FILL, sizeof(blob));
		become(uid);
		fd = xopen(opt.device, O_WRONLY);
		for (i = 0; i < count; i++)
			xwrite_all(fd, blob, sizeof(blob), opt.device);
		xclose(fd, opt.device);
		_exit(0);
	}
	xwaitpid(pid, "a record writer");
}

/*
 * Read every record through a fresh MEMLOG_UID_ALL fd until read() returns 0,
 * --passes times; the fastest pass is the round's figure, every pass is kept.
 */
static struct figure read_all(long expected, double *passes)
{
	size_t bufsize = HDR_SIZE + MEMLOG_RECORD_MAX;
	char *buf = xmalloc(bufsize);
	struct figure fig = { 0, 0 };
	struct memlog_stats st;
	unsigned long long count;
	double start, seconds;
	ssize_t got;
	int fd, p;

	stats_all(&st);
	if (st.records_in_ring != (__u64)expected)
		die("read: %ld records written after a clear, the rings hold %llu "
		    "(raise --ring-size / --ring-size-many?)",
		    expected, (unsigned long long)st.records_in_ring);
	for (p = 0; p < opt.passes; p++) {
		fd = open_all_view(O_RDONLY);
		count = 0;
		start = now();
		while ((got = read(fd, buf, bufsize)) != 0) {
			if (got < 0)
				die_errno("read %s", opt.device);
			count++;
		}
		seconds = now() - start;
		xclose(fd, opt.device);
		if (count != (unsigned long long)expected)
			die("read: expected %ld records, read %llu", expected, count);
		passes[p] = seconds;
		if (p == 0 || seconds < fig.seconds)
			fig.seconds = seconds;
		fig.records = count;
	}
	free(buf);
	return fig;
}

static void section_read(int round)
{
	long per, extra;
	int u;

	if (opt.module)
		reload_module();
	/* one uid: N, then 2N; the ring holds 2N without evicting */
	set_ring_size(opt.ring_size);
	clear_all();
	write_as(opt.read_uid_base, opt.n);
	res_read[0][round] = read_all(opt.n, res_read_passes[0][round]);
	clear_all();
	write_as(opt.read_uid_base, 2 * opt.n);
	res_read[1][round] = read_all(2 * opt.n, res_read_passes[1][round]);
	/* N over --read-uids uids: smaller rings, so that many fit in memory */
	set_ring_size(opt.ring_size_many);
	clear_all();
	per = opt.n / opt.read_uids;
	extra = opt.n % opt.read_uids;
	for (u = 0; u < opt.read_uids; u++)
		write_as(opt.read_uid_base + 1 + u, per + (u < extra));
	res_read[2][round] = read_all(opt.n, res_read_passes[2][round]);
	clear_all();
}

/* --- JSON ------------------------------------------------------------------ */

/* --- another uid's waits while one uid grows its ring ------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The largest and the 99th percentile of @n values (sorted here) */
static void max_p99(double *v, long n, double *max, double *p99)
{
	if (!n)
		die("grow: the probe made no measure");
	qsort(v, n, sizeof(*v), cmp_double);
	*max = v[n - 1];
	*p99 = v[(n * 99) / 100];
}

static double ts_seconds(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / 1e9;
}

/*
 * The probe, in a child of uid @uid: every millisecond until *stop, write a
 * 64 B record and read it back; its waits go to @out (shared memory).
 */
static void grow_probe(unsigned int uid, volatile int *stop, struct grow_phase *out,
		       double *waits)
{
	double *write_waits = waits, *read_waits = waits + GROW_PROBES;
	struct timespec next, done;
	char blob[64], rec[HDR_SIZE + 64];
	double start;
	long n = 0;
	int fd;

	memset(blob, BLOB_FILL, sizeof(blob));
	become(uid);
	fd = xopen(opt.device, O_RDWR);
	if (clock_gettime(CLOCK_MONOTONIC, &next))
		die_errno("clock_gettime");
	start = ts_seconds(&next);
	while (!*stop && n < GROW_PROBES) {
		next.tv_nsec += GROW_TICK_NS;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		errno = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
		if (errno)
			die_errno("clock_nanosleep");
		xwrite_all(fd, blob, sizeof(blob), opt.device);
		if (clock_gettime(CLOCK_MONOTONIC, &done))
			die_errno("clock_gettime");
		write_waits[n] = ts_seconds(&done) - ts_seconds(&next);
		if (read(fd, rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			die_errno("grow: the probe's read of its record");
		read_waits[n] = now() - ts_seconds(&done);
		n++;
		/* A late wake-up starts the ticks again from now */
		if (ts_seconds(&done) - ts_seconds(&next) > GROW_TICK_NS / 1e9)
			next = done;
	}
	out->seconds = now() - start;
	out->ticks = n;
	max_p99(write_waits, n, &out->write_max, &out->write_p99);
	max_p99(read_waits, n, &out->read_max, &out->read_p99);
	xclose(fd, opt.device);
}

/* The grower, in a child of uid @uid: 64 KiB records until the ring is grown */
static void grow_writer(unsigned int uid)
{
	unsigned long written, records = 2 * opt.grow_size / RECORD_SIZE(GROW_BLOB);
	char *blob = xmalloc(GROW_BLOB);
	int fd;

	memset(blob, BLOB_FILL, GROW_BLOB);
	become(uid);
	fd = xopen(opt.device, O_WRONLY);
	/* Twice the ring: it has grown to its size, then wrapped round once */
	for (written = 0; written < records; written++)
		xwrite_all(fd, blob, GROW_BLOB, opt.device);
	xclose(fd, opt.device);
	free(blob);
}

/* A root reader of @uid's ring, reading along until *stop */
static void grow_reader(unsigned int uid, volatile int *stop)
{
	char *rec = xmalloc(HDR_SIZE + MEMLOG_RECORD_MAX);
	__u32 view = uid;
	int fd = xopen(opt.device, O_RDONLY);

	if (ioctl(fd, MEMLOG_IOC_FILTER_UID, &view))
		die_errno("ioctl MEMLOG_IOC_FILTER_UID %u", uid);
	while (!*stop)
		if (read(fd, rec, HDR_SIZE + MEMLOG_RECORD_MAX) < 0)
			die_errno("grow: the grower's reader");
	xclose(fd, opt.device);
	free(rec);
}

struct grow_shared {
	int stop;
	struct grow_phase phase;
	double waits[2 * GROW_PROBES];
};

static void section_grow(int round)
{
	unsigned int probe_uid = opt.uid_base + MAX_WRITERS, grower_uid = probe_uid + 1;
	struct grow_shared *sh;
	pid_t probe, grower, reader;
	char max_bytes[32];
	int phase;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die_errno("mmap");
	if (read_text(MAX_BYTES_SYSCTL, max_bytes, sizeof(max_bytes), 0))
		die("cannot read %s", MAX_BYTES_SYSCTL);
	for (phase = 0; phase < 2; phase++) {
		char text[32];

		clear_all();
		set_ring_size(opt.grow_size);
		snprintf(text, sizeof(text), "%lu", 4 * opt.grow_size);
		write_text(MAX_BYTES_SYSCTL, text);
		sh->stop = 0;
		probe = xfork();
		if (probe == 0) {
			grow_probe(probe_uid, &sh->stop, &sh->phase, sh->waits);
			_exit(0);
		}
		if (phase == 0) {
			/* Alone: half a second, about 500 ticks */
			usleep(500000);
		} else {
			reader = xfork();
			if (reader == 0) {
				grow_reader(grower_uid, &sh->stop);
				_exit(0);
			}
			grower = xfork();
			if (grower == 0) {
				grow_writer(grower_uid);
				_exit(0);
			}
			xwaitpid(grower, "the grower");
		}
		__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		xwaitpid(probe, "the probe");
		if (phase == 1)
			xwaitpid(reader, "the grower's reader");
		res_grow[phase][round] = sh->phase;
		write_text(MAX_BYTES_SYSCTL, max_bytes);
	}
	clear_all();
	if (munmap(sh, sizeof(*sh)))
		die_errno("munmap");
}

static void print_figures(const struct figure *f, int n)
{
	int i;

	printf("{\"records\": [");
	for (i = 0; i < n; i++)
		printf("%s%llu", i ? ", " : "", f[i].records);
	printf("], \"seconds\": [");
	for (i = 0; i < n; i++)
		printf("%s%.6f", i ? ", " : "", f[i].seconds);
	printf("]}");
}

static void print_json(void)
{
	char clocksource[64] = "unknown";
	struct utsname uts;
	int t, s, r, w, first;

	if (uname(&uts))
		die_errno("uname");
	printf("{\n \"program\": \"memlog_bench\",\n");
	printf(" \"params\": {\"rounds\": %d, \"duration_s\": %.3f, \"n\": %ld, \"passes\": %d, "
	       "\"read_uids\": %d, \"writers\": %d, \"writer_uid_base\": %u, "
	       "\"read_uid_base\": %u, \"ring_size\": %lu, \"ring_size_many\": %lu, "
	       "\"reload_module\": %s, \"sizes\": [",
	       opt.rounds, opt.duration, opt.n, opt.passes, opt.read_uids, opt.writers, opt.uid_base,
	       opt.read_uid_base, opt.ring_size, opt.ring_size_many,
	       opt.module ? "true" : "false");
	for (s = 0; s < opt.nsizes; s++)
		printf("%s%lu", s ? ", " : "", opt.sizes[s]);
	printf("]},\n");
	if (read_text(CLOCKSOURCE, clocksource, sizeof(clocksource), 1))
		strcpy(clocksource, "unknown");
	printf(" \"guest\": {\"kernel_release\": \"%s\", \"machine\": \"%s\", \"cpus\": %ld, "
	       "\"record_header_bytes\": %lu, \"clocksource\": \"%s\"},\n",
	       uts.release, uts.machine, sysconf(_SC_NPROCESSORS_ONLN), HDR_SIZE, clocksource);

	if (opt.do_write) {
		printf(" \"write\": {");
		first = 1;
		for (t = 0; t < T_COUNT; t++) {
			int any = 0;

			for (s = 0; s < opt.nsizes; s++)
				any |= res_write_done[t][s] > 0;
			if (!any)
				continue;
			printf("%s\n  \"%s\": {", first ? "" : ",", target_name[t]);
			first = 0;
			for (s = 0, w = 0; s < opt.nsizes; s++) {
				if (!res_write_done[t][s])
					continue;
				printf("%s\n   \"%lu\": ", w++ ? "," : "", opt.sizes[s]);
				print_figures(res_write[t][s], res_write_done[t][s]);
			}
			printf("}");
		}
		printf("\n },\n");
	}
	if (opt.do_writers) {
		printf(" \"writers\": {\"record_bytes\": 64, \"one\": ");
		print_figures(res_one, opt.rounds);
		printf(",\n  \"many\": [");
		for (r = 0; r < opt.rounds; r++) {
			printf("%s\n   ", r ? "," : "");
			print_figures(res_many[r], opt.writers);
		}
		printf("]},\n");
	}
	if (opt.do_ringbytes)
		printf(" \"ring_bytes\": {\"blob_bytes\": 64, \"records_written\": %d, "
		       "\"records_in_ring\": %llu, \"ring_bytes\": %u},\n",
		       RINGBYTES_RECORDS, (unsigned long long)res_stats.records_in_ring,
		       res_stats.ring_bytes);
	if (opt.do_read) {
		static const char *const read_name[3] = { "n_1uid", "2n_1uid", "n_many_uids" };
		int m, p;

		printf(" \"read\": {\"record_bytes\": 64, \"passes\": %d", opt.passes);
		for (m = 0; m < 3; m++) {
			printf(",\n  \"%s\": ", read_name[m]);
			print_figures(res_read[m], opt.rounds);
			printf(",\n  \"%s_passes\": [", read_name[m]);
			for (r = 0; r < opt.rounds; r++) {
				printf("%s[", r ? ", " : "");
				for (p = 0; p < opt.passes; p++)
					printf("%s%.6f", p ? ", " : "", res_read_passes[m][r][p]);
				printf("]");
			}
			printf("]");
		}
		printf("},\n");
	}
	if (opt.do_grow) {
		static const char *const phase_name[2] = { "alone", "growing" };
		int ph;

		printf(" \"grow\": {\"grow_size\": %lu, \"tick_s\": %.6f", opt.grow_size,
		       GROW_TICK_NS / 1e9);
		for (ph = 0; ph < 2; ph++) {
			printf(",\n  \"%s\": [", phase_name[ph]);
			for (r = 0; r < opt.rounds; r++) {
				const struct grow_phase *g = &res_grow[ph][r];

				printf("%s{\"seconds\": %.6f, \"ticks\": %ld, \"write_max_s\": %.6f, "
				       "\"write_p99_s\": %.6f, \"read_max_s\": %.6f, "
				       "\"read_p99_s\": %.6f}", r ? ", " : "", g->seconds, g->ticks,
				       g->write_max, g->write_p99, g->read_max, g->read_p99);
			}
			printf("]");
		}
		printf("},\n");
	}
	printf(" \"kmsg_measured\": %s\n}\n", kmsg_available ? "true" : "false");
	if (fflush(stdout) || ferror(stdout))
		die_errno("writing the JSON to stdout");
}

/* --- options --------------------------------------------------------------- */

static void usage(FILE *to, int code)
{
	fprintf(to,
		"usage: memlog_bench [options]   (as root, memlog loaded)\n"
		"  --rounds R          rounds of every measure, interleaved (default %d)\n"
		"  --duration S        seconds of each write measure (default %.2f)\n"
		"  --records N         records of the read measures: N, 2N (default %ld)\n"
		"  --passes P          read-all passes per round, the fastest counts (default %d)\n"
		"  --read-uids U       uids the third read measure spreads N over (default %d)\n"
		"  --writers W         concurrent writers, one uid each (default %d)\n"
		"  --sizes A,B,...     blob sizes of the write measures (default 64,1024,16384,65536)\n"
		"  --ring-size B       kernel.memlog.ring_size for one uid's 2N (default %lu)\n"
		"  --ring-size-many B  kernel.memlog.ring_size for U uids (default %lu)\n"
		"  --writer-uid UID    the writers' first uid (default %u)\n"
		"  --read-uid UID      the read measures' first uid (default %u)\n"
		"  --device PATH       the memlog node (default %s)\n"
		"  --module KO         reload this module before each read round\n"
		"  --grow-size B       grow section: the grower's ring grows to this (default %lu)\n"
		"  --only LIST         sections: write,writers,ringbytes,read,grow (default: all)\n"
		"Prints one JSON object on stdout; progress and errors on stderr.\n",
		opt.rounds, opt.duration, opt.n, opt.passes, opt.read_uids, opt.writers,
		opt.ring_size, opt.ring_size_many, opt.uid_base, opt.read_uid_base, opt.device,
		opt.grow_size);
	exit(code);
}

static unsigned long parse_ulong(const char *name, const char *text, unsigned long min,
				 unsigned long max)
{
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(text, &end, 0);
	if (errno || end == text || *end || text[0] == '-' || value < min || value > max)
		die("%s %s: give a whole number from %lu to %lu", name, text, min, max);
	return value;
}

static void parse_sizes(const char *text)
{
	char *copy = strdup(text), *tok, *save = NULL;

	if (!copy)
		die("out of memory");
	opt.nsizes = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (opt.nsizes == MAX_SIZES)
			die("--sizes: at most %d sizes", MAX_SIZES);
		opt.sizes[opt.nsizes++] = parse_ulong("--sizes", tok, 16, MEMLOG_RECORD_MAX);
	}
	if (!opt.nsizes)
		die("--sizes: give at least one size");
	free(copy);
}

static void parse_only(const char *text)
{
	char *copy = strdup(text), *tok, *save = NULL;

	if (!copy)
		die("out of memory");
	opt.do_write = opt.do_writers = opt.do_ringbytes = opt.do_read = opt.do_grow = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "write"))
			opt.do_write = 1;
		else if (!strcmp(tok, "writers"))
			opt.do_writers = 1;
		else if (!strcmp(tok, "ringbytes"))
			opt.do_ringbytes = 1;
		else if (!strcmp(tok, "read"))
			opt.do_read = 1;
		else if (!strcmp(tok, "grow"))
			opt.do_grow = 1;
		else
			die("--only %s: choose from write, writers, ringbytes, read, grow", tok);
	}
	free(copy);
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "records", required_argument, NULL, 'n' },
		{ "passes", required_argument, NULL, 'p' },
		{ "read-uids", required_argument, NULL, 'u' },
		{ "writers", required_argument, NULL, 'w' },
		{ "sizes", required_argument, NULL, 's' },
		{ "ring-size", required_argument, NULL, 'R' },
		{ "ring-size-many", required_argument, NULL, 'M' },
		{ "writer-uid", required_argument, NULL, 'W' },
		{ "read-uid", required_argument, NULL, 'U' },
		{ "device", required_argument, NULL, 'D' },
		{ "module", required_argument, NULL, 'm' },
		{ "only", required_argument, NULL, 'o' },
		{ "grow-size", required_argument, NULL, 'G' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long need;
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opt.rounds = (int)parse_ulong("--rounds", optarg, 1, MAX_ROUNDS);
			break;
		case 'd':
			errno = 0;
			opt.duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(opt.duration >= 0.01) ||
			    opt.duration > 60)
				die("--duration %s: give seconds from 0.01 to 60", optarg);
			break;
		case 'n':
			opt.n = (long)parse_ulong("--records", optarg, 1, 10000000);
			break;
		case 'p':
			opt.passes = (int)parse_ulong("--passes", optarg, 1, MAX_PASSES);
			break;
		case 'u':
			opt.read_uids = (int)parse_ulong("--read-uids", optarg, 1, MAX_READ_UIDS);
			break;
		case 'w':
			opt.writers = (int)parse_ulong("--writers", optarg, 1, MAX_WRITERS);
			break;
		case 's':
			parse_sizes(optarg);
			break;
		case 'R':
			opt.ring_size = parse_ulong("--ring-size", optarg, MEMLOG_RING_SIZE_MIN,
						    MEMLOG_RING_SIZE_MAX);
			break;
		case 'M':
			opt.ring_size_many = parse_ulong("--ring-size-many", optarg,
							 MEMLOG_RING_SIZE_MIN,
							 MEMLOG_RING_SIZE_MAX);
			break;
		case 'W':
			opt.uid_base = (unsigned int)parse_ulong("--writer-uid", optarg, 0,
								 4000000000UL);
			break;
		case 'U':
			opt.read_uid_base = (unsigned int)parse_ulong("--read-uid", optarg, 1,
								      4000000000UL);
			break;
		case 'D':
			opt.device = optarg;
			break;
		case 'm':
			opt.module = optarg;
			break;
		case 'o':
			parse_only(optarg);
			break;
		case 'G':
			opt.grow_size = parse_ulong("--grow-size", optarg, MEMLOG_RING_SIZE_MIN,
						    MEMLOG_RING_SIZE_MAX);
			break;
		case 'h':
			usage(stdout, 0);
			break;
		default:
			usage(stderr, 2);
		}
	}
	if (optind != argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	/* 2N records of one uid, and N/U of each of U uids, must fit without evicting */
	need = 2UL * (unsigned long)opt.n * RECORD_SIZE(64UL);
	if (opt.do_read && need > opt.ring_size)
		die("--ring-size %lu cannot hold 2N = %ld records of 64 B (%lu bytes)",
		    opt.ring_size, 2 * opt.n, need);
	need = ((unsigned long)opt.n / opt.read_uids + 1) * RECORD_SIZE(64UL);
	if (opt.do_read && need > opt.ring_size_many)
		die("--ring-size-many %lu cannot hold %ld records of 64 B per uid",
		    opt.ring_size_many, opt.n / opt.read_uids + 1);
}

int main(int argc, char **argv)
{
	unsigned long max_size = 64;
	char *blob;
	int s, r;

	parse_args(argc, argv);
	if (geteuid() != 0)
		die("run me as root (I clear the rings, set sysctls and change uids)");
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		die_errno("signal(SIGPIPE)");
	for (s = 0; s < opt.nsizes; s++)
		if (opt.sizes[s] > max_size)
			max_size = opt.sizes[s];
	blob = xmalloc(max_size);
	memset(blob, BLOB_FILL, max_size);
	kmsg_available = access("/dev/kmsg", W_OK) == 0 && access(DEVKMSG_SYSCTL, W_OK) == 0;
	saved_ring_size = get_ring_size();
	open_up_device();

	for (r = 0; r < opt.rounds; r++) {
		if (opt.do_write) {
			progress("round %d/%d: write rates", r + 1, opt.rounds);
			section_write(r, blob);
		}
		if (opt.do_writers) {
			progress("round %d/%d: 1 writer, then %d writers of %d uids", r + 1,
				 opt.rounds, opt.writers, opt.writers);
			section_writers(r);
		}
	}
	if (opt.do_ringbytes) {
		progress("ring bytes per 64 B record");
		section_ringbytes();
	}
	for (r = 0; opt.do_read && r < opt.rounds; r++) {
		progress("round %d/%d: read-all of %ld, %ld and %ld records over %d uids%s",
			 r + 1, opt.rounds, opt.n, 2 * opt.n, opt.n, opt.read_uids,
			 opt.module ? " (module reloaded)" : "");
		section_read(r);
	}
	for (r = 0; opt.do_grow && r < opt.rounds; r++) {
		progress("round %d/%d: a probe's waits alone, then while another uid grows to %lu bytes",
			 r + 1, opt.rounds, opt.grow_size);
		section_grow(r);
	}

	set_ring_size(saved_ring_size);
	clear_all();
	restore_device_mode();
	free(blob);
	print_json();
	return 0;
}
