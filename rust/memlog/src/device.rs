// SPDX-License-Identifier: MIT OR Apache-2.0
//! An open `/dev/memlog`: the system calls, checked.

use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, Read, Seek, SeekFrom};
use std::iter::FusedIterator;
use std::mem::size_of;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ioctl;
use crate::uapi::{Record, Session, Stats, DEFAULT_PATH, READ_BUFFER_LEN, SESSION_ID_LEN, UID_ALL};

/// How a [`Device`] is opened: the access mode of open(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `O_RDONLY`: read records, poll, ioctls.
    Read,
    /// `O_WRONLY`: write records, ioctls.
    Write,
    /// `O_RDWR`: both.
    ReadWrite,
}

/// Which records an fd reads (and [`Device::stats`] counts): the
/// `FILTER_UID` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// The records of one uid, in the caller's user namespace. The
    /// opener's own uid is always allowed; another needs `CAP_SYS_ADMIN`.
    Uid(u32),
    /// The records of every uid, in sequence order ([`UID_ALL`]); needs
    /// `CAP_SYS_ADMIN`.
    All,
}

impl View {
    /// The `FILTER_UID` argument: the uid, or [`UID_ALL`].
    pub fn raw(self) -> u32 {
        match self {
            View::Uid(uid) => uid,
            View::All => UID_ALL,
        }
    }
}

/// Options for opening a [`Device`], like [`std::fs::OpenOptions`].
///
/// ```no_run
/// use memlog::{Mode, OpenOptions};
/// let dev = OpenOptions::new(Mode::Write).nonblocking(true).open_default()?;
/// dev.write(b"hello")?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    mode: Mode,
    nonblocking: bool,
}

impl OpenOptions {
    /// Options for opening in `mode`, blocking.
    pub fn new(mode: Mode) -> OpenOptions {
        OpenOptions {
            mode,
            nonblocking: false,
        }
    }

    /// `O_NONBLOCK`: a write fails with `EAGAIN` ([`io::ErrorKind::WouldBlock`])
    /// instead of waiting while the ring moves to a new buffer. Reads never
    /// block either way.
    pub fn nonblocking(&mut self, nonblocking: bool) -> &mut OpenOptions {
        self.nonblocking = nonblocking;
        self
    }

    /// Opens `path` (always with `O_CLOEXEC`). A missing node is
    /// [`io::ErrorKind::NotFound`]; a caller the node's mode shuts out gets
    /// `EACCES` ([`io::ErrorKind::PermissionDenied`]).
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<Device> {
        let mut options = std::fs::OpenOptions::new();
        match self.mode {
            Mode::Read => options.read(true),
            Mode::Write => options.write(true),
            Mode::ReadWrite => options.read(true).write(true),
        };
        if self.nonblocking {
            options.custom_flags(libc::O_NONBLOCK);
        }
        // std opens with O_CLOEXEC, and never creates without .create()
        let file = options.open(path)?;
        Ok(Device::from_file(file))
    }

    /// Opens [`DEFAULT_PATH`], `/dev/memlog`.
    pub fn open_default(&self) -> io::Result<Device> {
        self.open(DEFAULT_PATH)
    }
}

/// An open `/dev/memlog`: one fd, with its view, read position and session
/// id.
///
/// # Threads
///
/// `Device` is `Send` and `Sync`. The methods taking `&self` (writing,
/// ioctls, [`wait`](Device::wait), [`rewind`](Device::rewind)) are each one
/// system call and may be called from several threads at once, for
/// instance through an `Arc<Device>`: records written concurrently never
/// mix, each write being one whole record. [`set_session`](Device::set_session)
/// and [`filter_uid`](Device::filter_uid) change state of the open file
/// description, which every thread using this `Device`, and every
/// duplicate of its fd ([`try_clone`](Device::try_clone), fork, fd
/// passing), shares.
///
/// Reading ([`read_record`](Device::read_record), [`records`](Device::records),
/// [`follow`](Device::follow)) takes `&mut self`, as it uses the device's
/// read buffer: one reader at a time. The fd has one read position, so
/// threads that each want every record open a `Device` each.
pub struct Device {
    file: File,
    /// The read buffer, [`READ_BUFFER_LEN`] bytes once something was read.
    buf: Vec<u8>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("fd", &self.file.as_raw_fd())
            .finish()
    }
}

