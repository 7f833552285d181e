// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog: the device's contract, as root in the initial namespaces, with
 * the memlog module loaded (CONFIG_MEMLOG). Every test starts from root's
 * own ring emptied (MEMLOG_IOC_CLEAR).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/memlog.h>

#include "../kselftest_harness.h"

#define DEVICE		"/dev/" MEMLOG_DEVICE_NAME
#define HDR_SIZE	((ssize_t)sizeof(struct memlog_record_header))

struct record {
	struct memlog_record_header hdr;
	char blob[MEMLOG_RECORD_MAX];
};

FIXTURE(memlog) {
	int fd;
	struct record rec;
};

FIXTURE_SETUP(memlog)
{
	if (geteuid())
		SKIP(return, "needs root (CLEAR needs CAP_SYS_ADMIN)");
	self->fd = open(DEVICE, O_RDWR | O_CLOEXEC);
	if (self->fd < 0 && errno == ENOENT)
		SKIP(return, "no %s: load the memlog module", DEVICE);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, ioctl(self->fd, MEMLOG_IOC_CLEAR));
}

FIXTURE_TEARDOWN(memlog)
{
	if (self->fd >= 0)
		close(self->fd);
}

static ssize_t read_record(int fd, struct record *rec)
{
	return read(fd, rec, sizeof(*rec));
}

TEST_F(memlog, write_then_read_returns_the_blob_and_a_stamped_header)
{
	static const char blob[] = "context about to be compacted";

	ASSERT_EQ((ssize_t)sizeof(blob), write(self->fd, blob, sizeof(blob)));
	ASSERT_EQ(HDR_SIZE + (ssize_t)sizeof(blob), read_record(self->fd, &self->rec));
	EXPECT_EQ((__u32)MEMLOG_MAGIC, self->rec.hdr.magic);
	EXPECT_EQ((__u32)MEMLOG_SCHEMA_VERSION, self->rec.hdr.schema_version);
	EXPECT_EQ((__u32)sizeof(blob), self->rec.hdr.length);
	EXPECT_EQ(0U, self->rec.hdr.reserved);
	EXPECT_EQ(geteuid(), self->rec.hdr.uid);
	EXPECT_EQ((__u32)getpid(), self->rec.hdr.pid);
	EXPECT_NE(0ULL, self->rec.hdr.seq);
	EXPECT_NE(0ULL, self->rec.hdr.ts_ns);
	EXPECT_EQ(0, memcmp(blob, self->rec.blob, sizeof(blob)));
	/* One record per read, then the end */
	EXPECT_EQ(0, read_record(self->fd, &self->rec));
}

TEST_F(memlog, seq_strictly_increases)
{
	__u64 last = 0;
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(1, write(self->fd, "x", 1));
	for (i = 0; i < 10; i++) {
		ASSERT_EQ(HDR_SIZE + 1, read_record(self->fd, &self->rec));
		EXPECT_LT(last, self->rec.hdr.seq);
		last = self->rec.hdr.seq;
	}
}

TEST_F(memlog, a_zero_length_write_stores_nothing)
{
	ASSERT_EQ(0, write(self->fd, "", 0));
	EXPECT_EQ(0, read_record(self->fd, &self->rec));
}

TEST_F(memlog, a_write_over_64_kib_is_emsgsize)
{
	static char blob[MEMLOG_RECORD_MAX + 1];

	EXPECT_EQ(-1, write(self->fd, blob, sizeof(blob)));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(0, read_record(self->fd, &self->rec));
}

TEST_F(memlog, a_write_from_null_or_unmapped_memory_is_efault)
{
	/* syscall(): the C library's write() is declared nonnull */
	EXPECT_EQ(-1, syscall(SYS_write, self->fd, NULL, 100));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, syscall(SYS_write, self->fd, 8UL, 100));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, read_record(self->fd, &self->rec));
}

