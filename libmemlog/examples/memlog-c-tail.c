// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * memlog-c-tail: follow /dev/memlog as `memlog tail -f` does, on libmemlog.
 *
 *   memlog-c-tail [--uid UID | --all] [--device PATH]
 *
 * One line per record: time (UTC), uid, pid, session, size and the blob as
 * text when it is printable ASCII, else its first bytes in hex. Records
 * evicted before they could be read are reported on stderr. Ctrl-C stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <memlog/memlog.h>

#define PREVIEW 32

static void print_blob(const unsigned char *blob, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (blob[i] < 0x20 || blob[i] > 0x7e)
			break;
	if (i == len) {
		fwrite(blob, 1, len, stdout);
		return;
	}
	fputs("h'", stdout);
	for (i = 0; i < len && i < PREVIEW; i++)
		printf("%02x", blob[i]);
	printf(len > PREVIEW ? "...' (%" PRIu32 " bytes)" : "'", len);
}

static void print_record(const struct memlog_record *rec)
{
	const struct memlog_record_header *h = &rec->header;
	time_t secs = h->ts_ns / 1000000000;
	static const uint8_t none[MEMLOG_SESSION_ID_LEN];
	char when[32] = "?";
	struct tm tm;
	int i;

	if (gmtime_r(&secs, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s.%06" PRIu64 " uid=%" PRIu32 " pid=%" PRIu32 " session=", when,
	       (uint64_t)(h->ts_ns % 1000000000 / 1000), h->uid, h->pid);
	if (!memcmp(h->session_id, none, sizeof(none)))
		putchar('-');
	for (i = 0; i < 4 && memcmp(h->session_id, none, sizeof(none)); i++)
		printf("%02x", h->session_id[i]);
	printf(" %" PRIu32 " B: ", h->length);
	print_blob(rec->blob, h->length);
	putchar('\n');
	fflush(stdout);
}

static int usage(void)
{
	fputs("usage: memlog-c-tail [--uid UID | --all] [--device PATH]\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const struct memlog_record *rec;
	const char *device = NULL;
	uint64_t lost, reported = 0;
	struct memlog *ml;
	long long uid = -1;
	char *end;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--all")) {
			uid = MEMLOG_UID_ALL;
		} else if (!strcmp(argv[i], "--uid") && i + 1 < argc) {
			errno = 0;
			uid = strtoll(argv[++i], &end, 10);
			if (errno || *end || uid < 0 || uid >= MEMLOG_UID_ALL)
				return usage();
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			device = argv[++i];
		} else {
			return usage();
		}
	}

	err = memlog_open(&ml, device, MEMLOG_OPEN_READ);
	if (err) {
		fprintf(stderr, "memlog-c-tail: %s: %s\n",
			device ? device : MEMLOG_DEFAULT_PATH, memlog_strerror(err));
		return 1;
	}
	if (uid >= 0) {
		err = memlog_filter_uid(ml, uid);
		if (err)
			goto fail;
	}
	for (;;) {
		err = memlog_read_record(ml, &rec);
		if (err < 0)
			goto fail;
		if (err > 0) {
			print_record(rec);
		} else {
			err = memlog_wait(ml, -1);
			if (err < 0)
				goto fail;
		}
		if (!memlog_lost(ml, &lost) && lost > reported) {
			fprintf(stderr,
				"memlog-c-tail: warning: %" PRIu64
				" record(s) evicted before they could be read\n",
				lost - reported);
			reported = lost;
		}
	}
fail:
	fprintf(stderr, "memlog-c-tail: %s\n", memlog_strerror(err));
	memlog_close(ml);
	return 1;
}
