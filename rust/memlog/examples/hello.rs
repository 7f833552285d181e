// SPDX-License-Identifier: MIT OR Apache-2.0
// The README's example: write a record, read the caller's records back.
use memlog::{Device, Mode};

fn main() -> std::io::Result<()> {
    let mut dev = Device::open_default(Mode::ReadWrite)?;
    dev.set_session(*b"0123456789abcdef")?;
    dev.write(b"hello")?;
    for record in dev.records() {
        let record = record?;
        println!("seq {}: {}", record.seq(), String::from_utf8_lossy(record.blob()));
    }
    Ok(())
}
