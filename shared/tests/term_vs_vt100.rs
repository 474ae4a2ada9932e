//! Differential tests: `shared::term::Term` against `vt100` 0.15.2 (with its `vte` 0.11.1 parser),
//! the screen model hs-detect was built on. The same bytes go to both in the same chunks and,
//! after every chunk, everything the detector and hs-run read must be equal: size, cursor,
//! alternate screen, each row's text and wrap flag, each cell's contents (and `is`), width flags
//! and error colour, the whole screen's text; and `take_changed` must flag every row that
//! looks different since the last chunk.
//!
//! Inputs: token streams of what terminals and codex send (text, wide and combining characters,
//! C0/C1 controls, CSI/SGR/private modes, ESC, OSC/DCS/SOS/PM/APC strings, broken UTF-8), random
//! bytes, and every TUI capture under `tests/fixtures/detect` whole, cut and mutated. A case where
//! vt100 itself panics is skipped; a panic in `Term` is a failure.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default); e.g.
//! `PROPTEST_CASES=20000 cargo test --release -p hs-shared --test term_vs_vt100` for a long run.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use shared::term::Term;
use std::cell::{Cell, RefCell};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

// ---------------------------------------------------------------------------------------------
// The comparator

/// Where a difference is.
#[derive(Clone, Copy)]
enum At {
    Screen,
    Row(u16),
    Cell(u16, u16),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Screen => write!(f, "screen"),
            At::Row(r) => write!(f, "row {r}"),
            At::Cell(r, c) => write!(f, "row {r} col {c}"),
        }
    }
}

fn differ<T: PartialEq + Debug>(at: At, what: &str, term: T, vt: T) -> Result<(), String> {
    if term == vt {
        Ok(())
    } else {
        Err(format!("{at}: {what}: Term {term:?}, vt100 {vt:?}"))
    }
}

/// Everything the detector reads, `term` against `vt`; the error names the first difference.
fn same_screen(term: &Term, vt: &vt100::Screen) -> Result<(), String> {
    differ(At::Screen, "size", term.size(), vt.size())?;
    differ(At::Screen, "cursor_position", term.cursor_position(), vt.cursor_position())?;
    differ(At::Screen, "alternate_screen", term.alternate_screen(), vt.alternate_screen())?;
    let (rows, cols) = vt.size();
    let texts: Vec<String> = vt.rows(0, cols).collect();
    differ(At::Screen, "number of rows vt100 gives", usize::from(rows), texts.len())?;
    for row in 0..rows {
        for col in 0..cols {
            let at = At::Cell(row, col);
            let (t, v) = match (term.cell(row, col), vt.cell(row, col)) {
                (Some(t), Some(v)) => (t, v),
                (t, v) => return differ(at, "cell exists", t.is_some(), v.is_some()),
            };
            differ(at, "has_contents", t.has_contents(), v.has_contents())?;
            let text = v.contents();
            differ(at, "contents", t.contents(), text.clone())?;
            for c in text.chars().take(1).chain([' ', '■']) {
                differ(at, &format!("is({c:?})"), t.is(c), text == c.to_string())?;
            }
            differ(at, "is_wide", t.is_wide(), v.is_wide())?;
            differ(at, "is_wide_continuation", t.is_wide_continuation(), v.is_wide_continuation())?;
            if v.has_contents() {
                differ(at, "is_error_colour", t.is_error_colour(), v.fgcolor() == vt100::Color::Idx(1))?;
            }
        }
        differ(At::Row(row), "row_text", term.row_text(row), texts[usize::from(row)].clone())?;
        differ(At::Row(row), "row_wrapped", term.row_wrapped(row), vt.row_wrapped(row))?;
    }
    for (row, col) in [(rows, 0), (0, cols), (rows, cols), (u16::MAX, u16::MAX)] {
        differ(At::Cell(row, col), "cell exists", term.cell(row, col).is_some(), false)?;
    }
    // Words only: hs-run reads `contents()` without its whitespace, and vt100 gives an empty row
    // below a wrapped one an extra "\n" (`Row::write_contents` with `wrapping`) that Term does not.
    differ(At::Screen, "contents", term.contents(), vt.contents())
}

/// What a row shows: its text, wrap flag and each cell's flags and colour.
type RowLook = (String, bool, Vec<u8>);

fn looks(vt: &vt100::Screen) -> Vec<RowLook> {
    let (rows, cols) = vt.size();
    vt.rows(0, cols)
        .zip(0..rows)
        .map(|(text, row)| {
            let cells = (0..cols).filter_map(|col| vt.cell(row, col));
            let flags = cells.map(|c| {
                u8::from(c.has_contents()) | u8::from(c.is_wide()) << 1 | u8::from(c.is_wide_continuation()) << 2 | u8::from(c.fgcolor() == vt100::Color::Idx(1)) << 3
            });
            (text, vt.row_wrapped(row), flags.collect())
        })
        .collect()
}

