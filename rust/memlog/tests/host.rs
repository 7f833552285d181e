// SPDX-License-Identifier: MIT OR Apache-2.0
//! Host tests: no memlog device needed. The layouts and request numbers are
//! checked against the C compiler's reading of the UAPI header; the fd
//! paths run on /dev/null and on datagram sockets, which keep record
//! boundaries as the device does.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read};
use std::os::unix::io::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::ptr::addr_of;
use std::thread;
use std::time::{Duration, Instant};

use memlog::{
    ioctl, Device, Mode, OpenOptions, Record, RecordHeader, Session, Stats, View, HEADER_LEN,
    MAGIC, READ_BUFFER_LEN, RECORD_MAX, SCHEMA_VERSION, UID_ALL,
};

/// Byte offset of a field of `base` (a pointer difference: no unsafe).
fn offset<T, F>(base: &T, field: *const F) -> usize {
    field as usize - base as *const T as usize
}

/// Sizes and offsets of the Rust structs, as the compiler laid them out.
fn rust_layout() -> HashMap<String, u64> {
    let h = RecordHeader::default();
    let s = Stats::default();
    let x = Session::default();
    let mut m = HashMap::new();
    let mut put = |k: &str, v: usize| {
        m.insert(k.to_string(), v as u64);
    };
    put("sizeof_header", std::mem::size_of::<RecordHeader>());
    put("header.magic", offset(&h, addr_of!(h.magic)));
    put("header.schema_version", offset(&h, addr_of!(h.schema_version)));
    put("header.length", offset(&h, addr_of!(h.length)));
    put("header.reserved", offset(&h, addr_of!(h.reserved)));
    put("header.ts_ns", offset(&h, addr_of!(h.ts_ns)));
    put("header.seq", offset(&h, addr_of!(h.seq)));
    put("header.uid", offset(&h, addr_of!(h.uid)));
    put("header.pid", offset(&h, addr_of!(h.pid)));
    put("header.session_id", offset(&h, addr_of!(h.session_id)));
    put("sizeof_stats", std::mem::size_of::<Stats>());
    put("stats.total_writes", offset(&s, addr_of!(s.total_writes)));
    put("stats.total_evictions", offset(&s, addr_of!(s.total_evictions)));
    put("stats.records_in_ring", offset(&s, addr_of!(s.records_in_ring)));
    put("stats.ring_bytes", offset(&s, addr_of!(s.ring_bytes)));
    put("stats.ring_capacity", offset(&s, addr_of!(s.ring_capacity)));
    put("stats.oldest_ts_ns", offset(&s, addr_of!(s.oldest_ts_ns)));
    put("stats.newest_ts_ns", offset(&s, addr_of!(s.newest_ts_ns)));
    put("sizeof_session", std::mem::size_of::<Session>());
    put("session.id", offset(&x, addr_of!(x.id)));
    m
}

fn rust_constants() -> HashMap<String, u64> {
    let mut m: HashMap<String, u64> = [
        ("MEMLOG_IOC_STATS", ioctl::STATS),
        ("MEMLOG_IOC_CLEAR", ioctl::CLEAR),
        ("MEMLOG_IOC_SET_RING_SIZE", ioctl::SET_RING_SIZE),
        ("MEMLOG_IOC_FILTER_UID", ioctl::FILTER_UID),
        ("MEMLOG_IOC_GET_VERSION", ioctl::GET_VERSION),
        ("MEMLOG_IOC_SET_SESSION", ioctl::SET_SESSION),
        ("MEMLOG_IOC_GET_LOST", ioctl::GET_LOST),
        ("MEMLOG_IOC_TYPE", ioctl::TYPE),
        ("MEMLOG_MAGIC", MAGIC),
        ("MEMLOG_SCHEMA_VERSION", SCHEMA_VERSION),
        ("MEMLOG_UID_ALL", UID_ALL),
        ("MEMLOG_RING_SIZE_MIN", memlog::RING_SIZE_MIN),
        ("MEMLOG_RING_SIZE_MAX", memlog::RING_SIZE_MAX),
        ("MEMLOG_RING_SIZE_DEFAULT", memlog::RING_SIZE_DEFAULT),
    ]
    .iter()
    .map(|&(k, v)| (k.to_string(), u64::from(v)))
    .collect();
    m.insert("MEMLOG_RECORD_MAX".into(), RECORD_MAX as u64);
    m.insert("MEMLOG_SESSION_ID_LEN".into(), memlog::SESSION_ID_LEN as u64);
    m.insert("MEMLOG_MAX_BYTES_MIN".into(), memlog::MAX_BYTES_MIN);
    m.insert("MEMLOG_MAX_BYTES_DEFAULT".into(), memlog::MAX_BYTES_DEFAULT);
    m
}