/// The error of a system call that returned -1.
fn last_error() -> io::Error {
    io::Error::last_os_error()
}

impl Device {
    /// Opens `path` in `mode`, blocking (see [`OpenOptions`] for
    /// `O_NONBLOCK`).
    pub fn open(path: impl AsRef<Path>, mode: Mode) -> io::Result<Device> {
        OpenOptions::new(mode).open(path)
    }

    /// Opens [`DEFAULT_PATH`], `/dev/memlog`, in `mode`, blocking.
    pub fn open_default(mode: Mode) -> io::Result<Device> {
        OpenOptions::new(mode).open_default()
    }

    fn from_file(file: File) -> Device {
        Device {
            file,
            buf: Vec::new(),
        }
    }

    /// A second `Device` on a duplicate of the fd (`F_DUPFD_CLOEXEC`): the
    /// same open file description, so the same view, position and session.
    pub fn try_clone(&self) -> io::Result<Device> {
        Ok(Device::from_file(self.file.try_clone()?))
    }

    /// Writes `blob` as one record with write(2): all of it or nothing.
    /// Returns the bytes stored, `blob.len()` (0 for an empty blob, which
    /// stores nothing).
    ///
    /// Errors are the device's: `EMSGSIZE` for a blob over
    /// [`RECORD_MAX`](crate::RECORD_MAX) bytes or larger than the ring,
    /// `ENOSPC`, `ENOMEM`, `EAGAIN` when opened non-blocking, `EBADF` if
    /// not opened for writing, `EINTR` if a signal interrupted the wait
    /// (nothing stored; retrying is safe).
    #[inline]
    pub fn write(&self, blob: &[u8]) -> io::Result<usize> {
        // One write(2), as a C caller makes it (std's File::write adds a
        // layer a 64-byte record's cost notices)
        // SAFETY: `blob` is valid for `blob.len()` bytes for the whole
        // call, which only reads it; the fd is this Device's, open.
        let n = unsafe {
            libc::write(
                self.file.as_raw_fd(),
                blob.as_ptr() as *const libc::c_void,
                blob.len(),
            )
        };
        if n < 0 {
            return Err(last_error());
        }
        Ok(n as usize)
    }

    /// Writes `parts`, concatenated, as one record with writev(2): all or
    /// nothing, as [`write`](Device::write). More parts than the kernel's
    /// `UIO_MAXIOV` (1024) fail with `EINVAL`.
    pub fn write_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = libc::c_int::try_from(parts.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: IoSlice is guaranteed ABI-compatible with struct iovec on
        // Unix; `parts` is a valid array of `count` of them, each pointing
        // to memory borrowed for the whole call, which writev only reads.
        let n = unsafe {
            libc::writev(
                self.file.as_raw_fd(),
                parts.as_ptr() as *const libc::iovec,
                count,
            )
        };
        if n < 0 {
            return Err(last_error());
        }
        Ok(n as usize)
    }