/// `Term::take_changed` flagged every row that looks different now (it may flag more).
fn changes_flagged(before: &[RowLook], now: &[RowLook], changed: &[bool]) -> Result<(), String> {
    differ(At::Screen, "take_changed rows", changed.len(), now.len())?;
    for (row, (b, n)) in before.iter().zip(now).enumerate() {
        if b != n && !changed[row] {
            return Err(format!("row {row}: take_changed: not flagged, but vt100 shows {:?} where it showed {:?}", n.0, b.0));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Feeding both

thread_local! {
    /// Set while vt100 runs: its panics are expected (the case is skipped), so not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// Where vt100 last panicked.
    static VT100_PANIC: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Panic messages from vt100 are kept for the outcome, not printed; every other panic prints as
/// usual.
fn quiet_vt100_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info.location().map(|l| format!("{}:{}", l.file().rsplit('/').next().unwrap_or(""), l.line()));
                VT100_PANIC.with(|p| *p.borrow_mut() = at.unwrap_or_default());
            } else {
                default(info)
            }
        }));
    });
}

#[derive(Debug, PartialEq)]
enum Outcome {
    /// Equal after every chunk.
    Same,
    /// vt100 panicked (at this place in its source) in a chunk: nothing to compare from there on.
    Vt100Panicked(String),
}

/// The last bytes fed, escaped, for an error message.
fn tail(bytes: &[u8], end: usize) -> String {
    let start = end.saturating_sub(200);
    format!("bytes {start}..{end} of {}: \"{}\"", bytes.len(), bytes[start..end].escape_ascii())
}

/// Chunk boundaries: `cuts` taken modulo the length, plus both ends.
fn bounds(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    at.extend([0, len]);
    at.sort_unstable();
    at.dedup();
    at
}

/// Feeds `term_bytes` to a `Term` and `vt_bytes` to vt100, both cut at the same `cuts`, and
/// compares after every chunk. (The tests pass the same bytes twice; the harness's own tests
/// pass different ones to prove it sees a difference.)
fn feed_pair(rows: u16, cols: u16, term_bytes: &[u8], vt_bytes: &[u8], cuts: &[usize]) -> Result<Outcome, String> {
    let term = catch_unwind(|| Term::new(rows, cols)).map_err(|_| format!("{rows}x{cols}: Term::new panicked"))?;
    feed_into(term, vt100::Parser::new(rows, cols, 0), term_bytes, vt_bytes, cuts)
}

fn feed_into(mut term: Term, mut vt: vt100::Parser, term_bytes: &[u8], vt_bytes: &[u8], cuts: &[usize]) -> Result<Outcome, String> {
    quiet_vt100_panics();
    let (rows, cols) = vt.screen().size();
    let case = format!("{rows}x{cols}");
    let len = term_bytes.len().max(vt_bytes.len());
    let at = bounds(len, cuts);
    let mut before = looks(vt.screen());
    let mut changed = Vec::new();
    term.take_changed(&mut changed);
    for (i, w) in at.windows(2).enumerate() {
        let (from, to) = (w[0], w[1]);
        let vt_chunk = &vt_bytes[from.min(vt_bytes.len())..to.min(vt_bytes.len())];
        QUIET.with(|q| q.set(true));
        let vt_ok = catch_unwind(AssertUnwindSafe(|| vt.process(vt_chunk))).is_ok();
        QUIET.with(|q| q.set(false));
        if !vt_ok {
            return Ok(Outcome::Vt100Panicked(VT100_PANIC.with(|p| p.take())));
        }
        let term_chunk = &term_bytes[from.min(term_bytes.len())..to.min(term_bytes.len())];
        let compared = catch_unwind(AssertUnwindSafe(|| {
            term.process(term_chunk);
            same_screen(&term, vt.screen())?;
            let now = looks(vt.screen());
            term.take_changed(&mut changed);
            changes_flagged(&before, &now, &changed)?;
            before = now;
            Ok::<(), String>(())
        }));
        let fed = to.min(term_bytes.len());
        match compared {
            Ok(Ok(())) => {}
            Ok(Err(diff)) => {
                return Err(format!("{case}, after chunk {i} ({from}..{to}): {diff}\n  input {}", tail(term_bytes, fed)))
            }
            Err(_) => return Err(format!("{case}: Term panicked in chunk {i} ({from}..{to})\n  input {}", tail(term_bytes, fed))),
        }
    }
    Ok(Outcome::Same)
}

