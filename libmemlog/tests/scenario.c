// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * memlog-c-scenario: what the VM tests ask of libmemlog, one command per
 * run (the Rust crate's examples/scenario.rs speaks the same protocol).
 *
 *   memlog-c-scenario [--device PATH] COMMAND [--uid N | --all] [ARGS]
 *
 *   write [--session HEX32] [--nonblock] PART_HEX...
 *		one record of the parts: write() for one part, writev() for more
 *   dump [--wait-for PATH]	every record readable now, raw, on stdout;
 *				then "lost N" on stderr
 *   follow --count N [--timeout-ms T]	N records raw as they come (exit 3
 *				on a timeout)
 *   stats | lost | clear | version | set-ring-size BYTES
 *   bench-write --size N --seconds S	"raw W T library W T ratio R":
 *				batches of 256 writes, by write(2) on the handle's
 *				fd and by memlog_write() in turn, each timed; R is
 *				the median over pairs of batches of the library's
 *				rate over write(2)'s
 *
 * An error: one line "memlog-c-scenario: COMMAND: TEXT (ENAME)", exit 1.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <memlog/memlog.h>

#define PROG "memlog-c-scenario"

static const char *command = "";

static const char *errno_name(int err)
{
	static char other[16];

	switch (err < 0 ? -err : err) {
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOSPC: return "ENOSPC";
	case EMSGSIZE: return "EMSGSIZE";
	case EAGAIN: return "EAGAIN";
	case EINVAL: return "EINVAL";
	case ENOENT: return "ENOENT";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EINTR: return "EINTR";
	case EBADF: return "EBADF";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENXIO: return "ENXIO";
	case EBADMSG: return "EBADMSG";
	}
	snprintf(other, sizeof(other), "E%d", err < 0 ? -err : err);
	return other;
}

static int fail(int err)
{
	fprintf(stderr, PROG ": %s: %s (%s)\n", command, memlog_strerror(err),
		errno_name(err));
	return 1;
}

static int usage(const char *why)
{
	fprintf(stderr, PROG ": %s\nusage: " PROG
		" [--device PATH] COMMAND [--uid N | --all] [ARGS]\n", why);
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || !*s || *end || *s == '-' ? -1 : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* @hex into a new buffer; its length in *len; NULL if not hex */
static unsigned char *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex), i;
	unsigned char *buf;

	if (n % 2)
		return NULL;
	buf = malloc(n / 2 + 1);
	if (!buf)
		return NULL;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(buf);
			return NULL;
		}
		buf[i] = hi << 4 | lo;
	}
	*len = n / 2;
	return buf;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int emit(const struct memlog_record *rec)
{
	size_t n = sizeof(rec->header) + rec->header.length;

	if (fwrite(rec, 1, n, stdout) != n || fflush(stdout))
		return -EIO;
	return 0;
}

static int cmd_write(struct memlog *ml, int argc, char **argv)
{
	struct iovec iov[64];
	int i, nparts = 0, err = 0;
	size_t len;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--session") && i + 1 < argc) {
			unsigned char *id = unhex(argv[++i], &len);

			if (!id || len != MEMLOG_SESSION_ID_LEN)
				return usage("--session takes 32 hex digits");
			err = memlog_set_session(ml, id);
			free(id);
			if (err)
				return fail(err);
		} else if (nparts < 64) {
			iov[nparts].iov_base = unhex(argv[i], &iov[nparts].iov_len);
			if (!iov[nparts].iov_base)
				return usage("a part is hex digits");
			nparts++;
		} else {
			return usage("at most 64 parts");
		}
	}
	if (!nparts)
		return usage("write: no part given");
	if (nparts == 1) {
		ssize_t n = memlog_write(ml, iov[0].iov_base, iov[0].iov_len);

		err = n < 0 ? (int)n : 0;
	} else {
		ssize_t n = memlog_writev(ml, iov, nparts);

		err = n < 0 ? (int)n : 0;
	}
	for (i = 0; i < nparts; i++)
		free(iov[i].iov_base);
	return err ? fail(err) : 0;
}

