/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memlog: what a build outside the newest kernel's tree needs, kept in this
 * one place: the kernel API differences between the kernels it builds on
 * (6.1 and later), and the driver's version.
 *
 * The upstream patch series (invoke patch-series) has no such header: each
 * macro below becomes its newest kernel's spelling there, and this file's
 * #include line becomes the version's #define (wintermute/upstream/driver.py).
 */
#ifndef _MEMLOG_COMPAT_H
#define _MEMLOG_COMPAT_H

#include <linux/slab.h>
#include <linux/sysctl.h>
#include <linux/version.h>

/*
 * MEMLOG_DRIVER_VERSION: kernel.yaml's memlog.version, written by the build
 * into memlog_version.h, or (make in a clone's drivers/char/memlog) given by
 * Kbuild from the repository's kernel.yaml
 */
#ifndef MEMLOG_DRIVER_VERSION
#include "memlog_version.h"
#endif

/*
 * Newer kernels (7.2, not 6.12) have kzalloc_obj(): one object of a
 * variable's type, allocated as kzalloc(sizeof(...)) did before
 */
#ifndef kzalloc_obj
#define kzalloc_obj(VAR_OR_TYPE, GFP)	kzalloc(sizeof(VAR_OR_TYPE), GFP)
#endif

/* Since 6.11 proc handlers take (and pass on) a const struct ctl_table */
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