fn feed_both(rows: u16, cols: u16, bytes: &[u8], cuts: &[usize]) -> Result<Outcome, String> {
    feed_pair(rows, cols, bytes, bytes, cuts)
}

// ---------------------------------------------------------------------------------------------
// The captures

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/detect")
}

/// `RxC` in a file name (`tui-plus-24x80.bin`, `tui-team-30x40-softwrap.bin`).
fn size_in_name(name: &str) -> Option<(u16, u16)> {
    name.split(['-', '.']).find_map(|part| {
        let (r, c) = part.split_once('x')?;
        Some((r.parse().ok()?, c.parse().ok()?))
    })
}

struct Capture {
    name: String,
    rows: u16,
    cols: u16,
    bytes: Vec<u8>,
}

/// Every TUI capture (`*.bin`) in `tests/fixtures/detect` and its `real/`, at the size its name
/// gives (24x80 without one), in name order.
fn captures() -> Vec<Capture> {
    let mut out = Vec::new();
    for dir in [fixtures(), fixtures().join("real")] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "bin") {
                let name = path.strip_prefix(fixtures()).unwrap().display().to_string();
                let (rows, cols) = size_in_name(&name).unwrap_or((24, 80));
                let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push(Capture { name, rows, cols, bytes });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 20, "only {} captures under {}", out.len(), fixtures().display());
    out
}

static CAPTURES: std::sync::LazyLock<Vec<Capture>> = std::sync::LazyLock::new(captures);

/// Bytes that a failing case prints as an escaped byte string, not a list of numbers.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// One edit of a capture (the idea of `fuzz.rs`'s edits): at `at` (modulo the length), `remove`
/// bytes are replaced by `insert`.
#[derive(Debug, Clone)]
struct Splice {
    at: usize,
    remove: usize,
    insert: Insert,
}

#[derive(Debug, Clone)]
enum Insert {
    Bytes(Bytes),
    /// A copy of the next this-many bytes: a piece repeated.
    Copy(usize),
}

fn mutate(mut b: Vec<u8>, splices: &[Splice]) -> Vec<u8> {
    for s in splices {
        let at = s.at % (b.len() + 1);
        let new = match &s.insert {
            Insert::Bytes(v) => v.0.clone(),
            Insert::Copy(n) => b[at..(at + n).min(b.len())].to_vec(),
        };
        b.splice(at..(at + s.remove).min(b.len()), new);
    }
    b
}

/// Bytes replaced, cut out, inserted (random, escape-sequence soup, a token stream), repeated.
fn splice(rows: u16, cols: u16) -> impl Strategy<Value = Splice> {
    let soup = vec(select(b"\x1b[;?0123456789mHJKhlr\r\n\x07]\\ ".to_vec()), 1..32);
    let put = |remove: usize| move |(at, insert)| Splice { at, remove, insert };
    prop_oneof![
        (any::<usize>(), any::<u8>().prop_map(|v| Insert::Bytes(Bytes(vec![v])))).prop_map(put(1)),
        (any::<usize>(), 1usize..200).prop_map(|(at, remove)| Splice { at, remove, insert: Insert::Bytes(Bytes(Vec::new())) }),
        (any::<usize>(), vec(any::<u8>(), 1..64).prop_map(|v| Insert::Bytes(Bytes(v)))).prop_map(put(0)),
        (any::<usize>(), soup.prop_map(|v| Insert::Bytes(Bytes(v)))).prop_map(put(0)),
        (any::<usize>(), stream(rows, cols, 1..6).prop_map(|v| Insert::Bytes(Bytes(v)))).prop_map(put(0)),
        (any::<usize>(), (1usize..4000).prop_map(Insert::Copy)).prop_map(put(0)),
    ]
}

// ---------------------------------------------------------------------------------------------
// Token streams: what terminals and codex send

fn bytes_of(list: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    select(list).prop_map(|s| s.as_bytes().to_vec())
}

const TEXTS: &[&str] = &[
    "’", "■", "■ ", "•", "›", "└", "─", "│", "⚠", "⚠\u{fe0f}", "你好", "😀", "👍🏽", "🇺🇸", "👨\u{200d}👩",
    "ｱ", "é", "e\u{301}", "\u{301}", "\u{301}\u{302}", "\u{200b}", "\u{200d}", "\u{feff}", "\u{ad}", "\u{85}",
    "\u{2028}", "\u{e000}", "\u{10ffff}", "\u{fffd}", "\u{1160}", "\u{3000}", "ｰ", "\u{0e33}", "ก\u{0e31}",
    "■ You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again at 8:27 PM.",
    "\u{1b}[38;5;1m■ \u{1b}[39mYou've hit your usage limit.",
];
/// Characters that take a cell, and marks that join the cell before them.
const BASES: &[&str] = &["e", "a", " ", "你", "😀", "■", "\u{200b}"];
const MARKS: &[&str] = &["\u{301}", "\u{302}", "\u{303}", "\u{308}", "\u{20d7}", "\u{fe0f}", "\u{200d}", "\u{200b}"];