    /// Reads the next record of the fd's view, or `Ok(None)` if there is
    /// none now: the device never blocks a read (an `EAGAIN` from the fd
    /// means `None` too). Use [`wait`](Device::wait) to wait for one.
    ///
    /// Bytes that are not one whole memlog record (bad magic, a length
    /// disagreeing with the bytes read) are an [`io::ErrorKind::InvalidData`]
    /// error; the record is consumed all the same.
    pub fn read_record(&mut self) -> io::Result<Option<Record>> {
        if self.buf.len() != READ_BUFFER_LEN {
            self.buf.resize(READ_BUFFER_LEN, 0);
        }
        let n = match (&self.file).read(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(None);
        }
        let bytes = self.buf.get(..n).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "read returned more than asked")
        })?;
        Record::from_bytes(bytes).map(Some)
    }

    /// An iterator over the records readable now: it ends when a read
    /// finds none, or after yielding an error.
    pub fn records(&mut self) -> Records<'_> {
        Records {
            device: self,
            done: false,
        }
    }

    /// An iterator that yields the unread records, then waits for new ones
    /// and yields them as they come. With `Some(timeout)` it ends once
    /// `timeout` passed without a record (counted from when it found none);
    /// with `None` it never ends but on an error, which it yields last.
    pub fn follow(&mut self, timeout: Option<Duration>) -> Follow<'_> {
        Follow {
            device: self,
            timeout,
            waiting_since: None,
            done: false,
        }
    }

    /// Waits with poll(2) until a record is readable: `Ok(true)`, or
    /// `Ok(false)` once `timeout` passed (`None`: no limit, `Some(ZERO)`:
    /// just look). A signal's `EINTR` is retried with the time left.
    /// `POLLNVAL` is an `EBADF` error, `POLLERR` an `EIO` one.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        // A deadline too far to represent is no deadline
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut pfd = libc::pollfd {
            fd: self.file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            let timeout_ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    // Rounded up, so as not to wake up before the deadline
                    let ms = (left.as_nanos() + 999_999) / 1_000_000;
                    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
                }
            };
            // SAFETY: pfd is one valid, writable pollfd for the call.
            let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if n < 0 {
                let err = last_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n == 0 {
                match deadline {
                    // poll's timeout was capped at c_int::MAX ms: go on
                    Some(deadline) if Instant::now() < deadline => continue,
                    _ => return Ok(false),
                }
            }
            if pfd.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            if pfd.revents & libc::POLLERR != 0 {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            return Ok(true);
        }
    }

    /// Starts reading again from the oldest record of the view
    /// (`lseek(fd, 0, SEEK_SET)`); also resets [`lost`](Device::lost).
    pub fn rewind(&self) -> io::Result<()> {
        (&self.file).seek(SeekFrom::Start(0)).map(|_| ())
    }

    /// Tags this fd's later writes with session id `id` (`SET_SESSION`).
    pub fn set_session(&self, id: [u8; SESSION_ID_LEN]) -> io::Result<()> {
        self.ioctl_write(ioctl::SET_SESSION, &Session { id })
    }

    /// Selects the fd's view and rewinds it (`FILTER_UID`). Another uid
    /// than the opener's, or [`View::All`], needs `CAP_SYS_ADMIN` (else
    /// `EPERM`); a uid the caller's user namespace does not map is
    /// `EINVAL`.
    pub fn filter_uid(&self, view: View) -> io::Result<()> {
        self.ioctl_write(ioctl::FILTER_UID, &view.raw())
    }

    /// Statistics of the fd's view (`STATS`).
    pub fn stats(&self) -> io::Result<Stats> {
        self.ioctl_read(ioctl::STATS)
    }

    /// Records of the view evicted, cleared or dropped before this fd read
    /// them, since it was opened, rewound or re-filtered (`GET_LOST`).
    pub fn lost(&self) -> io::Result<u64> {
        self.ioctl_read(ioctl::GET_LOST)
    }

    /// Drops every record of the view and frees their memory (`CLEAR`);
    /// needs `CAP_SYS_ADMIN`, else `EPERM`.
    pub fn clear(&self) -> io::Result<()> {
        self.ioctl_none(ioctl::CLEAR)
    }

    /// Resizes every ring to `bytes`, as sysctl `kernel.memlog.ring_size`
    /// (`SET_RING_SIZE`): out of [`RING_SIZE_MIN`](crate::RING_SIZE_MIN)..=
    /// [`RING_SIZE_MAX`](crate::RING_SIZE_MAX) is `EINVAL`; needs
    /// `CAP_SYS_ADMIN`, else `EPERM`.
    pub fn set_ring_size(&self, bytes: u32) -> io::Result<()> {
        self.ioctl_write(ioctl::SET_RING_SIZE, &bytes)
    }

    /// The record header's schema version (`GET_VERSION`),
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) for this crate's layout.
    pub fn version(&self) -> io::Result<u32> {
        self.ioctl_read(ioctl::GET_VERSION)
    }

    fn ioctl_none(&self, request: u32) -> io::Result<()> {
        debug_assert_eq!(ioctl::ioc_size(request), 0);
        // SAFETY: an _IO request: the kernel copies nothing through the
        // (null) argument.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                request as _,
                std::ptr::null_mut::<libc::c_void>(),
            )
        };
        if ret < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// An _IOW request whose argument is a `T` (plain integers or UAPI
    /// structs only).
    fn ioctl_write<T: Copy>(&self, request: u32, arg: &T) -> io::Result<()> {
        debug_assert_eq!(ioctl::ioc_dir(request), ioctl::IOC_WRITE);
        debug_assert_eq!(ioctl::ioc_size(request), size_of::<T>());
        // SAFETY: the request's encoded size is size_of::<T>(), so the
        // kernel reads at most that many bytes from `arg`, a valid,
        // initialised, padding-free T borrowed for the call.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, arg as *const T) };
        if ret < 0 {
            return Err(last_error());
        }
        Ok(())
    }

    /// An _IOR request whose result is a `T` (plain integers or UAPI
    /// structs only: every bit pattern is a valid value).
    fn ioctl_read<T: Copy + Default>(&self, request: u32) -> io::Result<T> {
        debug_assert_eq!(ioctl::ioc_dir(request), ioctl::IOC_READ);
        debug_assert_eq!(ioctl::ioc_size(request), size_of::<T>());
        let mut out = T::default();
        // SAFETY: the request's encoded size is size_of::<T>(), so the
        // kernel writes at most that many bytes to `out`, a T we own, for
        // which any bytes are a valid value (integers, byte arrays).
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), request as _, &mut out as *mut T) };
        if ret < 0 {
            return Err(last_error());
        }
        Ok(out)
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl From<OwnedFd> for Device {
    /// Wraps an fd of `/dev/memlog` (received over a socket, inherited):
    /// it keeps its opener's identity, view and position.
    fn from(fd: OwnedFd) -> Device {
        Device::from_file(File::from(fd))
    }
}

