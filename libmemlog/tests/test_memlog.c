// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * libmemlog's checks that need no device: arguments, errors, records read
 * from files made to look like the device's output. TAP on stdout.
 * argv[1]: the version meson.build gives the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <memlog/memlog.h>

static int tests, failures;

#define CHECK(cond) check(cond, #cond, __LINE__)

static void check(int ok, const char *what, int line)
{
	tests++;
	if (!ok)
		failures++;
	printf("%sok %d - line %d: %s\n", ok ? "" : "not ", tests, line, what);
}

/* A file holding @n bytes of one record whose blob is @blob */
static char *record_file(const char *blob, uint32_t magic, int cut)
{
	static char path[] = "/tmp/test-memlog-XXXXXX";
	struct memlog_record_header h = {
		.magic = magic,
		.schema_version = MEMLOG_SCHEMA_VERSION,
		.length = strlen(blob),
		.seq = 7,
		.uid = 1000,
		.pid = 42,
	};
	int fd;

	strcpy(path, "/tmp/test-memlog-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, &h, sizeof(h)) != sizeof(h) ||
	    write(fd, blob, strlen(blob) - cut) != (ssize_t)(strlen(blob) - cut)) {
		perror("record_file");
		exit(1);
	}
	close(fd);
	return path;
}

static void test_open_arguments(void)
{
	struct memlog *ml = NULL;

	CHECK(memlog_open(&ml, "/dev/null", 0) == -EINVAL);
	CHECK(memlog_open(&ml, "/dev/null", MEMLOG_OPEN_NONBLOCK) == -EINVAL);
	CHECK(memlog_open(&ml, "/dev/null", MEMLOG_OPEN_READ | 0x100) == -EINVAL);
	CHECK(memlog_open(NULL, "/dev/null", MEMLOG_OPEN_READ) == -EINVAL);
	CHECK(memlog_open(&ml, "/nonexistent/memlog", MEMLOG_OPEN_READ) == -ENOENT);
	CHECK(ml == NULL);
	CHECK(memlog_close(NULL) == 0);
	CHECK(memlog_fd(NULL) == -EINVAL);
	CHECK(memlog_stats(NULL, &(struct memlog_stats){ 0 }) == -EINVAL);
	CHECK(memlog_write(NULL, "x", 1) == -EINVAL);
}

static void test_not_a_memlog_device(void)
{
	const struct memlog_record *rec = NULL;
	struct memlog_stats st;
	struct memlog *ml;
	uint64_t lost;
	int fd;

	CHECK(memlog_open(&ml, "/dev/null", MEMLOG_OPEN_READ | MEMLOG_OPEN_WRITE) == 0);
	fd = memlog_fd(ml);
	CHECK(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
	CHECK(memlog_stats(ml, &st) == -ENOTTY);
	CHECK(memlog_lost(ml, &lost) == -ENOTTY);
	CHECK(memlog_clear(ml) == -ENOTTY);
	CHECK(memlog_filter_uid(ml, MEMLOG_UID_ALL) == -ENOTTY);
	CHECK(memlog_read_record(ml, &rec) == 0 && rec == NULL);
	CHECK(memlog_write(ml, "hello", 5) == 5);
	CHECK(memlog_writev(ml, (struct iovec[]){ { "ab", 2 }, { "cde", 3 } }, 2) == 5);
	CHECK(memlog_wait(ml, 0) == 1);
	CHECK(memlog_close(ml) == 0);

	CHECK(memlog_open(&ml, "/dev/null", MEMLOG_OPEN_WRITE | MEMLOG_OPEN_NONBLOCK) == 0);
	CHECK((fcntl(memlog_fd(ml), F_GETFL) & (O_ACCMODE | O_NONBLOCK)) ==
	      (O_WRONLY | O_NONBLOCK));
	CHECK(memlog_read_record(ml, &rec) == -EBADF);
	memlog_close(ml);
}

static void test_records(void)
{
	const struct memlog_record *rec = NULL;
	struct memlog_record_header h;
	struct memlog *ml;
	char *path, small[4], big[16];

	path = record_file("hello", MEMLOG_MAGIC, 0);
	CHECK(memlog_open(&ml, path, MEMLOG_OPEN_READ) == 0);
	CHECK(memlog_read_record(ml, &rec) == 1);
	CHECK(rec && rec->header.length == 5 && rec->header.seq == 7 &&
	      rec->header.uid == 1000 && !memcmp(rec->blob, "hello", 5));
	CHECK(memlog_read_record(ml, &rec) == 0);
	memlog_close(ml);

	CHECK(memlog_open(&ml, path, MEMLOG_OPEN_READ) == 0);
	CHECK(memlog_read(ml, &h, big, sizeof(big)) == 5);
	CHECK(h.pid == 42 && !memcmp(big, "hello", 5));
	memlog_close(ml);

	/* A regular file gives what fits, unlike the device (-EINVAL) */
	CHECK(memlog_open(&ml, path, MEMLOG_OPEN_READ) == 0);
	CHECK(memlog_read(ml, &h, small, sizeof(small)) == -EBADMSG);
	memlog_close(ml);
	unlink(path);

	path = record_file("hello", MEMLOG_MAGIC ^ 1, 0);
	CHECK(memlog_open(&ml, path, MEMLOG_OPEN_READ) == 0);
	CHECK(memlog_read_record(ml, &rec) == -EBADMSG);
	memlog_close(ml);
	unlink(path);

	path = record_file("hello", MEMLOG_MAGIC, 2);
	CHECK(memlog_open(&ml, path, MEMLOG_OPEN_READ) == 0);
	CHECK(memlog_read_record(ml, &rec) == -EBADMSG);
	memlog_close(ml);
	unlink(path);
}

static void test_errors(const char *version)
{
	CHECK(strstr(memlog_strerror(-ENOSPC), "max_bytes") != NULL);
	CHECK(memlog_strerror(ENOSPC) == memlog_strerror(-ENOSPC));
	CHECK(strstr(memlog_strerror(-EACCES), "memlog group") != NULL);
	CHECK(strcmp(memlog_strerror(0), "success") == 0);
	CHECK(strlen(memlog_strerror(-ETIMEDOUT)) > 0);
	CHECK(strcmp(memlog_strerror(-123456), "unknown error") == 0);
	CHECK(strcmp(memlog_library_version(), version) == 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-memlog VERSION\n");
		return 2;
	}
	test_open_arguments();
	test_not_a_memlog_device();
	test_records();
	test_errors(argv[1]);
	printf("1..%d\n", tests);
	return failures ? 1 : 0;
}
