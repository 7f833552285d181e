/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memlog: the kernel API differences between the kernels it builds on
 * (6.1 and later), kept in this one place.
 */
#ifndef _MEMLOG_COMPAT_H
#define _MEMLOG_COMPAT_H

#include <linux/sysctl.h>
#include <linux/version.h>

/* Since 6.11 proc handlers take a const struct ctl_table */
#if KERNEL_VERSION(6, 11, 0) <= LINUX_VERSION_CODE
#define MEMLOG_CTL_HANDLER_CONST	const
#else
#define MEMLOG_CTL_HANDLER_CONST
#endif

/* Since 6.13 register_sysctl() accepts a const table */
#if KERNEL_VERSION(6, 13, 0) <= LINUX_VERSION_CODE
#define MEMLOG_CTL_TABLE_CONST		const
#else
#define MEMLOG_CTL_TABLE_CONST
#endif

/*
 * Since 6.6 register_sysctl() is a macro passing ARRAY_SIZE(table), and
 * later kernels reject an empty sentinel entry; before, the table must end
 * with one.
 */
#ifdef register_sysctl
#define MEMLOG_CTL_TABLE_END
#else
#define MEMLOG_CTL_TABLE_END		{ }
#endif

#endif /* _MEMLOG_COMPAT_H */
