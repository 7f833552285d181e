// SPDX-License-Identifier: MIT OR Apache-2.0
//! memlog-rs-scenario: what the VM tests ask of the memlog crate, one
//! command per run. It speaks the protocol of libmemlog's
//! tests/scenario.c (memlog-c-scenario):
//!
//! ```text
//! memlog-rs-scenario [--device PATH] COMMAND [--uid N | --all] [ARGS]
//!
//!   write [--session HEX32] [--nonblock] PART_HEX...
//!         one record of the parts: write(2) for one part, writev(2) for more
//!   dump [--wait-for PATH]     every record readable now, raw, on stdout;
//!                              then "lost N" on stderr
//!   follow --count N [--timeout-ms T]   N records raw as they come (exit 3
//!                              after T ms, default 10000, without one)
//!   stats | lost | clear | version | set-ring-size BYTES
//!   bench-write --size N --seconds S   "raw W T library W T ratio R":
//!                              batches of 256 writes by write(2) on the fd
//!                              and by Device::write in turn, each timed; R
//!                              is the median over pairs of batches of the
//!                              crate's rate over write(2)'s
//! ```
//!
//! An error: one line `memlog-rs-scenario: COMMAND: TEXT (ENAME)`, exit 1;
//! a usage error: the reason and a usage line, exit 2.

use std::ffi::{OsStr, OsString};
use std::io::{self, IoSlice, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use memlog::{Device, Mode, OpenOptions, View, SESSION_ID_LEN, UID_ALL};

const PROG: &str = "memlog-rs-scenario";
const USAGE: &str =
    "usage: memlog-rs-scenario [--device PATH] COMMAND [--uid N | --all] [ARGS]";
/// As scenario.c: at most this many parts to one write
const MAX_PARTS: usize = 64;
const COMMANDS: &[&str] = &[
    "write",
    "dump",
    "follow",
    "stats",
    "lost",
    "clear",
    "version",
    "set-ring-size",
    "bench-write",
];

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let code = run(&args, &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}

/// How a run ends early: an error (exit 1), a usage error (exit 2), or a
/// `follow` timeout (exit 3).
#[derive(Debug)]
enum Exit {
    Fail(io::Error),
    Usage(String),
    TimedOut { got: u64, count: u64 },
}

impl From<io::Error> for Exit {
    fn from(err: io::Error) -> Exit {
        Exit::Fail(err)
    }
}

fn usage<T>(why: &str) -> Result<T, Exit> {
    Err(Exit::Usage(why.to_string()))
}

/// The symbolic name scenario.c prints for an errno value.
fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOSPC => "ENOSPC",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EAGAIN => "EAGAIN",
        libc::EINVAL => "EINVAL",
        libc::ENOENT => "ENOENT",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::ENOTTY => "ENOTTY",
        libc::ENODEV => "ENODEV",
        libc::ENXIO => "ENXIO",
        libc::EBADMSG => "EBADMSG",
        other => return format!("E{}", other.unsigned_abs()),
    };
    name.to_string()
}

/// An error's errno value: the system's, or for the crate's own errors
/// `EBADMSG` (bytes that are not a memlog record) or `EIO`.
fn errno_of(err: &io::Error) -> i32 {
    match err.raw_os_error() {
        Some(errno) => errno,
        None if err.kind() == io::ErrorKind::InvalidData => libc::EBADMSG,
        None => libc::EIO,
    }
}

/// The error's text without std's " (os error N)" suffix.
fn error_text(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(errno) => {
            let suffix = format!(" (os error {})", errno);
            text.strip_suffix(&suffix).unwrap_or(&text).to_string()
        }
        None => text,
    }
}

/// `strtoull(s, &end, 0)` as scenario.c accepts it: decimal, `0x` hex or
/// `0` octal, nothing else around it, no sign, no overflow.
fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Hex digits (either case, an even number of them) to bytes.
fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi << 4 | lo) as u8)
        })
        .collect()
}