impl From<Device> for OwnedFd {
    fn from(device: Device) -> OwnedFd {
        OwnedFd::from(device.file)
    }
}

/// The records readable now: see [`Device::records`].
#[derive(Debug)]
pub struct Records<'a> {
    device: &'a mut Device,
    done: bool,
}

impl Iterator for Records<'_> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        if self.done {
            return None;
        }
        match self.device.read_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

impl FusedIterator for Records<'_> {}

/// The records as they come: see [`Device::follow`].
#[derive(Debug)]
pub struct Follow<'a> {
    device: &'a mut Device,
    timeout: Option<Duration>,
    /// Since when no record was found (None right after one was yielded)
    waiting_since: Option<Instant>,
    done: bool,
}

impl Follow<'_> {
    fn fail(&mut self, err: io::Error) -> Option<io::Result<Record>> {
        self.done = true;
        Some(Err(err))
    }
}

impl Iterator for Follow<'_> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        while !self.done {
            match self.device.read_record() {
                Ok(Some(record)) => {
                    self.waiting_since = None;
                    return Some(Ok(record));
                }
                Ok(None) => {}
                Err(err) => return self.fail(err),
            }
            let left = match self.timeout {
                None => None,
                Some(timeout) => {
                    let now = Instant::now();
                    let since = *self.waiting_since.get_or_insert(now);
                    match timeout.checked_sub(now.saturating_duration_since(since)) {
                        Some(left) if left > Duration::ZERO => Some(left),
                        _ => {
                            self.done = true;
                            break;
                        }
                    }
                }
            };
            match self.device.wait(left) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(err) => return self.fail(err),
            }
        }
        None
    }
}

impl FusedIterator for Follow<'_> {}