static int cmd_dump(struct memlog *ml, const char *wait_for)
{
	const struct memlog_record *rec;
	uint64_t lost;
	int err, i;

	for (i = 0; wait_for && access(wait_for, F_OK); i++) {
		if (i == 6000)
			return fail(-ETIMEDOUT);
		usleep(10000);
	}
	while ((err = memlog_read_record(ml, &rec)) > 0) {
		err = emit(rec);
		if (err)
			return fail(err);
	}
	if (err)
		return fail(err);
	err = memlog_lost(ml, &lost);
	if (err)
		return fail(err);
	fprintf(stderr, "lost %" PRIu64 "\n", lost);
	return 0;
}

static int cmd_follow(struct memlog *ml, uint64_t count, uint64_t timeout_ms)
{
	const struct memlog_record *rec;
	uint64_t done = 0;
	int err;

	while (done < count) {
		err = memlog_read_record(ml, &rec);
		if (err < 0)
			return fail(err);
		if (err > 0) {
			err = emit(rec);
			if (err)
				return fail(err);
			done++;
			continue;
		}
		err = memlog_wait(ml, (int)timeout_ms);
		if (err < 0)
			return fail(err);
		if (!err) {
			fprintf(stderr, PROG ": follow: timed out with %" PRIu64
				" of %" PRIu64 " records\n", done, count);
			return 3;
		}
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Batches of 256 writes in turn by write(2) and memlog_write(), timed apart */
static int cmd_bench(struct memlog *ml, uint64_t size, double seconds)
{
	unsigned char *blob = malloc(size ? size : 1);
	uint64_t writes[2] = { 0, 0 };
	double spent[2] = { 0, 0 }, start, *ratios = NULL;
	size_t pairs = 0, room = 0;
	int first = 0;

	if (!blob)
		return fail(-ENOMEM);
	memset(blob, 0x61, size);
	start = now();
	do {
		double took[2];

		for (int pass = 0; pass < 2; pass++) {
			int lib = first ^ pass;
			double t0 = now();

			for (int i = 0; i < 256; i++) {
				ssize_t n = lib ? memlog_write(ml, blob, size) :
						  write(memlog_fd(ml), blob, size);

				if (n < 0)
					return fail(lib ? (int)n : -errno);
			}
			took[lib] = now() - t0;
			spent[lib] += took[lib];
			writes[lib] += 256;
		}
		if (pairs == room) {
			room = room ? 2 * room : 1024;
			ratios = realloc(ratios, room * sizeof(*ratios));
			if (!ratios)
				return fail(-ENOMEM);
		}
		ratios[pairs++] = took[0] / took[1];
		first ^= 1;
	} while (now() - start < seconds);
	qsort(ratios, pairs, sizeof(*ratios), cmp_double);
	printf("raw %" PRIu64 " %.6f library %" PRIu64 " %.6f ratio %.4f\n",
	       writes[0], spent[0], writes[1], spent[1], ratios[pairs / 2]);
	free(ratios);
	free(blob);
	return 0;
}

int main(int argc, char **argv)
{
	const char *device = NULL, *wait_for = NULL;
	uint64_t uid = 0, count = 0, timeout_ms = 10000, size = 64, value;
	unsigned int flags;
	double seconds = 1;
	int i, filter = 0, ret, err;
	struct memlog *ml;
	char **rest;
	int nrest = 0;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--device") && i + 1 < argc)
			device = argv[++i];
		else
			return usage("unknown option before the command");
	}
	if (i == argc)
		return usage("no command");
	command = argv[i++];
	rest = calloc(argc, sizeof(*rest));
	if (!rest)
		return fail(-ENOMEM);
	flags = MEMLOG_OPEN_READ;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			filter = 1;
			uid = MEMLOG_UID_ALL;
		} else if (!strcmp(argv[i], "--uid") && i + 1 < argc) {
			if (parse_u64(argv[++i], &uid) || uid >= MEMLOG_UID_ALL)
				return usage("--uid takes a uid");
			filter = 1;
		} else if (!strcmp(argv[i], "--nonblock")) {
			flags |= MEMLOG_OPEN_NONBLOCK;
		} else if (!strcmp(argv[i], "--wait-for") && i + 1 < argc) {
			wait_for = argv[++i];
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			char *end;

			seconds = strtod(argv[++i], &end);
			if (*end || !(seconds > 0))
				return usage("--seconds takes a positive number");
		} else if ((!strcmp(argv[i], "--count") ||
			    !strcmp(argv[i], "--timeout-ms") ||
			    !strcmp(argv[i], "--size")) && i + 1 < argc) {
			if (parse_u64(argv[i + 1], &value))
				return usage("a number was expected");
			if (!strcmp(argv[i], "--count"))
				count = value;
			else if (!strcmp(argv[i], "--timeout-ms"))
				timeout_ms = value;
			else
				size = value;
			i++;
		} else {
			rest[nrest++] = argv[i];	/* --session and parts */
			if (!strcmp(argv[i], "--session") && i + 1 < argc)
				rest[nrest++] = argv[++i];
		}
	}

	if (!strcmp(command, "write") || !strcmp(command, "set-ring-size") ||
	    !strcmp(command, "bench-write"))
		flags = (flags & ~MEMLOG_OPEN_READ) | MEMLOG_OPEN_WRITE;
	err = memlog_open(&ml, device, flags);
	if (err)
		return fail(err);
	if (filter) {
		err = memlog_filter_uid(ml, (uint32_t)uid);
		if (err)
			return fail(err);
	}

	if (!strcmp(command, "write")) {
		ret = cmd_write(ml, nrest, rest);
	} else if (!strcmp(command, "dump")) {
		ret = cmd_dump(ml, wait_for);
	} else if (!strcmp(command, "follow")) {
		ret = count ? cmd_follow(ml, count, timeout_ms) :
			      usage("follow needs --count N");
	} else if (!strcmp(command, "stats")) {
		struct memlog_stats st;

		err = memlog_stats(ml, &st);
		if (err)
			return fail(err);
		printf("total_writes %llu\ntotal_evictions %llu\n"
		       "records_in_ring %llu\nring_bytes %u\nring_capacity %u\n"
		       "oldest_ts_ns %llu\nnewest_ts_ns %llu\n",
		       (unsigned long long)st.total_writes,
		       (unsigned long long)st.total_evictions,
		       (unsigned long long)st.records_in_ring, st.ring_bytes,
		       st.ring_capacity, (unsigned long long)st.oldest_ts_ns,
		       (unsigned long long)st.newest_ts_ns);
		ret = 0;
	} else if (!strcmp(command, "lost")) {
		err = memlog_lost(ml, &value);
		if (err)
			return fail(err);
		printf("%" PRIu64 "\n", value);
		ret = 0;
	} else if (!strcmp(command, "clear")) {
		err = memlog_clear(ml);
		ret = err ? fail(err) : 0;
	} else if (!strcmp(command, "version")) {
		uint32_t version;

		err = memlog_schema_version(ml, &version);
		if (err)
			return fail(err);
		printf("%" PRIu32 "\n", version);
		ret = 0;
	} else if (!strcmp(command, "set-ring-size")) {
		if (nrest != 1 || parse_u64(rest[0], &value) || value > UINT32_MAX)
			return usage("set-ring-size takes a size in bytes");
		err = memlog_set_ring_size(ml, (uint32_t)value);
		ret = err ? fail(err) : 0;
	} else if (!strcmp(command, "bench-write")) {
		ret = cmd_bench(ml, size, seconds);
	} else {
		ret = usage("unknown command");
	}
	err = memlog_close(ml);
	free(rest);
	return ret ? ret : (err ? fail(err) : 0);
}
