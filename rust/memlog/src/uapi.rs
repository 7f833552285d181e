// SPDX-License-Identifier: MIT OR Apache-2.0
//! The binary contract of `<linux/memlog.h>`: constants, the three structs
//! the device reads and writes, and the record parsing that checks them.

use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Name of the device node under `/dev` (`MEMLOG_DEVICE_NAME`).
pub const DEVICE_NAME: &str = "memlog";
/// The device node the kernel's udev rule makes.
pub const DEFAULT_PATH: &str = "/dev/memlog";
/// `magic` of every record header (`MEMLOG_MAGIC`, `'MLOG'`).
pub const MAGIC: u32 = 0x4D4C_4F47;
/// The record header's schema version (`MEMLOG_SCHEMA_VERSION`).
pub const SCHEMA_VERSION: u32 = 1;
/// The largest blob of one record, in bytes (`MEMLOG_RECORD_MAX`).
pub const RECORD_MAX: usize = 65536;
/// Length of a session id (`MEMLOG_SESSION_ID_LEN`).
pub const SESSION_ID_LEN: usize = 16;
/// Smallest ring size, in bytes (`MEMLOG_RING_SIZE_MIN`).
pub const RING_SIZE_MIN: u32 = 64 << 10;
/// Largest ring size, in bytes (`MEMLOG_RING_SIZE_MAX`).
pub const RING_SIZE_MAX: u32 = 256 << 20;
/// Default ring size, in bytes (`MEMLOG_RING_SIZE_DEFAULT`).
pub const RING_SIZE_DEFAULT: u32 = 4 << 20;
/// Smallest `kernel.memlog.max_bytes` (`MEMLOG_MAX_BYTES_MIN`).
pub const MAX_BYTES_MIN: u64 = 64 << 10;
/// Default `kernel.memlog.max_bytes` (`MEMLOG_MAX_BYTES_DEFAULT`).
pub const MAX_BYTES_DEFAULT: u64 = 64 << 20;
/// `FILTER_UID` argument selecting every uid (`MEMLOG_UID_ALL`).
pub const UID_ALL: u32 = 0xFFFF_FFFF;
/// Size of [`RecordHeader`], which starts every record read.
pub const HEADER_LEN: usize = 56;
/// A read buffer of this size always holds the next record.
pub const READ_BUFFER_LEN: usize = HEADER_LEN + RECORD_MAX;

/// Declares a `#[repr(C)]` UAPI struct together with compile-time checks
/// of its layout: each field's offset (computed from the field types by
/// the `repr(C)` rule, in declaration order, so it cannot drift from the
/// struct) must be the header's, with no padding anywhere, and the size
/// must be the header's. The integration tests check the same offsets
/// again on a real value (`addr_of!`) and against the C compiler.
macro_rules! uapi_struct {
    (
        $(#[$attr:meta])*
        pub struct $name:ident: $size:literal bytes {
            $( $(#[$fattr:meta])* pub $field:ident: $ty:ty = $off:literal, )+
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        pub struct $name {
            $( $(#[$fattr])* pub $field: $ty, )+
        }

        const _: () = {
            let mut end = 0usize;
            $(
                let align = core::mem::align_of::<$ty>();
                let offset = (end + align - 1) / align * align;
                assert!(
                    offset == end,
                    concat!(stringify!($name), ".", stringify!($field), " follows padding")
                );
                assert!(
                    offset == $off,
                    concat!(stringify!($name), ".", stringify!($field), " is not at its UAPI offset")
                );
                end = offset + core::mem::size_of::<$ty>();
            )+
            assert!(end == $size, concat!(stringify!($name), " has tail padding"));
            assert!(
                core::mem::size_of::<$name>() == $size,
                concat!(stringify!($name), " is not its UAPI size")
            );
        };
    };
}

uapi_struct! {
    /// `struct memlog_record_header`: the 56 bytes that start every record
    /// read, in the host's byte order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RecordHeader: 56 bytes {
        /// [`MAGIC`].
        pub magic: u32 = 0,
        /// [`SCHEMA_VERSION`].
        pub schema_version: u32 = 4,
        /// Bytes of blob following the header.
        pub length: u32 = 8,
        /// 0.
        pub reserved: u32 = 12,
        /// `CLOCK_REALTIME` at write, in nanoseconds.
        pub ts_ns: u64 = 16,
        /// Global sequence number, strictly increasing.
        pub seq: u64 = 24,
        /// The writer's opener's effective uid, in the reader's user namespace.
        pub uid: u32 = 32,
        /// The writer's thread group id, in the reader's pid namespace (0 if
        /// the reader's namespace cannot see the writer).
        pub pid: u32 = 36,
        /// The session id the writing fd was tagged with (`SET_SESSION`).
        pub session_id: [u8; SESSION_ID_LEN] = 40,
    }
}

uapi_struct! {
    /// `struct memlog_stats`: the `STATS` ioctl's result for the fd's view
    /// (one uid's ring, or every ring summed).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Stats: 48 bytes {
        /// Records ever written.
        pub total_writes: u64 = 0,
        /// Records evicted to make room.
        pub total_evictions: u64 = 8,
        /// Records stored now.
        pub records_in_ring: u64 = 16,
        /// Bytes the view's records take now, headers and padding included.
        pub ring_bytes: u32 = 24,
        /// Bytes the view may hold.
        pub ring_capacity: u32 = 28,
        /// `ts_ns` of the oldest record, 0 if none.
        pub oldest_ts_ns: u64 = 32,
        /// `ts_ns` of the newest record, 0 if none.
        pub newest_ts_ns: u64 = 40,
    }
}

uapi_struct! {
    /// `struct memlog_session`: the `SET_SESSION` ioctl's argument.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Session: 16 bytes {
        /// The id later writes of the fd are tagged with.
        pub id: [u8; SESSION_ID_LEN] = 0,
    }
}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == HEADER_LEN);

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads the header's fields in declaration order; the layout checks above
/// prove that order is the byte layout (no padding).
struct Fields<'a> {
    bytes: &'a [u8; HEADER_LEN],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.bytes[self.pos..self.pos + N]);
        self.pos += N;
        out
    }
    fn u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_ne_bytes(self.take())
    }
}

