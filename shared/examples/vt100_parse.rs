//! The benchmark's baseline: the `vt100` screen model alone, with no detection, reading stdin in
//! 64 KiB chunks (as hs-detect does). `vt100_parse ROWSxCOLS < capture`; prints the cursor
//! position at the end so the work cannot be skipped.
use std::io::Read;

fn main() {
    let size = std::env::args().nth(1).unwrap_or_else(|| "24x80".into());
    let (rows, cols) = size.split_once('x').expect("ROWSxCOLS");
    let mut parser = vt100::Parser::new(rows.parse().unwrap(), cols.parse().unwrap(), 0);
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => parser.process(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("stdin: {e}"),
        }
    }
    println!("{:?}", parser.screen().cursor_position());
}
