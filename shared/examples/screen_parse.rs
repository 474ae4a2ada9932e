//! A benchmark baseline: a screen model alone, with no detection, reading stdin in 64 KiB chunks
//! (as hs-detect does). `screen_parse MODEL ROWSxCOLS < capture`, MODEL `vt100` (the `vt100` 0.15
//! crate) or `term` (`shared::term`, hs-detect's own); prints the cursor position at the end so
//! the work cannot be skipped.
use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (model, size) = match &args[1..] {
        [m, s] => (m.as_str(), s.as_str()),
        _ => panic!("usage: screen_parse vt100|term ROWSxCOLS < input"),
    };
    let (rows, cols) = size.split_once('x').expect("ROWSxCOLS");
    let (rows, cols): (u16, u16) = (rows.parse().unwrap(), cols.parse().unwrap());
    let mut vt = (model == "vt100").then(|| vt100::Parser::new(rows, cols, 0));
    let mut term = (model == "term").then(|| shared::term::Term::new(rows, cols));
    assert!(vt.is_some() || term.is_some(), "unknown model {model}: vt100 or term");
    let mut buf = vec![0u8; 64 * 1024];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if let Some(p) = vt.as_mut() {
                    p.process(&buf[..n]);
                }
                if let Some(t) = term.as_mut() {
                    t.process(&buf[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("stdin: {e}"),
        }
    }
    let pos = vt.map(|p| p.screen().cursor_position()).or(term.map(|t| t.cursor_position()));
    println!("{pos:?}");
}
