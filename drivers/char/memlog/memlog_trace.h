/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memlog trace events
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM memlog

#if !defined(_MEMLOG_TRACE_H_) || defined(TRACE_HEADER_MULTI_READ)
#define _MEMLOG_TRACE_H_

#include <linux/tracepoint.h>
#include <linux/types.h>

TRACE_EVENT(record_written,
	    TP_PROTO(u64 seq, u32 uid, u32 pid, u32 length),
	    TP_ARGS(seq, uid, pid, length),
	    TP_STRUCT__entry(__field(u64, seq)
			     __field(u32, uid)
			     __field(u32, pid)
			     __field(u32, length)),
	    TP_fast_assign(__entry->seq = seq;
			   __entry->uid = uid;
			   __entry->pid = pid;
			   __entry->length = length;),
	    TP_printk("seq=%llu uid=%u pid=%u length=%u",
		      __entry->seq, __entry->uid, __entry->pid, __entry->length)
);

#endif /* _MEMLOG_TRACE_H_ */

/* This part must be outside protection */
#undef TRACE_INCLUDE_PATH
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_PATH .
#define TRACE_INCLUDE_FILE memlog_trace
#include <trace/define_trace.h>
