// SPDX-License-Identifier: MIT OR Apache-2.0
/* The README's example: write a record, read the caller's records back */
#include <stdio.h>
#include <memlog/memlog.h>

int main(void)
{
	const struct memlog_record *rec;
	struct memlog *ml = NULL;
	int err = memlog_open(&ml, NULL, MEMLOG_OPEN_READ | MEMLOG_OPEN_WRITE);

	if (!err && (err = memlog_write(ml, "hello", 5)) >= 0)
		while ((err = memlog_read_record(ml, &rec)) > 0)
			printf("seq %llu: %.*s\n", (unsigned long long)rec->header.seq,
			       (int)rec->header.length, (const char *)rec->blob);
	if (err < 0)
		fprintf(stderr, "hello: %s\n", memlog_strerror(err));
	memlog_close(ml);
	return err < 0;
}