fn text(arg: &OsStr) -> Result<&str, Exit> {
    match arg.to_str() {
        Some(text) => Ok(text),
        None => usage("arguments are UTF-8"),
    }
}

/// The command line, parsed as scenario.c parses it.
#[derive(Debug, Default)]
struct Args {
    device: Option<OsString>,
    command: String,
    /// The FILTER_UID argument, if `--uid` or `--all` was given
    view: Option<u32>,
    nonblock: bool,
    wait_for: Option<OsString>,
    count: u64,
    timeout_ms: u64,
    size: u64,
    seconds: f64,
    /// `--session HEX` pairs and parts, in order (write), or the size
    /// (set-ring-size)
    rest: Vec<String>,
}

fn parse_args(argv: &[OsString]) -> Result<Args, Exit> {
    let mut args = Args {
        timeout_ms: 10_000,
        size: 64,
        seconds: 1.0,
        ..Args::default()
    };
    let mut i = 0;
    while i < argv.len() && argv[i].to_str().map_or(false, |a| a.starts_with('-')) {
        if argv[i] == "--device" && i + 1 < argv.len() {
            args.device = Some(argv[i + 1].clone());
            i += 2;
        } else {
            return usage("unknown option before the command");
        }
    }
    if i == argv.len() {
        return usage("no command");
    }
    args.command = argv[i].to_string_lossy().into_owned();
    i += 1;
    while i < argv.len() {
        let has_value = i + 1 < argv.len();
        let arg = &argv[i];
        if arg == "--all" {
            args.view = Some(UID_ALL);
        } else if arg == "--uid" && has_value {
            i += 1;
            match parse_u64(text(&argv[i])?) {
                Some(uid) if uid < u64::from(UID_ALL) => args.view = Some(uid as u32),
                _ => return usage("--uid takes a uid"),
            }
        } else if arg == "--nonblock" {
            args.nonblock = true;
        } else if arg == "--wait-for" && has_value {
            i += 1;
            args.wait_for = Some(argv[i].clone());
        } else if arg == "--seconds" && has_value {
            i += 1;
            match text(&argv[i])?.parse::<f64>() {
                Ok(seconds) if seconds > 0.0 => args.seconds = seconds,
                _ => return usage("--seconds takes a positive number"),
            }
        } else if (arg == "--count" || arg == "--timeout-ms" || arg == "--size") && has_value {
            let value = match parse_u64(text(&argv[i + 1])?) {
                Some(value) => value,
                None => return usage("a number was expected"),
            };
            if arg == "--count" {
                args.count = value;
            } else if arg == "--timeout-ms" {
                args.timeout_ms = value;
            } else {
                args.size = value;
            }
            i += 1;
        } else {
            // --session and parts
            args.rest.push(text(arg)?.to_string());
            if arg == "--session" && has_value {
                i += 1;
                args.rest.push(text(&argv[i])?.to_string());
            }
        }
        i += 1;
    }
    Ok(args)
}

/// What `write` stores: the session to set first, and the parts.
#[derive(Debug, PartialEq, Eq)]
struct WritePlan {
    session: Option<[u8; SESSION_ID_LEN]>,
    parts: Vec<Vec<u8>>,
}

fn plan_write(rest: &[String]) -> Result<WritePlan, Exit> {
    let mut plan = WritePlan {
        session: None,
        parts: Vec::new(),
    };
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == "--session" && i + 1 < rest.len() {
            i += 1;
            let id = unhex(&rest[i])
                .and_then(|id| <[u8; SESSION_ID_LEN]>::try_from(id.as_slice()).ok());
            match id {
                Some(id) => plan.session = Some(id),
                None => return usage("--session takes 32 hex digits"),
            }
        } else if plan.parts.len() < MAX_PARTS {
            match unhex(&rest[i]) {
                Some(part) => plan.parts.push(part),
                None => return usage("a part is hex digits"),
            }
        } else {
            return usage("at most 64 parts");
        }
        i += 1;
    }
    if plan.parts.is_empty() {
        return usage("write: no part given");
    }
    Ok(plan)
}