/// Compiles and runs a C program printing, from the UAPI header, every
/// number the crate mirrors: "name value" lines.
fn c_numbers() -> HashMap<String, u64> {
    let uapi = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/uapi");
    assert!(uapi.join("linux/memlog.h").is_file(), "no UAPI header in {}", uapi.display());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("memlog_uapi_numbers.c");
    let exe = dir.join(format!("memlog_uapi_numbers.{}", std::process::id()));
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/memlog.h>\n\
         #define N(x) printf(\"%s %llu\\n\", #x, (unsigned long long)(x));\n\
         #define F(k, s, f) printf(\"%s.%s %zu\\n\", k, #f, offsetof(struct s, f));\n\
         int main(void)\n{\n",
    );
    for name in rust_constants().keys() {
        c.push_str(&format!("N({})\n", name));
    }
    c.push_str(
        "printf(\"sizeof_header %zu\\n\", sizeof(struct memlog_record_header));\n\
         printf(\"sizeof_stats %zu\\n\", sizeof(struct memlog_stats));\n\
         printf(\"sizeof_session %zu\\n\", sizeof(struct memlog_session));\n",
    );
    for f in ["magic", "schema_version", "length", "reserved", "ts_ns", "seq", "uid", "pid", "session_id"] {
        c.push_str(&format!("F(\"header\", memlog_record_header, {})\n", f));
    }
    for f in [
        "total_writes", "total_evictions", "records_in_ring", "ring_bytes", "ring_capacity",
        "oldest_ts_ns", "newest_ts_ns",
    ] {
        c.push_str(&format!("F(\"stats\", memlog_stats, {})\n", f));
    }
    c.push_str("F(\"session\", memlog_session, id)\nreturn 0;\n}\n");
    std::fs::write(&src, c).unwrap();

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(&uapi)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {}", cc, e));
    assert!(status.success(), "{} failed on {}", cc, src.display());
    let output = Command::new(&exe).output().unwrap();
    let _ = std::fs::remove_file(&exe);
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (k, v) = line.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn layouts_and_numbers_are_the_c_headers() {
    let c = c_numbers();
    let mut rust = rust_constants();
    rust.extend(rust_layout());
    let mut names: Vec<&String> = rust.keys().collect();
    names.sort();
    for name in names {
        assert_eq!(c.get(name), Some(&rust[name]), "{}: C says {:?}, Rust {}", name, c.get(name), rust[name]);
    }
    assert_eq!(c.len(), rust.len());
}

#[test]
fn layouts_are_the_documented_ones() {
    let layout = rust_layout();
    let expect = [
        ("sizeof_header", 56), ("header.magic", 0), ("header.schema_version", 4),
        ("header.length", 8), ("header.reserved", 12), ("header.ts_ns", 16), ("header.seq", 24),
        ("header.uid", 32), ("header.pid", 36), ("header.session_id", 40),
        ("sizeof_stats", 48), ("stats.total_writes", 0), ("stats.total_evictions", 8),
        ("stats.records_in_ring", 16), ("stats.ring_bytes", 24), ("stats.ring_capacity", 28),
        ("stats.oldest_ts_ns", 32), ("stats.newest_ts_ns", 40),
        ("sizeof_session", 16), ("session.id", 0),
    ];
    for (name, value) in expect {
        assert_eq!(layout[name], value, "{}", name);
    }
    assert_eq!(layout.len(), expect.len());
    assert_eq!(HEADER_LEN, 56);
    assert_eq!(READ_BUFFER_LEN, 56 + 65536);
}

#[test]
fn request_numbers_are_the_ioc_encoding() {
    // dir << 30 | size << 16 | type << 8 | nr, worked out by hand
    assert_eq!(ioctl::STATS, 0x8030_C101);
    assert_eq!(ioctl::CLEAR, 0x0000_C102);
    assert_eq!(ioctl::SET_RING_SIZE, 0x4004_C103);
    assert_eq!(ioctl::FILTER_UID, 0x4004_C104);
    assert_eq!(ioctl::GET_VERSION, 0x8004_C105);
    assert_eq!(ioctl::SET_SESSION, 0x4010_C106);
    assert_eq!(ioctl::GET_LOST, 0x8008_C107);
    assert_eq!(ioctl::ioc_size(ioctl::STATS), 48);
    assert_eq!(ioctl::ioc_dir(ioctl::SET_SESSION), ioctl::IOC_WRITE);
}

fn header(length: u32) -> RecordHeader {
    RecordHeader {
        magic: MAGIC,
        schema_version: SCHEMA_VERSION,
        length,
        reserved: 0,
        ts_ns: 1_765_000_000_123_456_789,
        seq: 0x0102_0304_0506_0708,
        uid: 1000,
        pid: 4242,
        session_id: *b"0123456789abcdef",
    }
}

/// The bytes the kernel would return for header(len) and `blob`, built
/// field by field in host byte order, independently of RecordHeader::to_bytes.
fn device_bytes(h: &RecordHeader, blob: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&h.magic.to_ne_bytes());
    b.extend_from_slice(&h.schema_version.to_ne_bytes());
    b.extend_from_slice(&h.length.to_ne_bytes());
    b.extend_from_slice(&h.reserved.to_ne_bytes());
    b.extend_from_slice(&h.ts_ns.to_ne_bytes());
    b.extend_from_slice(&h.seq.to_ne_bytes());
    b.extend_from_slice(&h.uid.to_ne_bytes());
    b.extend_from_slice(&h.pid.to_ne_bytes());
    b.extend_from_slice(&h.session_id);
    assert_eq!(b.len(), 56);
    b.extend_from_slice(blob);
    b
}

