// SPDX-License-Identifier: MIT OR Apache-2.0
//! Safe access to `/dev/memlog`, the Linux character device that keeps, in
//! kernel memory, one ring of opaque records per user id.
//!
//! The binary contract is the kernel's UAPI header `<linux/memlog.h>`; this
//! crate mirrors it exactly ([`RecordHeader`], [`Stats`], [`Session`], the
//! constants and the [`ioctl`] request numbers, all checked at compile time
//! and, by the tests, against the C compiler's view of the header).
//!
//! * Every [`Device::write`] or [`Device::write_vectored`] stores one
//!   record of 1 to [`RECORD_MAX`] bytes, all or nothing.
//! * Every [`Device::read_record`] returns one whole record, or `None`
//!   when none is readable now: reads never block. [`Device::wait`] polls
//!   for the next one; [`Device::records`] and [`Device::follow`] iterate.
//! * Errors are the device's errno values, as [`std::io::Error`]s
//!   (`raw_os_error()` gives `EACCES`, `ENOSPC`, `EMSGSIZE`, `EAGAIN`...).
//!   Bytes that are not a memlog record are [`std::io::ErrorKind::InvalidData`],
//!   never a panic.
//!
//! See [`Device`] for what may be shared between threads.
//!
//! ```no_run
//! use memlog::{Device, Mode};
//! use std::time::Duration;
//!
//! let writer = Device::open_default(Mode::Write)?;
//! writer.set_session(*b"0123456789abcdef")?;
//! writer.write(b"compacted context")?;
//!
//! let mut reader = Device::open_default(Mode::Read)?;
//! for record in reader.follow(Some(Duration::from_secs(1))) {
//!     let record = record?;
//!     println!("{} uid {} pid {}: {:?}", record.seq(), record.uid(), record.pid(), record.blob());
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod device;
pub mod ioctl;
mod uapi;

pub use device::{Device, Follow, Mode, OpenOptions, Records, View};
pub use uapi::{
    Record, RecordHeader, Session, Stats, DEFAULT_PATH, DEVICE_NAME, HEADER_LEN, MAGIC,
    MAX_BYTES_DEFAULT, MAX_BYTES_MIN, READ_BUFFER_LEN, RECORD_MAX, RING_SIZE_DEFAULT,
    RING_SIZE_MAX, RING_SIZE_MIN, SCHEMA_VERSION, SESSION_ID_LEN, UID_ALL,
};