impl RecordHeader {
    /// Parses the header at the start of `bytes` (host byte order, as the
    /// device returns it). Only the first [`HEADER_LEN`] bytes are looked
    /// at.
    ///
    /// Errors with [`io::ErrorKind::InvalidData`] if `bytes` is shorter
    /// than a header or the magic is not [`MAGIC`]. The schema version is
    /// not checked (see [`RecordHeader::schema_version`]).
    pub fn from_bytes(bytes: &[u8]) -> io::Result<RecordHeader> {
        let head: &[u8; HEADER_LEN] = match bytes.get(..HEADER_LEN) {
            Some(head) => head
                .try_into()
                .map_err(|_| invalid("short record header".into()))?,
            None => {
                return Err(invalid(format!(
                    "not a memlog record: {} bytes, shorter than the {}-byte header",
                    bytes.len(),
                    HEADER_LEN
                )))
            }
        };
        let mut f = Fields { bytes: head, pos: 0 };
        let header = RecordHeader {
            magic: f.u32(),
            schema_version: f.u32(),
            length: f.u32(),
            reserved: f.u32(),
            ts_ns: f.u64(),
            seq: f.u64(),
            uid: f.u32(),
            pid: f.u32(),
            session_id: f.take(),
        };
        if header.magic != MAGIC {
            return Err(invalid(format!(
                "not a memlog record: magic {:#010x}, expected {:#010x}",
                header.magic, MAGIC
            )));
        }
        Ok(header)
    }

    /// The header's 56 bytes, in host byte order: what the device returned.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let parts: [&[u8]; 9] = [
            &self.magic.to_ne_bytes(),
            &self.schema_version.to_ne_bytes(),
            &self.length.to_ne_bytes(),
            &self.reserved.to_ne_bytes(),
            &self.ts_ns.to_ne_bytes(),
            &self.seq.to_ne_bytes(),
            &self.uid.to_ne_bytes(),
            &self.pid.to_ne_bytes(),
            &self.session_id,
        ];
        let mut pos = 0;
        for part in parts {
            out[pos..pos + part.len()].copy_from_slice(part);
            pos += part.len();
        }
        out
    }
}

/// One record as read from the device: its header and its blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The kernel's header; `header.length == blob.len()`.
    pub header: RecordHeader,
    /// The bytes the writer wrote.
    pub blob: Vec<u8>,
}

impl Record {
    /// Parses one whole record, as one read(2) returned it: a header and
    /// exactly `header.length` bytes of blob.
    ///
    /// Errors with [`io::ErrorKind::InvalidData`] if the bytes are shorter
    /// than a header, the magic is wrong, or the length disagrees with the
    /// number of bytes after the header.
    pub fn from_bytes(bytes: &[u8]) -> io::Result<Record> {
        let header = RecordHeader::from_bytes(bytes)?;
        let blob = bytes.get(HEADER_LEN..).unwrap_or(&[]);
        if u64::from(header.length) != blob.len() as u64 {
            return Err(invalid(format!(
                "not a memlog record: header says {} bytes of blob, {} follow",
                header.length,
                blob.len()
            )));
        }
        Ok(Record {
            header,
            blob: blob.to_vec(),
        })
    }

    /// The header's bytes followed by the blob: exactly what the device
    /// returned for this record.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.blob.len());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.blob);
        out
    }

    /// The global sequence number.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// `CLOCK_REALTIME` at write, in nanoseconds since the epoch.
    pub fn ts_ns(&self) -> u64 {
        self.header.ts_ns
    }

    /// The write time as a [`SystemTime`] (`None` if not representable).
    pub fn time(&self) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_nanos(self.header.ts_ns))
    }

    /// The writer's uid, as the reader's user namespace sees it.
    pub fn uid(&self) -> u32 {
        self.header.uid
    }

    /// The writer's thread group id, as the reader's pid namespace sees it.
    pub fn pid(&self) -> u32 {
        self.header.pid
    }

    /// The session id the writer's fd was tagged with (zeros if none).
    pub fn session_id(&self) -> [u8; SESSION_ID_LEN] {
        self.header.session_id
    }

    /// The blob.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The blob, by value.
    pub fn into_blob(self) -> Vec<u8> {
        self.blob
    }
}