fn text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(0x20u8..0x7f, 1..24),
        4 => bytes_of(TEXTS),
        2 => (bytes_of(BASES), vec(bytes_of(MARKS), 1..10)).prop_map(|(mut b, marks)| {
            marks.iter().for_each(|m| b.extend(m));
            b
        }),
    ]
}

fn c0() -> impl Strategy<Value = Vec<u8>> {
    vec(select(b"\r\n\t\x08\x0b\x0c\x07\x00\x0e\x0f\x18\x1a\x7f\x1b\x05\x1c".to_vec()), 1..4)
}

fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(String::new()),
        6 => Just("0".to_string()),
        12 => (1u32..12).prop_map(|n| n.to_string()),
        6 => (1u32..300).prop_map(|n| n.to_string()),
        // rare: a huge count costs vt100 a second in a debug build (`CSI 65535 @` inserts one cell at a time)
        1 => select(vec!["99999", "65535", "65536", "4294967297", "18446744073709551617", "00000000001", "1000", "256"]).prop_map(String::from),
    ]
}

/// `;`-separated (sometimes `:`) parameters, usually a few, sometimes more than vte keeps (32).
fn params() -> impl Strategy<Value = String> {
    let list = prop_oneof![8 => vec((param(), any::<u8>()), 0..5), 1 => vec((param(), any::<u8>()), 30..40)];
    list.prop_map(|ps| {
        let mut s = String::new();
        for (i, (p, sep)) in ps.iter().enumerate() {
            if i > 0 {
                s.push(if sep % 8 == 0 { ':' } else { ';' });
            }
            s.push_str(p);
        }
        s
    })
}

fn csi() -> impl Strategy<Value = Vec<u8>> {
    let fin = prop_oneof![
        10 => select(b"@ABCDGHJKLMPSTXdhlmr".to_vec()),
        2 => select(b"EFIZ`abcefgnqstuxz{|}~".to_vec()),
        1 => 0x40u8..0x7f,
    ];
    (select(vec!["", "", "", "", "?", ">", "=", "<"]), params(), select(vec!["", "", "", "", "", " ", "$", "!", "\""]), fin)
        .prop_map(|(private, ps, inter, f)| {
            let mut b = format!("\x1b[{private}{ps}{inter}").into_bytes();
            b.push(f);
            b
        })
}

const PRIVATE: &[&str] = &[
    "\x1b[?1049h", "\x1b[?1049l", "\x1b[?47h", "\x1b[?47l", "\x1b[?1047h", "\x1b[?1047l", "\x1b[?6h", "\x1b[?6l",
    "\x1b[?25l", "\x1b[?25h", "\x1b[?2026h", "\x1b[?2026l", "\x1b[?J", "\x1b[?K", "\x1b[?1J", "\x1b[?2K", "\x1b[?7l",
    "\x1b[?7h", "\x1b[?1h", "\x1b[?2004h", "\x1b[?1000h", "\x1b[?1006h", "\x1b[?1049;6h", "\x1b[4h", "\x1b[4l",
    "\x1b[20h", "\x1b[?1049h\x1b[?1049h", "\x1b[?1049l\x1b[?1049l",
];
const SGR: &[&str] = &[
    "0", "1", "31", "91", "38;5;1", "38;5;9", "38;2;255;0;0", "38:5:1", "38:2::1:2:3", "38:2:255:0:0", "39", "48;5;1",
    "", "7", "27", "22", "2", "4", "30;41", "97", "1;31", "31;1", "38;5;1;1", "38;5", "38;2;1", "38;5;300", "38;5;",
    "38;6;1", "38;5;1:2", "38:5", "38::5:1", "38;5;01", "38;5;1;39", "39;38;5;1", "31;39", "31;0", "38;2;0;0;1",
];
const ESCS: &[&str] = &[
    "\x1b7", "\x1b8", "\x1bM", "\x1bc", "\x1bD", "\x1bE", "\x1b=", "\x1b>", "\x1b(B", "\x1b(0", "\x1b)0", "\x1b#8",
    "\x1bH", "\x1b\\", "\x1b", "\x1b\x1b", "\x1b[", "\x1b[1;", "\x1b7\x1b8", "\x1b%G", "\x1b Z",
];
const STRINGS: &[&str] = &["\x1b]0;", "\x1b]2;", "\x1b]8;;", "\x1b]52;c;", "\x1b]", "\x1bP", "\x1bP1$r", "\x1bX", "\x1b^", "\x1b_"];
const STRING_ENDS: &[&str] = &["\x07", "\x1b\\", "\u{9c}", "\x1b", "", "\x18"];
const BROKEN_UTF8: &[&[u8]] = &[
    b"\xe2\x96\x1b[m", b"\xe2\x96", b"\xe2\x96\xa0", b"\xf0\x9f\x98", b"\xf0\x9fa", b"\x80", b"\xbf\xbf", b"\xc0\xaf",
    b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xff", b"\xfe", b"\xe4\xb8", b"\xe4\xb8\x1b7", b"\xc2", b"\xc2\x9b",
    b"\x9b2J", b"\x9b31m", b"\x9c", b"\x90", b"\x9d0;t\x07", b"\x84", b"\x85", b"\x8d", b"\x9b?1049h",
];

