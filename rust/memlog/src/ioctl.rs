// SPDX-License-Identifier: MIT OR Apache-2.0
//! The device's ioctl request numbers, computed as the kernel's `_IOC`
//! macros do (the generic encoding, used by x86-64, arm64 and most others:
//! `dir << 30 | size << 16 | type << 8 | nr`).

use crate::uapi::{Session, Stats};
use core::mem::size_of;

/// `_IOC_NONE`: no argument is copied.
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`: userspace writes the argument (the kernel reads it).
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: userspace reads the argument (the kernel writes it).
pub const IOC_READ: u32 = 2;

const NRBITS: u32 = 8;
const TYPEBITS: u32 = 8;
const SIZEBITS: u32 = 14;
const NRSHIFT: u32 = 0;
const TYPESHIFT: u32 = NRSHIFT + NRBITS;
const SIZESHIFT: u32 = TYPESHIFT + TYPEBITS;
const DIRSHIFT: u32 = SIZESHIFT + SIZEBITS;

/// `_IOC(dir, type, nr, size)`. A size that does not fit the 14-bit field
/// (or a type or nr over 255) stops the build when used in a constant.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    assert!(dir <= 3, "_IOC: dir has 2 bits");
    assert!(ty <= 0xFF, "_IOC: type has 8 bits");
    assert!(nr <= 0xFF, "_IOC: nr has 8 bits");
    assert!(size < (1 << SIZEBITS), "_IOC: size has 14 bits");
    (dir << DIRSHIFT) | ((size as u32) << SIZESHIFT) | (ty << TYPESHIFT) | (nr << NRSHIFT)
}

/// `_IO(type, nr)`.
pub const fn io(ty: u32, nr: u32) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, T)`, with `size = size_of::<T>()`.
pub const fn ior(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOW(type, nr, T)`, with `size = size_of::<T>()`.
pub const fn iow(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOC_SIZE(request)`: the argument size encoded in a request.
pub const fn ioc_size(request: u32) -> usize {
    ((request >> SIZESHIFT) & ((1 << SIZEBITS) - 1)) as usize
}

/// `_IOC_DIR(request)`.
pub const fn ioc_dir(request: u32) -> u32 {
    request >> DIRSHIFT
}

/// `MEMLOG_IOC_TYPE`.
pub const TYPE: u32 = 0xC1;

/// `MEMLOG_IOC_STATS`: `_IOR(0xC1, 1, struct memlog_stats)`.
pub const STATS: u32 = ior(TYPE, 1, size_of::<Stats>());
/// `MEMLOG_IOC_CLEAR`: `_IO(0xC1, 2)`.
pub const CLEAR: u32 = io(TYPE, 2);
/// `MEMLOG_IOC_SET_RING_SIZE`: `_IOW(0xC1, 3, __u32)`.
pub const SET_RING_SIZE: u32 = iow(TYPE, 3, size_of::<u32>());
/// `MEMLOG_IOC_FILTER_UID`: `_IOW(0xC1, 4, __u32)`.
pub const FILTER_UID: u32 = iow(TYPE, 4, size_of::<u32>());
/// `MEMLOG_IOC_GET_VERSION`: `_IOR(0xC1, 5, __u32)`.
pub const GET_VERSION: u32 = ior(TYPE, 5, size_of::<u32>());
/// `MEMLOG_IOC_SET_SESSION`: `_IOW(0xC1, 6, struct memlog_session)`.
pub const SET_SESSION: u32 = iow(TYPE, 6, size_of::<Session>());
/// `MEMLOG_IOC_GET_LOST`: `_IOR(0xC1, 7, __u64)`.
pub const GET_LOST: u32 = ior(TYPE, 7, size_of::<u64>());