fn assert_invalid<T: std::fmt::Debug>(result: io::Result<T>, why: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{}: {}", why, e),
        Ok(v) => panic!("{}: parsed as {:?}", why, v),
    }
}

#[test]
fn good_records_parse_and_give_back_their_bytes() {
    for blob in [&b"x"[..], &b"hello, memlog"[..], &[0xA5; RECORD_MAX][..]] {
        let h = header(blob.len() as u32);
        let bytes = device_bytes(&h, blob);
        let rec = Record::from_bytes(&bytes).unwrap();
        assert_eq!(rec.header, h);
        assert_eq!(rec.blob(), blob);
        assert_eq!(rec.to_bytes(), bytes);
        assert_eq!(h.to_bytes()[..], bytes[..56]);
        assert_eq!(RecordHeader::from_bytes(&bytes).unwrap(), h);
        assert_eq!(
            (rec.seq(), rec.ts_ns(), rec.uid(), rec.pid(), rec.session_id()),
            (h.seq, h.ts_ns, 1000, 4242, *b"0123456789abcdef")
        );
        let t = rec.time().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(t.as_nanos(), u128::from(h.ts_ns));
    }
    // Another schema version still parses (see RecordHeader::from_bytes)
    let mut h = header(0);
    h.schema_version = 2;
    assert_eq!(Record::from_bytes(&device_bytes(&h, b"")).unwrap().header, h);
}

#[test]
fn bad_records_are_invalid_data() {
    let h = header(5);
    let good = device_bytes(&h, b"12345");
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xFF;
    assert_invalid(Record::from_bytes(&bad_magic), "bad magic");
    assert_invalid(RecordHeader::from_bytes(&bad_magic), "bad magic, header");
    let mut swapped = good.clone();
    swapped[..4].copy_from_slice(&MAGIC.swap_bytes().to_ne_bytes());
    assert_invalid(Record::from_bytes(&swapped), "magic in the other byte order");
    assert_invalid(Record::from_bytes(&[]), "empty");
    assert_invalid(Record::from_bytes(&good[..55]), "short header");
    assert_invalid(RecordHeader::from_bytes(&good[..55]), "short header, header");
    assert_invalid(Record::from_bytes(&good[..56]), "header without its blob");
    assert_invalid(Record::from_bytes(&good[..60]), "blob one byte short");
    let mut long = good.clone();
    long.push(b'6');
    assert_invalid(Record::from_bytes(&long), "blob one byte long");
    let huge = device_bytes(&header(u32::MAX), b"12345");
    assert_invalid(Record::from_bytes(&huge), "length u32::MAX");
    assert!(Record::from_bytes(&good).is_ok());
}