fn escapes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => csi(),
        3 => bytes_of(PRIVATE),
        4 => (select(SGR), any::<bool>()).prop_map(|(p, colon)| {
            let p = if colon { p.replace(';', ":") } else { p.to_string() };
            format!("\x1b[{p}m").into_bytes()
        }),
        3 => bytes_of(ESCS),
        2 => (select(STRINGS), vec(prop_oneof![4 => 0x20u8..0x7f, 1 => any::<u8>()], 0..40), select(STRING_ENDS))
            .prop_map(|(start, body, end)| [start.as_bytes(), &body, end.as_bytes()].concat()),
        2 => select(BROKEN_UTF8).prop_map(<[u8]>::to_vec),
        1 => vec(0x80u8..=0xff, 1..8),
    ]
}

/// Moves and runs of text at the edges of a `rows` x `cols` screen.
fn edges(rows: u16, cols: u16) -> impl Strategy<Value = Vec<u8>> {
    let (r, c) = (u32::from(rows), u32::from(cols));
    let near_col = prop_oneof![0..=c + 2, c.saturating_sub(3)..=c + 2];
    let wide = select(vec!["你", "😀", "ｱ"]);
    prop_oneof![
        // to a row, at or near the last column
        (0..=r + 2, near_col.clone()).prop_map(|(r, c)| format!("\x1b[{r};{c}H").into_bytes()),
        near_col.clone().prop_map(|c| format!("\x1b[{c}G").into_bytes()),
        (0..=r + 2).prop_map(|r| format!("\x1b[{r}d").into_bytes()),
        // the last column, then a character (maybe wide, maybe a mark)
        (0..=r, select(vec!["x", "你", "😀", "\u{301}", "■ ", "ab", "你好"])).prop_map(move |(r, s)| format!("\x1b[{r};{c}H{s}").into_bytes()),
        // a line longer than the screen, ASCII or wide, from an odd or even column
        (0..c * 2 + 3, select(vec!["x", "■"])).prop_map(|(n, s)| s.repeat(n as usize).into_bytes()),
        (any::<bool>(), 0..c + 3, wide).prop_map(|(odd, n, s)| format!("{}{}", if odd { "a" } else { "" }, s.repeat(n as usize)).into_bytes()),
        // scroll regions, and newlines to scroll them
        (0..=r + 1, 0..=r + 1).prop_map(|(t, b)| format!("\x1b[{t};{b}r").into_bytes()),
        (1..r * 2 + 2).prop_map(|n| "\n".repeat(n as usize).into_bytes()),
        (1..r + 2).prop_map(|n| "\x1bM".repeat(n as usize).into_bytes()),
    ]
}

fn token(rows: u16, cols: u16) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => text(),
        3 => c0(),
        8 => escapes(),
        3 => edges(rows, cols),
    ]
}

fn stream(rows: u16, cols: u16, tokens: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    vec(token(rows, cols), tokens).prop_map(|t| t.concat())
}

/// A screen size callers may use: rows 2..60, columns 10..220.
fn size() -> impl Strategy<Value = (u16, u16)> {
    (2u16..60, 10u16..220)
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    vec(any::<usize>(), 0..24)
}

/// Fails the case on a difference, skips it when vt100 panicked.
fn check(outcome: Result<Outcome, String>) -> Result<(), TestCaseError> {
    match outcome {
        Ok(Outcome::Same) => Ok(()),
        Ok(Outcome::Vt100Panicked(at)) => Err(TestCaseError::reject(format!("vt100 panicked at {at}"))),
        Err(diff) => Err(TestCaseError::fail(diff)),
    }
}