fn run(argv: &[OsString], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut command = String::new();
    let result = parse_args(argv).and_then(|args| {
        command = args.command.clone();
        execute(&args, out, err)
    });
    // What was printed goes out before the error; nothing more to do if
    // stdout or stderr itself fails
    let _ = out.flush();
    let _ = match &result {
        Ok(()) => return 0,
        Err(Exit::Fail(e)) => writeln!(
            err,
            "{}: {}: {} ({})",
            PROG,
            command,
            error_text(e),
            errno_name(errno_of(e))
        ),
        Err(Exit::Usage(why)) => writeln!(err, "{}: {}\n{}", PROG, why, USAGE),
        Err(Exit::TimedOut { got, count }) => writeln!(
            err,
            "{}: follow: timed out with {} of {} records",
            PROG, got, count
        ),
    };
    match result {
        Err(Exit::Usage(_)) => 2,
        Err(Exit::TimedOut { .. }) => 3,
        _ => 1,
    }
}

/// An error writing our own output, as scenario.c reports it: EIO.
fn output_error(_: io::Error) -> Exit {
    Exit::Fail(io::Error::from_raw_os_error(libc::EIO))
}

fn emit(out: &mut dyn Write, bytes: &[u8]) -> Result<(), Exit> {
    out.write_all(bytes).map_err(output_error)?;
    out.flush().map_err(output_error)
}