#[test]
fn a_missing_path_is_not_found() {
    for mode in [Mode::Read, Mode::Write, Mode::ReadWrite] {
        let err = Device::open("/nonexistent/memlog", mode).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
}

#[test]
fn the_open_flags_are_the_modes() {
    let flags = |dev: &Device| {
        // SAFETY: F_GETFL on an fd the Device keeps open takes no argument.
        unsafe { libc::fcntl(dev.as_raw_fd(), libc::F_GETFL) }
    };
    let fd_flags = |dev: &Device| {
        // SAFETY: as above, F_GETFD.
        unsafe { libc::fcntl(dev.as_raw_fd(), libc::F_GETFD) }
    };
    for (mode, acc) in [(Mode::Read, libc::O_RDONLY), (Mode::Write, libc::O_WRONLY), (Mode::ReadWrite, libc::O_RDWR)] {
        for nonblocking in [false, true] {
            let dev = OpenOptions::new(mode).nonblocking(nonblocking).open("/dev/null").unwrap();
            let fl = flags(&dev);
            assert_eq!(fl & libc::O_ACCMODE, acc, "{:?}", mode);
            assert_eq!(fl & libc::O_NONBLOCK != 0, nonblocking);
            assert_eq!(fd_flags(&dev) & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
            assert_eq!(dev.as_fd().as_raw_fd(), dev.as_raw_fd());
        }
    }
}

#[test]
fn ioctls_on_dev_null_are_enotty() {
    let dev = Device::open("/dev/null", Mode::ReadWrite).unwrap();
    let check = |what: &str, err: io::Error| {
        assert_eq!(err.raw_os_error(), Some(libc::ENOTTY), "{}: {}", what, err);
    };
    check("version", dev.version().unwrap_err());
    check("stats", dev.stats().unwrap_err());
    check("lost", dev.lost().unwrap_err());
    check("clear", dev.clear().unwrap_err());
    check("set_ring_size", dev.set_ring_size(1 << 20).unwrap_err());
    check("filter_uid", dev.filter_uid(View::All).unwrap_err());
    check("filter_uid", dev.filter_uid(View::Uid(0)).unwrap_err());
    check("set_session", dev.set_session([7; 16]).unwrap_err());
    assert_eq!(View::All.raw(), UID_ALL);
    assert_eq!(View::Uid(1000).raw(), 1000);
}

#[test]
fn dev_null_reads_no_record() {
    let mut dev = Device::open("/dev/null", Mode::Read).unwrap();
    assert!(dev.read_record().unwrap().is_none());
    assert_eq!(dev.records().count(), 0);
    // /dev/null polls readable: wait says so at once
    assert!(dev.wait(Some(Duration::ZERO)).unwrap());
    assert!(dev.wait(None).unwrap());
    dev.rewind().unwrap();
    // follow finds nothing and ends after its timeout
    let start = Instant::now();
    assert_eq!(dev.follow(Some(Duration::from_millis(30))).count(), 0);
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(dev.follow(Some(Duration::ZERO)).count(), 0);
}

#[test]
fn writes_go_out_whole_and_need_write_access() {
    let dev = Device::open("/dev/null", Mode::Write).unwrap();
    assert_eq!(dev.write(b"hello").unwrap(), 5);
    assert_eq!(dev.write(b"").unwrap(), 0);
    let parts = [IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cde")];
    assert_eq!(dev.write_vectored(&parts).unwrap(), 5);
    assert_eq!(dev.write_vectored(&[]).unwrap(), 0);
    let reader = Device::open("/dev/null", Mode::Read).unwrap();
    assert_eq!(reader.write(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(reader.write_vectored(&parts).unwrap_err().raw_os_error(), Some(libc::EBADF));
    // More iovecs than UIO_MAXIOV: the kernel says EINVAL, std would split
    let many = vec![IoSlice::new(b"x"); 1025];
    assert_eq!(dev.write_vectored(&many).unwrap_err().raw_os_error(), Some(libc::EINVAL));
}

/// A Device on one end of a datagram socket pair: each datagram sent to
/// the other end is one "record" read, as from the device.
fn fake_device() -> (Device, UnixDatagram) {
    let (ours, theirs) = UnixDatagram::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    (Device::from(OwnedFd::from(ours)), theirs)
}

#[test]
fn records_come_whole_from_an_fd() {
    let (mut dev, peer) = fake_device();
    let one = device_bytes(&header(3), b"one");
    let two = device_bytes(&header(0), b"");
    peer.send(&one).unwrap();
    peer.send(&two).unwrap();
    let records: Vec<Record> = dev.records().collect::<io::Result<_>>().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].to_bytes(), one);
    assert_eq!(records[1].to_bytes(), two);
    assert!(dev.read_record().unwrap().is_none());

    let big = device_bytes(&header(RECORD_MAX as u32), &[b'z'; RECORD_MAX]);
    peer.send(&big).unwrap();
    assert_eq!(dev.read_record().unwrap().unwrap().to_bytes(), big);
}

#[test]
fn bad_bytes_from_an_fd_are_invalid_data_and_end_records() {
    let (mut dev, peer) = fake_device();
    let mut bad = device_bytes(&header(2), b"ok");
    bad[3] ^= 1;
    peer.send(&bad).unwrap();
    peer.send(&device_bytes(&header(2), b"ok")).unwrap();
    let mut it = dev.records();
    assert_eq!(it.next().unwrap().unwrap_err().kind(), io::ErrorKind::InvalidData);
    assert!(it.next().is_none(), "records() ends after an error");
    // The good one after it is still there
    assert_eq!(dev.read_record().unwrap().unwrap().blob(), b"ok");
    peer.send(&device_bytes(&header(9), b"short")).unwrap();
    peer.send(&[1, 2, 3]).unwrap();
    assert_eq!(dev.read_record().unwrap_err().kind(), io::ErrorKind::InvalidData);
    assert_eq!(dev.read_record().unwrap_err().kind(), io::ErrorKind::InvalidData);
}

#[test]
fn wait_times_out_then_sees_a_record() {
    let (dev, peer) = fake_device();
    assert!(!dev.wait(Some(Duration::ZERO)).unwrap());
    let start = Instant::now();
    assert!(!dev.wait(Some(Duration::from_millis(40))).unwrap());
    assert!(start.elapsed() >= Duration::from_millis(40));
    // A timeout too large for an Instant is no timeout
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        peer.send(&device_bytes(&header(1), b"!")).unwrap();
        peer
    });
    assert!(dev.wait(Some(Duration::MAX)).unwrap());
    let _peer = sender.join().unwrap();
    assert!(dev.wait(Some(Duration::ZERO)).unwrap());
}

#[test]
fn follow_yields_unread_then_new_records_and_ends_after_its_timeout() {
    let (mut dev, peer) = fake_device();
    peer.send(&device_bytes(&header(1), b"0")).unwrap();
    let sender = thread::spawn(move || {
        for blob in [b"1", b"2"] {
            thread::sleep(Duration::from_millis(30));
            peer.send(&device_bytes(&header(1), blob)).unwrap();
        }
        peer
    });
    let start = Instant::now();
    let blobs: Vec<Vec<u8>> = dev
        .follow(Some(Duration::from_millis(300)))
        .map(|r| r.unwrap().into_blob())
        .collect();
    let elapsed = start.elapsed();
    assert_eq!(blobs, vec![b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]);
    // About 60 ms of records, then 300 ms without one
    assert!(elapsed >= Duration::from_millis(360), "{:?}", elapsed);
    let _peer = sender.join().unwrap();
}

#[test]
fn an_fd_error_ends_follow() {
    let (mut dev, peer) = fake_device();
    let mut bad = device_bytes(&header(1), b"x");
    bad[0] = 0;
    peer.send(&bad).unwrap();
    let mut it = dev.follow(None);
    assert_eq!(it.next().unwrap().unwrap_err().kind(), io::ErrorKind::InvalidData);
    assert!(it.next().is_none());
}

#[test]
fn devices_convert_to_and_from_fds() {
    let dev = Device::open("/dev/null", Mode::Read).unwrap();
    let clone = dev.try_clone().unwrap();
    assert_ne!(clone.as_raw_fd(), dev.as_raw_fd());
    let fd = OwnedFd::from(clone);
    let mut file = std::fs::File::from(fd);
    let mut buf = [0u8; 8];
    assert_eq!(file.read(&mut buf).unwrap(), 0);
    let s = format!("{:?}", dev);
    assert!(s.starts_with("Device { fd: "), "{}", s);
}

#[test]
fn device_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Device>();
    both::<Record>();
}