/// `default` cases, or `PROPTEST_CASES` when set; no failure files.
fn config(default: u32) -> ProptestConfig {
    let mut c = ProptestConfig { failure_persistence: None, ..ProptestConfig::default() };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    c
}

proptest! {
    #![proptest_config(config(128))]

    /// Terminal-like token streams at any size, cut anywhere.
    #[test]
    fn token_streams_match_vt100(
        (rows, cols, bytes) in size().prop_flat_map(|(r, c)| (Just(r), Just(c), stream(r, c, 0..160).prop_map(Bytes))),
        cuts in cuts(),
    ) {
        check(feed_both(rows, cols, &bytes.0, &cuts))?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// Any bytes at any size, cut anywhere.
    #[test]
    fn random_bytes_match_vt100(
        (rows, cols) in size(),
        bytes in vec(any::<u8>(), 0..4000).prop_map(Bytes),
        cuts in cuts(),
    ) {
        check(feed_both(rows, cols, &bytes.0, &cuts))?;
    }

    /// Each capture whole, cut anywhere, at its own size or another.
    #[test]
    fn captures_cut_anywhere_match_vt100(
        which in any::<prop::sample::Index>(),
        other_size in prop::option::of(size()),
        cuts in vec(any::<usize>(), 0..40),
    ) {
        let cap = which.get(&CAPTURES);
        let (rows, cols) = other_size.unwrap_or((cap.rows, cap.cols));
        check(feed_both(rows, cols, &cap.bytes, &cuts).map_err(|d| format!("{}: {d}", cap.name)))?;
    }

    /// Each capture damaged (bytes changed, cut out, inserted, repeated), at its own size or another.
    #[test]
    fn mutated_captures_match_vt100(
        which in any::<prop::sample::Index>(),
        (rows, cols, own_size, edits) in size().prop_flat_map(|(r, c)| (Just(r), Just(c), any::<bool>(), vec(splice(r, c), 1..12))),
        cuts in cuts(),
    ) {
        let cap = which.get(&CAPTURES);
        let (rows, cols) = if own_size { (cap.rows, cap.cols) } else { (rows, cols) };
        let bytes = mutate(cap.bytes.clone(), &edits);
        check(feed_both(rows, cols, &bytes, &cuts).map_err(|d| format!("{}: {d}", cap.name)))?;
    }
}

/// Every capture at its own size in 4 KiB reads, as hs-detect gets them.
#[test]
fn every_capture_in_4k_chunks_matches_vt100() {
    for cap in CAPTURES.iter() {
        let cuts: Vec<usize> = (1..=cap.bytes.len() / 4096).map(|i| i * 4096).collect();
        assert_eq!(feed_both(cap.rows, cap.cols, &cap.bytes, &cuts), Ok(Outcome::Same), "{}", cap.name);
    }
}

/// Inputs where vt100 0.15.2 does something particular (seen with it; the comments say what),
/// each fed whole and split before every byte on a 3x10 screen, and whole on a 24x80 one.
const TRICKY: &[&str] = &[
    "你",                                       // the continuation cell: has_contents, contents ""
    "123456789你",                              // wide at the last column, empty: next row, row 0 not wrapped
    "\x1b[1;10Hx\x1b[1;10H你",                  // ... with the last column full: row 0 wrapped
    "0123456789",                               // the cursor stays at column 10 (== cols)
    "0123456789\r\n",
    "e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}", // a cell keeps 6 code points
    "\x1b[5G\u{301}",                           // a mark into an empty cell: " \u{301}"
    "\u{301}x",                                 // a mark at column 0 of an unwrapped row: dropped
    "0123456789x\r\u{301}",                     // a mark at column 0 under a wrapped row: joins its last cell
    "0123456789\u{301}x",
    "a\u{85}b",                                 // C1 as UTF-8: dropped
    "ab\u{9b}2Jc",
    "a\u{200b}b",                               // zero width: joins the cell before
    "⚠\u{fe0f}x",                               // width 1, the selector joins it
    "😀👍🏽🇺🇸x",
    "\x1b[31m\x1b[38:2::1:2:3mx",              // unknown SGR shape: skipped, the rest applies
    "\x1b[38;5;300;31mx",                       // an index over 255: the rest of the SGR is dropped
    "\x1b[38:5:1m■\x1b[91m■\x1b[38;5;9m■\x1b[38;2;255;0;0m■\x1b[0;31m■\x1b[39m■\x1b[m■",
    "\x1b[99999;99999Hx\x1b[99999Ay\x1b[99999P\x1b[99999X\x1b[99999S\x1b[99999M",
    "\x1b[2;3r\x1b[65536;0H\x1b[0;0Hx\x1b[0A\x1b[0Ly\x1b[0@z",
    "\x1b[1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;1;31mx", // > 32 params
    "ab\x1bDc\x1bEd\x1bHe",                     // ESC D, E, H: ignored
    "a\x7fb\x00c\x18d\x1ae",
    "\tx\ty\tz",
    "你\x08x",                                  // a narrow character on a continuation clears the wide one
    "你好\x1b[1;2H\x1b[K",
    "你好世界\x1b[1;2H\x1b[@\x1b[1;4H\x1b[P",
    "\x1b[2;4r\x1b[?6h\x1b[1;1Hx\x1b[10;1Hy\x1b[?6l\x1b[10;1Hz",
    "\x1b[3;3H\x1b7\x1b[?1049h\x1b[1;1H\x1b8x\x1b[?1049l\x1b8y", // saved cursors per screen
    "a\x1b[?47hb\x1b[?47lc\x1b[?1047hd\x1b[?1049he\x1bcf",
    "\x1b[4;2r\x1b[5;1Hx\n\ny",                 // a region with top below bottom
    "a\r\nb\r\nc\x1b[S\x1b[2T\x1bM\x1bM\x1bM\x1b[2L\x1b[M",
    "\x1b]0;title\x07a\x1b]2;t\x1b\\b\x1bPq#0\x1b\\c\x1b_x\x1b\\d\x1b^y\x1b\\e\x1bXz\x1b\\f",
    "\x1b[?2026h\x1b[?25l\x1b[3;1H\x1b[38;5;1m■ \x1b[39mYou've hit your usage limit.\x1b[?2026l",
    "\x1b[2J\x1b[?J\x1b[?K\x1b[1J\x1b[2K\x1b[3J",
];

/// The same for bytes that are not UTF-8.
const TRICKY_BYTES: &[&[u8]] = &[
    b"\xe2\x96\x1b[31mx", // a cut-off UTF-8 sequence swallows the ESC: "\u{fffd}[31mx"
    b"\xe2\x96\xa0\xe2\x96",
    b"ab\x9b2Jc\x9c\x90d", // raw C1 bytes
    b"\xf0\x9f\x98\x1b7x\x1b8y",
    b"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xff\xfe",
];

#[test]
fn tricky_inputs_match_vt100_split_anywhere() {
    for input in TRICKY.iter().map(|s| s.as_bytes()).chain(TRICKY_BYTES.iter().copied()) {
        let bytes = input;
        let input = bytes.escape_ascii();
        let every: Vec<usize> = (1..bytes.len()).collect();
        for (rows, cols, cuts) in [(3, 10, &every[..]), (3, 10, &[]), (24, 80, &[])] {
            assert_eq!(feed_both(rows, cols, bytes, cuts), Ok(Outcome::Same), "{input:?}");
        }
    }
}

/// Counts that vt100 clamps (vte keeps at most 65535; vt100 then inserts and scrolls one at a
/// time, so these take it a while in a debug build: small screens only).
#[test]
fn huge_counts_match_vt100() {
    for input in ["ab\x1b[99999@c", "ab\x1b[1;1H\x1b[99999Lc", "ab\x1b[99999Tc", "\x1b[2;3r\x1b[2;1H\x1b[65535L\x1b[65535@x"] {
        assert_eq!(feed_both(3, 10, input.as_bytes(), &[]), Ok(Outcome::Same), "{input:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The harness can fail

/// Two inputs vt100 draws differently in one respect each: the comparator names it.
#[test]
fn the_comparator_names_each_kind_of_difference() {
    let cases: &[(&str, &str, &str)] = &[
        ("abc", "ab\x1b[C", "row 0 col 2: has_contents: Term true, vt100 false"),
        ("abc", "abC", "row 0 col 2: contents: Term \"c\", vt100 \"C\""),
        ("e\u{301}", "e", "row 0 col 0: contents"),
        ("ab\x08", "ab", "screen: cursor_position: Term (0, 1), vt100 (0, 2)"),
        ("\x1b[?1049h", "", "screen: alternate_screen: Term true, vt100 false"),
        ("你", "ab", "row 0 col 0: contents"),
        ("\x1b[31m■", "\x1b[32m■", "row 0 col 0: is_error_colour: Term true, vt100 false"),
        ("\x1b[38;5;1m■", "\x1b[91m■", "row 0 col 0: is_error_colour: Term true, vt100 false"),
        ("0123456789x", "0123456789\r\nx", "row 0: row_wrapped: Term true, vt100 false"),
        ("  \x1b[C", "  \x1b[D", "screen: cursor_position"),
    ];
    for (term_in, vt_in, want) in cases {
        let mut term = Term::new(4, 10);
        term.process(term_in.as_bytes());
        let mut vt = vt100::Parser::new(4, 10, 0);
        vt.process(vt_in.as_bytes());
        let got = same_screen(&term, vt.screen());
        assert!(got.as_ref().is_err_and(|e| e.contains(want)), "{term_in:?} against {vt_in:?}: want {want:?}, got {got:?}");
        // and the same input is the same screen
        let mut vt = vt100::Parser::new(4, 10, 0);
        vt.process(term_in.as_bytes());
        assert_eq!(same_screen(&term, vt.screen()), Ok(()), "{term_in:?}");
    }
    // the size, and a wide character against two narrow ones
    let wide = |s: &str| {
        let mut t = Term::new(4, 10);
        t.process(s.as_bytes());
        t
    };
    let mut vt = vt100::Parser::new(4, 11, 0);
    vt.process(b"ab");
    assert!(same_screen(&wide("ab"), vt.screen()).is_err_and(|e| e.contains("size: Term (4, 10), vt100 (4, 11)")));
    let mut vt = vt100::Parser::new(4, 10, 0);
    vt.process("\u{3000}".as_bytes());
    let got = same_screen(&wide("\u{2003}\u{2003}"), vt.screen());
    assert!(got.as_ref().is_err_and(|e| e.contains("row 0 col 0")), "{got:?}");
}

/// A capture fed to vt100 with one letter changed: the feeder says where, after which chunk,
/// with the input up to there; without the change it finds nothing.
#[test]
fn the_feeder_reports_a_difference_with_the_input_tail() {
    let cap = CAPTURES.iter().find(|c| c.name == "real/tui-plus-24x80.bin").expect("real/tui-plus-24x80.bin");
    let at = cap.bytes.windows(7).position(|w| w == b"Working").expect("Working in the capture");
    let mut other = cap.bytes.clone();
    other[at] = b'w';
    let cuts: Vec<usize> = (1..8).map(|i| i * 800).collect();
    let chunk = at / 800;
    let err = feed_pair(24, 80, &cap.bytes, &other, &cuts).expect_err("a changed letter must show");
    let want = format!("24x80, after chunk {chunk} ({}..{}): row 17 col 2: contents: Term \"W\", vt100 \"w\"", chunk * 800, chunk * 800 + 800);
    assert!(err.starts_with(&want), "{err}");
    assert!(err.contains(&format!("input bytes {}..{} of {}: ", chunk * 800 + 600, chunk * 800 + 800, cap.bytes.len())), "{err}");
    assert!(err.contains("Working"), "{err}");
    assert_eq!(feed_pair(24, 80, &cap.bytes, &cap.bytes, &cuts), Ok(Outcome::Same));
}

/// A row that looks different (text, or colour alone) must be flagged by `take_changed`.
#[test]
fn an_unflagged_changed_row_is_reported() {
    let look = |bytes: &[u8]| {
        let mut vt = vt100::Parser::new(3, 10, 0);
        vt.process(bytes);
        looks(vt.screen())
    };
    let (blank, red, plain) = (look(b""), look(b"\r\n\x1b[31mx"), look(b"\r\nx"));
    assert_eq!(changes_flagged(&blank, &red, &[false, true, false]), Ok(()));
    assert_eq!(changes_flagged(&blank, &red, &[true, true, true]), Ok(()));
    let err = changes_flagged(&blank, &red, &[true, false, true]).unwrap_err();
    assert!(err.starts_with("row 1: take_changed: not flagged, but vt100 shows \"x\" where it showed \"\""), "{err}");
    assert!(changes_flagged(&plain, &red, &[false, false, false]).is_err_and(|e| e.starts_with("row 1:")));
    assert!(changes_flagged(&blank, &red, &[true, true]).is_err_and(|e| e.contains("take_changed rows")));
}

/// vt100 panics on a one-row screen (see fuzz.rs): the case is skipped, with the place, and
/// the panic is not printed.
#[test]
fn a_vt100_panic_skips_the_case() {
    let cap = CAPTURES.iter().find(|c| c.name == "real/tui-long-answer-30x100.bin").expect("real/tui-long-answer-30x100.bin");
    let got = feed_into(Term::new(2, 80), vt100::Parser::new(1, 80, 0), &cap.bytes, &cap.bytes, &[]);
    assert!(matches!(&got, Ok(Outcome::Vt100Panicked(at)) if at.starts_with("grid.rs:")), "{got:?}");
}

#[test]
fn sizes_come_from_the_file_names() {
    assert_eq!(size_in_name("real/tui-plus-20x44.bin"), Some((20, 44)));
    assert_eq!(size_in_name("tui-team-30x40-softwrap.bin"), Some((30, 40)));
    assert_eq!(size_in_name("tui-x.bin"), None);
}

