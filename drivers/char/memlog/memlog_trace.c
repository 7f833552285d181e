// SPDX-License-Identifier: GPL-2.0-only
/*
 * memlog trace events: the one place that creates them
 */
#include <linux/module.h>

#define CREATE_TRACE_POINTS
#include "memlog_trace.h"