fn execute(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Exit> {
    let command = args.command.as_str();
    if !COMMANDS.contains(&command) {
        return usage("unknown command");
    }
    // Usage errors come before the device is touched
    let plan = if command == "write" {
        Some(plan_write(&args.rest)?)
    } else {
        None
    };
    let ring_size = if command == "set-ring-size" {
        match args.rest.as_slice() {
            [size] => match parse_u64(size).and_then(|size| u32::try_from(size).ok()) {
                Some(size) => Some(size),
                None => return usage("set-ring-size takes a size in bytes"),
            },
            _ => return usage("set-ring-size takes a size in bytes"),
        }
    } else {
        None
    };
    if command == "follow" && args.count == 0 {
        return usage("follow needs --count N");
    }

    let mode = match command {
        "write" | "set-ring-size" | "bench-write" => Mode::Write,
        _ => Mode::Read,
    };
    let mut options = OpenOptions::new(mode);
    options.nonblocking(args.nonblock);
    let mut dev = match &args.device {
        Some(path) => options.open(path)?,
        None => options.open_default()?,
    };
    if let Some(uid) = args.view {
        let view = if uid == UID_ALL { View::All } else { View::Uid(uid) };
        dev.filter_uid(view)?;
    }

    match command {
        "write" => {
            if let Some(plan) = plan {
                write_record(&dev, &plan)?;
            }
        }
        "dump" => dump(&mut dev, args.wait_for.as_deref().map(Path::new), out, err)?,
        "follow" => follow(&mut dev, args.count, args.timeout_ms, out)?,
        "stats" => {
            let st = dev.stats()?;
            writeln!(
                out,
                "total_writes {}\ntotal_evictions {}\nrecords_in_ring {}\nring_bytes {}\n\
                 ring_capacity {}\noldest_ts_ns {}\nnewest_ts_ns {}",
                st.total_writes,
                st.total_evictions,
                st.records_in_ring,
                st.ring_bytes,
                st.ring_capacity,
                st.oldest_ts_ns,
                st.newest_ts_ns
            )
            .map_err(output_error)?;
        }
        "lost" => writeln!(out, "{}", dev.lost()?).map_err(output_error)?,
        "clear" => dev.clear()?,
        "version" => writeln!(out, "{}", dev.version()?).map_err(output_error)?,
        "set-ring-size" => {
            if let Some(size) = ring_size {
                dev.set_ring_size(size)?;
            }
        }
        "bench-write" => bench_write(&dev, args.size, args.seconds, out)?,
        _ => return usage("unknown command"),
    }
    out.flush().map_err(output_error)
}

fn write_record(dev: &Device, plan: &WritePlan) -> Result<(), Exit> {
    if let Some(id) = plan.session {
        dev.set_session(id)?;
    }
    match plan.parts.as_slice() {
        [one] => dev.write(one)?,
        parts => {
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            dev.write_vectored(&slices)?
        }
    };
    Ok(())
}

fn dump(
    dev: &mut Device,
    wait_for: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Exit> {
    if let Some(path) = wait_for {
        // Every 10 ms, at most 60 s
        let mut tries = 0;
        while !path.exists() {
            if tries == 6000 {
                return Err(Exit::Fail(io::Error::from_raw_os_error(libc::ETIMEDOUT)));
            }
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
    }
    for record in dev.records() {
        emit(out, &record?.to_bytes())?;
    }
    let lost = dev.lost()?;
    writeln!(err, "lost {}", lost).map_err(output_error)
}

fn follow(dev: &mut Device, count: u64, timeout_ms: u64, out: &mut dyn Write) -> Result<(), Exit> {
    let mut got = 0;
    for record in dev.follow(Some(Duration::from_millis(timeout_ms))) {
        emit(out, &record?.to_bytes())?;
        got += 1;
        if got == count {
            return Ok(());
        }
    }
    Err(Exit::TimedOut { got, count })
}

/// Batches of 256 writes in turn by write(2) on the fd and by
/// `Device::write`, each batch timed: "raw W T library W T ratio R", R the
/// median over pairs of batches of the crate's rate over write(2)'s.
fn bench_write(dev: &Device, size: u64, seconds: f64, out: &mut dyn Write) -> Result<(), Exit> {
    let enomem = || Exit::Fail(io::Error::from_raw_os_error(libc::ENOMEM));
    let size = usize::try_from(size).map_err(|_| enomem())?;
    let mut blob = Vec::new();
    blob.try_reserve_exact(size).map_err(|_| enomem())?;
    blob.resize(size, 0x61u8);

    let fd = dev.as_raw_fd();
    let mut writes = [0u64; 2];
    let mut spent = [0f64; 2];
    let mut first = 0;
    let mut ratios = Vec::new();
    let start = Instant::now();
    loop {
        let mut took = [0f64; 2];
        for pass in 0..2 {
            let lib = first ^ pass;
            let t0 = Instant::now();
            for _ in 0..256 {
                if lib == 1 {
                    dev.write(&blob)?;
                } else {
                    // SAFETY: `blob` is valid for `blob.len()` bytes for the
                    // whole call, which only reads it; `fd` is `dev`'s, open.
                    let n = unsafe { libc::write(fd, blob.as_ptr().cast(), blob.len()) };
                    if n < 0 {
                        return Err(Exit::Fail(io::Error::last_os_error()));
                    }
                }
            }
            took[lib] = t0.elapsed().as_secs_f64();
            spent[lib] += took[lib];
            writes[lib] += 256;
        }
        ratios.push(took[0] / took[1]);
        first ^= 1;
        if start.elapsed().as_secs_f64() >= seconds {
            break;
        }
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    writeln!(
        out,
        "raw {} {:.6} library {} {:.6} ratio {:.4}",
        writes[0],
        spent[0],
        writes[1],
        spent[1],
        ratios[ratios.len() / 2]
    )
    .map_err(output_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    /// Runs the program: (exit code, stdout, stderr).
    fn scenario(args: &[&str]) -> (i32, Vec<u8>, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(&os(args), &mut out, &mut err);
        (code, out, String::from_utf8(err).unwrap())
    }

    #[test]
    fn unhex_takes_pairs_of_either_case() {
        assert_eq!(unhex("").unwrap(), Vec::<u8>::new());
        assert_eq!(unhex("00ff7Fa0").unwrap(), vec![0x00, 0xff, 0x7f, 0xa0]);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("+1"), None);
        assert_eq!(unhex("é1"), None);
    }

    #[test]
    fn parse_u64_is_strtoull_base_0() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("1000"), Some(1000));
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("0X1f"), Some(31));
        assert_eq!(parse_u64("010"), Some(8));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "-1", "+1", "1x", "0x", "08", " 1", "18446744073709551616"] {
            assert_eq!(parse_u64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn errno_names_are_symbolic_or_numbered() {
        assert_eq!(errno_name(libc::EACCES), "EACCES");
        assert_eq!(errno_name(libc::EMSGSIZE), "EMSGSIZE");
        assert_eq!(errno_name(libc::ENOTTY), "ENOTTY");
        assert_eq!(errno_name(libc::ENXIO), "ENXIO");
        assert_eq!(errno_name(libc::ETIMEDOUT), "E110");
        let bad = io::Error::new(io::ErrorKind::InvalidData, "x");
        assert_eq!(errno_name(errno_of(&bad)), "EBADMSG");
    }

    #[test]
    fn write_plan_keeps_parts_in_order_and_checks_them() {
        let rest = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let plan = plan_write(&rest(&["--session", &"ab".repeat(16), "6869", "", "21"])).unwrap();
        assert_eq!(plan.session, Some([0xab; 16]));
        assert_eq!(plan.parts, vec![b"hi".to_vec(), vec![], b"!".to_vec()]);
        assert!(matches!(plan_write(&rest(&[])), Err(Exit::Usage(_))));
        assert!(matches!(plan_write(&rest(&["--session", "abcd", "00"])), Err(Exit::Usage(_))));
        assert!(matches!(plan_write(&rest(&["0"])), Err(Exit::Usage(_))));
        let many = vec!["00".to_string(); MAX_PARTS + 1];
        assert!(matches!(plan_write(&many), Err(Exit::Usage(_))));
        assert_eq!(plan_write(&many[1..]).unwrap().parts.len(), MAX_PARTS);
    }

    #[test]
    fn options_are_parsed_as_scenario_c_does() {
        let args = parse_args(&os(&[
            "--device", "/x", "follow", "--all", "--count", "3", "--timeout-ms", "0x10",
        ]))
        .unwrap();
        assert_eq!(args.device.as_deref(), Some(OsStr::new("/x")));
        assert_eq!((args.command.as_str(), args.view, args.count, args.timeout_ms), ("follow", Some(UID_ALL), 3, 16));
        let args = parse_args(&os(&["bench-write", "--uid", "1000", "--size", "8", "--seconds", "0.5"])).unwrap();
        assert_eq!((args.view, args.size, args.seconds), (Some(1000), 8, 0.5));
        let args = parse_args(&os(&["write", "--nonblock", "--session", "00", "61"])).unwrap();
        assert!(args.nonblock);
        assert_eq!(args.rest, vec!["--session", "00", "61"]);
        let defaults = parse_args(&os(&["follow"])).unwrap();
        assert_eq!((defaults.timeout_ms, defaults.size, defaults.seconds, defaults.view), (10_000, 64, 1.0, None));
    }

    #[test]
    fn usage_errors_exit_2_with_a_usage_line() {
        for args in [
            &[][..],
            &["--bogus", "stats"][..],
            &["--device"][..],
            &["frobnicate"][..],
            &["stats", "--uid", "4294967295"][..],
            &["stats", "--uid", "-1"][..],
            &["follow"][..],
            &["follow", "--count", "x"][..],
            &["bench-write", "--seconds", "0"][..],
            &["set-ring-size"][..],
            &["set-ring-size", "4294967296"][..],
            &["write"][..],
            &["write", "xyz1"][..],
        ] {
            let mut argv = vec!["--device", "/nonexistent/memlog"];
            argv.extend_from_slice(args);
            if args.first().map_or(false, |a| a.starts_with("--")) {
                argv = args.to_vec();
            }
            let (code, out, err) = scenario(&argv);
            assert_eq!(code, 2, "{:?}: {}", argv, err);
            assert!(out.is_empty());
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 2, "{:?}", err);
            assert!(lines[0].starts_with("memlog-rs-scenario: "), "{:?}", err);
            assert_eq!(lines[1], USAGE);
        }
    }

    #[test]
    fn a_missing_device_is_enoent() {
        let (code, out, err) = scenario(&["--device", "/nonexistent/memlog", "stats"]);
        assert_eq!((code, out.len()), (1, 0));
        assert_eq!(err, "memlog-rs-scenario: stats: No such file or directory (ENOENT)\n");
    }

    #[test]
    fn ioctls_on_dev_null_are_enotty() {
        for command in ["stats", "lost", "clear", "version"] {
            let (code, out, err) = scenario(&["--device", "/dev/null", command]);
            assert_eq!((code, out.len()), (1, 0), "{}", command);
            assert_eq!(
                err,
                format!("memlog-rs-scenario: {}: Inappropriate ioctl for device (ENOTTY)\n", command)
            );
        }
        let (code, _, err) = scenario(&["--device", "/dev/null", "write", "--session", &"00".repeat(16), "61"]);
        assert_eq!(code, 1);
        assert!(err.ends_with("(ENOTTY)\n"), "{}", err);
        let (code, _, err) = scenario(&["--device", "/dev/null", "dump", "--all"]);
        assert_eq!(code, 1);
        assert!(err.starts_with("memlog-rs-scenario: dump: "), "{}", err);
    }

    #[test]
    fn writes_to_dev_null_print_nothing() {
        for parts in [&["6869"][..], &["68", "69", ""][..]] {
            let mut argv = vec!["--device", "/dev/null", "write", "--nonblock"];
            argv.extend_from_slice(parts);
            assert_eq!(scenario(&argv), (0, vec![], String::new()));
        }
    }

    #[test]
    fn dump_of_dev_null_reads_nothing_then_fails_on_get_lost() {
        let (code, out, err) = scenario(&["--device", "/dev/null", "dump", "--wait-for", "/dev/null"]);
        assert_eq!((code, out.len()), (1, 0));
        assert_eq!(err, "memlog-rs-scenario: dump: Inappropriate ioctl for device (ENOTTY)\n");
    }

    #[test]
    fn follow_times_out_with_exit_3() {
        let start = Instant::now();
        let (code, out, err) = scenario(&["--device", "/dev/null", "follow", "--count", "2", "--timeout-ms", "50"]);
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!((code, out.len()), (3, 0));
        assert_eq!(err, "memlog-rs-scenario: follow: timed out with 0 of 2 records\n");
    }

    #[test]
    fn bench_write_reports_writes_and_seconds() {
        let (code, out, err) = scenario(&["--device", "/dev/null", "bench-write", "--size", "16", "--seconds", "0.02"]);
        assert_eq!((code, err.as_str()), (0, ""));
        let out = String::from_utf8(out).unwrap();
        let words: Vec<&str> = out.trim_end().split(' ').collect();
        assert_eq!((words.len(), words[0], words[3], words[6]), (8, "raw", "library", "ratio"), "{}", out);
        let ratio: f64 = words[7].parse().unwrap();
        assert!(ratio > 0.0 && ratio.is_finite(), "{}", out);
        let (raw, library): (u64, u64) = (words[1].parse().unwrap(), words[4].parse().unwrap());
        // the two ways take turns, a batch of 256 each
        assert!(raw >= 256 && raw == library && raw % 256 == 0, "{}", out);
        let spent: f64 = words[2].parse::<f64>().unwrap() + words[5].parse::<f64>().unwrap();
        assert!(spent > 0.0 && spent < 10.0, "{}", out);
        assert_eq!(words[2].split('.').nth(1).map(str::len), Some(6), "{}", out);
        assert!(out.ends_with('\n'));
    }
}