TEST_F(memlog, writev_stores_its_iovecs_as_one_record)
{
	struct iovec iov[] = {
		{ .iov_base = "first ", .iov_len = 6 },
		{ .iov_base = "second", .iov_len = 6 },
	};

	ASSERT_EQ(12, writev(self->fd, iov, 2));
	ASSERT_EQ(HDR_SIZE + 12, read_record(self->fd, &self->rec));
	EXPECT_EQ(0, memcmp("first second", self->rec.blob, 12));
}

TEST_F(memlog, a_read_into_a_too_small_buffer_is_einval_and_keeps_the_record)
{
	char small[HDR_SIZE + 2];

	ASSERT_EQ(3, write(self->fd, "abc", 3));
	EXPECT_EQ(-1, read(self->fd, small, sizeof(small)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(HDR_SIZE + 3, read_record(self->fd, &self->rec));
}

TEST_F(memlog, seeking_to_zero_rewinds_and_other_seeks_are_espipe)
{
	ASSERT_EQ(3, write(self->fd, "abc", 3));
	ASSERT_EQ(HDR_SIZE + 3, read_record(self->fd, &self->rec));
	EXPECT_EQ(0, lseek(self->fd, 0, SEEK_SET));
	EXPECT_EQ(HDR_SIZE + 3, read_record(self->fd, &self->rec));
	EXPECT_EQ(-1, lseek(self->fd, 1, SEEK_SET));
	EXPECT_EQ(ESPIPE, errno);
}

TEST_F(memlog, poll_is_readable_exactly_when_a_record_waits)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };

	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(1, write(self->fd, "p", 1));
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & POLLIN);
	ASSERT_EQ(HDR_SIZE + 1, read_record(self->fd, &self->rec));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
}

TEST_F(memlog, the_session_id_tags_this_files_later_records)
{
	struct memlog_session session;

	memset(session.id, 0x5a, sizeof(session.id));
	ASSERT_EQ(0, ioctl(self->fd, MEMLOG_IOC_SET_SESSION, &session));
	ASSERT_EQ(1, write(self->fd, "s", 1));
	ASSERT_EQ(HDR_SIZE + 1, read_record(self->fd, &self->rec));
	EXPECT_EQ(0, memcmp(session.id, self->rec.hdr.session_id, sizeof(session.id)));
}

TEST_F(memlog, stats_count_the_records_and_their_bytes)
{
	struct memlog_stats st;

	ASSERT_EQ(64, write(self->fd, self->rec.blob, 64));
	ASSERT_EQ(64, write(self->fd, self->rec.blob, 64));
	ASSERT_EQ(0, ioctl(self->fd, MEMLOG_IOC_STATS, &st));
	EXPECT_EQ(2ULL, st.records_in_ring);
	/* The header, the blob, padded to 8 */
	EXPECT_EQ(2 * ((HDR_SIZE + 64 + 7) & ~7), (ssize_t)st.ring_bytes);
	EXPECT_LE(st.oldest_ts_ns, st.newest_ts_ns);
}

TEST_F(memlog, clear_drops_the_records_and_counts_them_lost)
{
	int reader = open(DEVICE, O_RDONLY | O_CLOEXEC);
	__u64 lost = 0;

	ASSERT_LE(0, reader);
	ASSERT_EQ(1, write(self->fd, "c", 1));
	ASSERT_EQ(0, ioctl(self->fd, MEMLOG_IOC_CLEAR));
	EXPECT_EQ(0, read_record(reader, &self->rec));
	ASSERT_EQ(0, ioctl(reader, MEMLOG_IOC_GET_LOST, &lost));
	EXPECT_EQ(1ULL, lost);
	close(reader);
}

TEST_F(memlog, get_version_is_the_record_schema_version)
{
	__u32 version = 0;

	ASSERT_EQ(0, ioctl(self->fd, MEMLOG_IOC_GET_VERSION, &version));
	EXPECT_EQ((__u32)MEMLOG_SCHEMA_VERSION, version);
}

TEST_F(memlog, an_unknown_ioctl_is_enotty)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO(MEMLOG_IOC_TYPE, 0x1f)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_HARNESS_MAIN
