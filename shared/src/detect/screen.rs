//! Reading codex's `■ <message>` error banner off a modelled terminal screen.
//!
//! Every byte goes through a screen model ([`crate::term::Term`], or `vt100` 0.15 when asked:
//! [`ScreenModel`]), so cursor moves, colours, scroll regions and wrapping are seen as a person
//! sees them. The rows are read at two kinds of moments:
//!
//! - **a `■` printed at column 0** (on the normal screen: inline TUIs, older codex): from that
//!   byte on, the banner is a *candidate*, and the feed
//!   is cut before every byte that may move or scroll it (ESC, LF, VT, FF) to read it again,
//!   following it up the screen when the terminal scrolls it. A candidate is settled once its
//!   text is a whole limit message ([`texts::is_complete`]) with the cursor at or below its last
//!   row, once the cursor has left its rows (codex went on drawing elsewhere), once it is erased
//!   or scrolled away (its last reading counts), or at the end of the stream. Text that cannot
//!   become a limit message drops it at once. This catches banners that scroll away fast
//!   (inline mode, a flood of output in one read).
//! - **scans of the whole screen**: every row with `■ ` at column 0 holding a whole limit message
//!   is read at the end of every feed, and at the end of a synchronized-update frame
//!   (`ESC[?2026l`, which codex 0.169 sends after every frame) when 16 KiB have passed since the
//!   last scan. codex redraws only the cells that changed, so a new banner drawn where an old one
//!   stood may not print a `■` at all; the scans still see it. A banner settled by a scan is not
//!   read again while its rows are unchanged. (A scan reads the changed banner rows again:
//!   codex's redraws touch them; with scans every 8 KiB that was 10 % on top of the fast screen
//!   model in a resume; a banner shown for less than 16 KiB of frames within one read, and gone
//!   by its end, is not seen on the alternate screen. codex's banner stays; hs-run's reads of
//!   codex's output are 4 KiB.) A scan in the middle of a frame
//!   leaves alone a banner with the cursor on it or just below (it may still be being drawn).
//!
//! A settled banner is reported when its text is new to this reader: texts already reported,
//! and texts seen while not armed or on the screen at a mark, are *known* and never reported
//! again. A banner that moves (the conversation scrolls), is repainted, or comes back into view
//! therefore never fires twice. The price: a second limit with exactly the same text as a known
//! one (same plan, same reset minute) is not reported by the screen; the rollout still has it.

use crate::detect::texts;
use crate::events::LimitKind;
use crate::term::{Term, MIN_COLS, MIN_ROWS};
use std::collections::VecDeque;
use std::sync::LazyLock;

/// U+25A0 BLACK SQUARE, codex's error marker, in UTF-8.
const GLYPH: &[u8] = "■".as_bytes();
/// The end of a synchronized update (DEC mode 2026): a frame is drawn.
const FRAME_END: &[u8] = b"\x1b[?2026l";
/// Banners read at once; more are ignored until one settles.
const MAX_PENDING: usize = 8;
/// Continuation rows read below a banner's first row.
const MAX_ROWS: u16 = 12;
/// Readings of one candidate before it is settled anyway.
const MAX_READS: u32 = 4096;
/// Frame ends closer together than this share one scan of the screen (the scan at the end of
/// each feed still sees what the skipped frames drew).
const SCAN_EVERY: usize = 16 * 1024;
/// Known texts remembered (oldest forgotten first).
const MAX_KNOWN: usize = 64;

struct Candidate {
    /// The screen row of the `■`.
    row: u16,
    /// The first row's text at the last reading (the row only grows while drawn).
    first: String,
    /// The message at the last reading.
    text: String,
    kind: Option<LimitKind>,
    reads: u32,
    /// Begun before a mark: its text becomes known, never reported.
    old: bool,
}

/// A banner as the screen shows it.
struct Banner {
    /// The `■` row, trimmed.
    first: String,
    /// The message: after `■ `, continuation rows joined.
    text: String,
    kind: Option<LimitKind>,
    /// The last row the message covers.
    last: u16,
    /// The `■` is drawn in codex's error colour.
    error_style: bool,
    /// The row below `last` is not part of it (or `last` is the bottom row).
    ended: bool,
}

/// The screen model a reader parses with. Both show the same screen (shared/tests/term_vs_vt100.rs
/// proves it cell by cell); `Vt100` is the crate hs-detect used before, kept to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScreenModel {
    /// [`crate::term::Term`]: only what a banner needs, two to three times faster.
    #[default]
    Term,
    /// The `vt100` 0.15 crate.
    Vt100,
}

// (one per detector, never moved: the size of the reference model does not matter)
#[allow(clippy::large_enum_variant)]
enum Model {
    Term(Term),
    Vt100(vt100::Parser),
}

/// codex's error colour: the `■` row is red, ANSI colour 1 (`ESC[38;5;1m` from codex,
/// `ESC[31m` elsewhere; both read as index 1).
const ERROR_COLOUR: vt100::Color = vt100::Color::Idx(1);

impl Model {
    /// vt100 0.15 panics on a one-row screen, on a two-column one with a wide character, and on
    /// a cursor restored after a shrink; both models get at least [`MIN_ROWS`]×[`MIN_COLS`] (a
    /// terminal that small shows no readable banner anyway).
    fn new(kind: ScreenModel, rows: u16, cols: u16) -> Model {
        match kind {
            ScreenModel::Term => Model::Term(Term::new(rows, cols)),
            ScreenModel::Vt100 => Model::Vt100(vt100::Parser::new(rows.max(MIN_ROWS), cols.max(MIN_COLS), 0)),
        }
    }

    fn process(&mut self, bytes: &[u8]) {
        match self {
            Model::Term(t) => t.process(bytes),
            Model::Vt100(p) => p.process(bytes),
        }
    }

    fn size(&self) -> (u16, u16) {
        match self {
            Model::Term(t) => t.size(),
            Model::Vt100(p) => p.screen().size(),
        }
    }

    fn cursor_position(&self) -> (u16, u16) {
        match self {
            Model::Term(t) => t.cursor_position(),
            Model::Vt100(p) => p.screen().cursor_position(),
        }
    }

    fn alternate_screen(&self) -> bool {
        match self {
            Model::Term(t) => t.alternate_screen(),
            Model::Vt100(p) => p.screen().alternate_screen(),
        }
    }

    fn row_wrapped(&self, row: u16) -> bool {
        match self {
            Model::Term(t) => t.row_wrapped(row),
            Model::Vt100(p) => p.screen().row_wrapped(row),
        }
    }

    /// One row's text, trailing blanks kept only when it soft-wraps.
    fn row_text(&self, row: u16) -> String {
        match self {
            Model::Term(t) => {
                let mut text = t.row_text(row);
                if !t.row_wrapped(row) {
                    text.truncate(text.trim_end().len());
                }
                text
            }
            Model::Vt100(p) => {
                // (`contents_between` walks to the row once; `rows()` would build every row above.)
                let mut text = p.screen().contents_between(row, 0, row + 1, 0);
                if text.ends_with('\n') {
                    text.pop();
                    text.truncate(text.trim_end().len());
                }
                text
            }
        }
    }

    /// Which rows changed since the last call (vt100 does not say: all of them).
    fn take_changed(&mut self, rows: &mut Vec<bool>) {
        match self {
            Model::Term(t) => t.take_changed(rows),
            Model::Vt100(p) => {
                rows.clear();
                rows.resize(usize::from(p.screen().size().0), true);
            }
        }
    }

    /// Cell (row, col) holds `■` alone.
    fn is_glyph(&self, row: u16, col: u16) -> bool {
        match self {
            Model::Term(t) => t.cell(row, col).is_some_and(|c| c.is('■')),
            Model::Vt100(p) => p.screen().cell(row, col).is_some_and(|c| c.has_contents() && c.contents() == "■"),
        }
    }

    /// Cell (row, col) is drawn in codex's error colour.
    fn error_colour(&self, row: u16, col: u16) -> bool {
        match self {
            Model::Term(t) => t.cell(row, col).is_some_and(|c| c.is_error_colour()),
            Model::Vt100(p) => p.screen().cell(row, col).is_some_and(|c| c.fgcolor() == ERROR_COLOUR),
        }
    }

    /// Cell (row, col) shows something other than a blank.
    fn filled(&self, row: u16, col: u16) -> bool {
        match self {
            Model::Term(t) => t.cell(row, col).is_some_and(|c| c.has_contents() && !c.is(' ')),
            Model::Vt100(p) => p.screen().cell(row, col).is_some_and(|c| c.has_contents() && c.contents() != " "),
        }
    }
}

pub(super) struct ScreenReader {
    kind: ScreenModel,
    screen: Model,
    /// Bytes processed since the last scan of the whole screen.
    since_scan: usize,
    pending: Vec<Candidate>,
    /// The end of the last feed when it could be the start of a glyph or a frame end: read
    /// together with the next feed.
    held: Vec<u8>,
    known: VecDeque<Known>,
    /// Banners a scan settled, (first row, last row read), on rows unchanged since: the next
    /// scan passes over them (reading them again would settle the same text again, a no-op).
    settled: Vec<(u16, u16)>,
    /// The changed-rows flags, kept to reuse the allocation.
    changed: Vec<bool>,
}

enum Verdict {
    Wait,
    Drop,
    Settle,
}

impl ScreenReader {
    pub fn new(kind: ScreenModel, rows: u16, cols: u16) -> ScreenReader {
        ScreenReader {
            kind,
            screen: Model::new(kind, rows, cols),
            since_scan: 0,
            pending: Vec::new(),
            held: Vec::new(),
            known: VecDeque::new(),
            settled: Vec::new(),
            changed: Vec::new(),
        }
    }

    /// A new, empty model at the new size (codex redraws everything after a resize; a model
    /// resized in place can panic on a cursor saved before a shrink). Known texts are kept.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.screen = Model::new(self.kind, rows, cols);
        self.pending.clear();
        self.settled.clear();
    }

    /// Banners on the screen now, or still being drawn, are old.
    pub fn set_mark(&mut self) {
        for c in &mut self.pending {
            c.old = true;
        }
        self.scan(false, true, &mut Vec::new());
    }

    /// A text that is never reported.
    pub fn add_known(&mut self, text: &str) {
        let kind = texts::classify(text).unwrap_or(LimitKind::Other);
        self.settle(kind, text, false, &mut Vec::new());
    }

    /// Feeds bytes; returns the banners they complete. Banners settled while not `armed` only
    /// become known.
    pub fn feed(&mut self, bytes: &[u8], armed: bool) -> Vec<(LimitKind, String)> {
        let mut out = Vec::new();
        let joined;
        let data = if self.held.is_empty() {
            bytes
        } else {
            joined = [std::mem::take(&mut self.held).as_slice(), bytes].concat();
            joined.as_slice()
        };
        let (now, later) = data.split_at(data.len() - held_suffix(data));
        self.process(now, armed, &mut out);
        self.held = later.to_vec();
        out
    }

    /// The end of the stream: every candidate is settled with what it shows now.
    pub fn finish(&mut self, armed: bool) -> Vec<(LimitKind, String)> {
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.held);
        self.process(&held, armed, &mut out);
        self.read_candidates(armed, &mut out);
        for c in std::mem::take(&mut self.pending) {
            if let Some(kind) = c.kind {
                self.settle(kind, &c.text, armed && !c.old, &mut out);
            }
        }
        self.scan(armed, true, &mut out);
        out
    }

    fn process(&mut self, data: &[u8], armed: bool, out: &mut Vec<(LimitKind, String)>) {
        let mut i = 0;
        // The next glyph at or after `i` (absolute), searched once and reused until passed:
        // searching again from every stop would read the rest of the data again each time.
        let mut glyph = find_glyph(data);
        while i < data.len() {
            let rest = &data[i..];
            if glyph.is_some_and(|g| g < i) {
                glyph = find_glyph(rest).map(|g| g + i);
            }
            let frames_from = SCAN_EVERY.saturating_sub(self.since_scan);
            let Some(stop) = next_stop(rest, !self.pending.is_empty(), frames_from, glyph.map(|g| g - i)) else {
                self.screen.process(rest);
                self.since_scan += rest.len();
                break;
            };
            self.screen.process(&rest[..stop]);
            if !self.pending.is_empty() {
                self.read_candidates(armed, out);
            }
            let at = &rest[stop..];
            let step = if at.starts_with(GLYPH) {
                self.glyph_at_cursor();
                GLYPH.len()
            } else {
                if at.starts_with(FRAME_END) && self.since_scan + stop >= SCAN_EVERY {
                    self.scan(armed, true, out);
                }
                1
            };
            self.screen.process(&at[..step]);
            self.since_scan += stop + step;
            i += stop + step;
        }
        if !self.pending.is_empty() {
            self.read_candidates(armed, out);
        }
        // The end of what arrived: whatever it drew is on the screen now (a whole frame if it
        // ends with a frame end).
        if self.since_scan > 0 {
            self.scan(armed, data.ends_with(FRAME_END), out);
        }
    }

    /// A `■` is about to be printed at the cursor. On the alternate screen (codex 0.169 draws
    /// there) nothing scrolls away by itself, so the scans suffice and nothing is followed.
    fn glyph_at_cursor(&mut self) {
        let screen = &self.screen;
        if screen.alternate_screen() {
            return;
        }
        let (row, col) = screen.cursor_position();
        let soft_wrapped_into = row > 0 && screen.row_wrapped(row - 1);
        if col != 0 || soft_wrapped_into || self.pending.len() >= MAX_PENDING {
            return;
        }
        self.pending.retain(|c| c.row != row);
        self.pending.push(Candidate {
            row,
            first: String::new(),
            text: String::new(),
            kind: None,
            reads: 0,
            old: false,
        });
    }

    fn read_candidates(&mut self, armed: bool, out: &mut Vec<(LimitKind, String)>) {
        let mut pending = std::mem::take(&mut self.pending);
        let mut settled = Vec::new();
        pending.retain_mut(|c| match self.read(c) {
            Verdict::Wait => true,
            Verdict::Drop => false,
            Verdict::Settle => {
                settled.extend(c.kind.map(|k| (k, std::mem::take(&mut c.text), c.old)));
                false
            }
        });
        self.pending = pending;
        for (kind, text, old) in settled {
            self.settle(kind, &text, armed && !old, out);
        }
    }

    fn read(&self, c: &mut Candidate) -> Verdict {
        let screen = &self.screen;
        // Its first row, if row `r` still shows it (a cheap look at column 0 first).
        let holds = |r: u16| {
            screen.is_glyph(r, 0).then(|| screen.row_text(r)).filter(|t| t.starts_with(c.first.as_str()))
        };
        // Not yet read: it is where the glyph was printed, or higher up by as many rows as the
        // terminal's own wrapping of its text scrolled it (an old banner above is not it).
        // Later: codex or the terminal scrolls text up, so look upwards.
        let mut lowest = c.row;
        if c.reads == 0 {
            while lowest > 0 && holds(lowest).is_none() && screen.row_wrapped(lowest - 1) {
                lowest -= 1;
            }
        } else {
            lowest = 0;
        }
        let Some((row, first)) = (lowest..=c.row).rev().find_map(|r| holds(r).map(|t| (r, t))) else {
            // Erased or scrolled off: what it last showed is what a person saw.
            return if c.kind.is_some() { Verdict::Settle } else { Verdict::Drop };
        };
        c.row = row;
        c.reads += 1;
        let Some(b) = banner(screen, row, first) else { return Verdict::Drop };
        // Rows below may be drawn before this one is finished: judge by this row alone. An
        // error row in other words is read to its end (its limit words may come later).
        let head = b.first.trim_start_matches('■').trim_start();
        if head.is_empty() {
            return Verdict::Wait;
        }
        if !b.error_style && !texts::could_be_limit(head) {
            return Verdict::Drop;
        }
        (c.first, c.text, c.kind) = (b.first, b.text, b.kind);
        let (cursor_row, _) = screen.cursor_position();
        let cursor_near = (row..=b.last + 1).contains(&cursor_row);
        match c.kind {
            // Whole, and the cursor is past its first rows (rows drawn out of order are done).
            Some(k) if texts::is_complete(k, &c.text) && cursor_row >= b.last => Verdict::Settle,
            _ if !cursor_near || c.reads >= MAX_READS => {
                if c.kind.is_some() {
                    Verdict::Settle
                } else {
                    Verdict::Drop
                }
            }
            _ => Verdict::Wait,
        }
    }

    /// Every whole banner on the screen. `drawn`: a frame is complete (or the stream ended);
    /// otherwise a banner with the cursor on or just below it may still be being drawn, and
    /// waits for a later scan.
    fn scan(&mut self, armed: bool, drawn: bool, out: &mut Vec<(LimitKind, String)>) {
        self.since_scan = 0;
        self.screen.take_changed(&mut self.changed);
        let changed = &self.changed;
        let touched = |from: u16, to: u16| {
            changed.iter().skip(usize::from(from)).take(usize::from(to - from) + 1).any(|&c| c)
        };
        self.settled.retain(|&(row, read_to)| !touched(row, read_to));
        let screen = &self.screen;
        let (cursor_row, _) = screen.cursor_position();
        let mut found = Vec::new();
        for row in glyph_rows(screen) {
            if self.settled.iter().any(|&(r, _)| r == row) {
                continue;
            }
            if let Some(Banner { kind: Some(k), text, last, ended, .. }) = banner(screen, row, screen.row_text(row)) {
                let drawing = !drawn && (row..=last + 1).contains(&cursor_row);
                // A text in unknown words has no known end: only a drawn frame shows it whole.
                let whole = match k {
                    LimitKind::RateLimited => true,
                    LimitKind::Other => drawn && ended,
                    k => texts::is_complete(k, &text),
                };
                if !drawing && whole {
                    // A whole message was read without the row below; other texts were ended by it.
                    let read_to = if texts::is_complete(k, &text) { last } else { last + 1 };
                    found.push((k, text));
                    self.settled.push((row, read_to));
                }
            }
        }
        for (kind, text) in found {
            self.settle(kind, &text, armed, out);
        }
    }

    /// A banner was read whole: reported if its text is new and `report`, known from now on.
    fn settle(&mut self, kind: LimitKind, text: &str, report: bool, out: &mut Vec<(LimitKind, String)>) {
        // Compared without whitespace: wrapped at another width (a resize), a long word broken
        // elsewhere, it is the same text. A part of a known text is that banner, less of it
        // seen; a text that completes a known part is that banner, more of it seen. A whole
        // message only ever matches itself: a known part never hides a different limit...
        // unless the part is what they share, which only a banner cut short leaves behind.
        let squashed: String = text.split_whitespace().collect();
        if self.known.iter().any(|k| k.text == squashed) {
            return;
        }
        let whole = texts::is_complete(kind, text);
        let seen = self.known.iter().any(|k| {
            k.text == squashed
                || (!k.whole && squashed.starts_with(k.text.as_str()))
                || (!whole && k.text.starts_with(squashed.as_str()))
        });
        if seen {
            return;
        }
        if self.known.len() == MAX_KNOWN {
            self.known.pop_front();
        }
        self.known.push_back(Known { text: squashed, whole });
        if report {
            out.push((kind, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
}

/// A banner text this reader has seen, without whitespace.
struct Known {
    text: String,
    /// A whole limit message ([`texts::is_complete`]), not a part of one.
    whole: bool,
}

/// The rows whose column 0 holds `■`, not reached by the row above soft-wrapping into it.
fn glyph_rows(screen: &Model) -> Vec<u16> {
    let mut rows = Vec::new();
    for r in 0..screen.size().0 {
        if screen.is_glyph(r, 0) && !(r > 0 && screen.row_wrapped(r - 1)) {
            rows.push(r);
        }
    }
    rows
}

/// The banner whose `■` is at column 0 of `row` (its text `first`), or `None` if the row is not
/// `■` or `■ …`. Its kind: a known limit message (whatever its colour), or, on codex's own
/// error row (the `■` in the error colour), a text in other words that says a limit was hit
/// ([`LimitKind::Other`]).
fn banner(screen: &Model, row: u16, first: String) -> Option<Banner> {
    let body = first.strip_prefix('■')?;
    if !body.is_empty() && !body.starts_with(' ') {
        return None;
    }
    let error_style = screen.error_colour(row, 0);
    let kind_of = |text: &str| if error_style { texts::classify_error(text) } else { texts::classify(text) };
    let mut text = body.trim().to_string();
    let mut last = row;
    let mut kind = kind_of(&text);
    let rows = screen.size().0;
    let mut ended = true;
    while last + 1 < rows && !kind.is_some_and(|k| texts::is_complete(k, &text)) {
        // An opener is read at the start of the text: once the text read so far is longer than
        // every opener, its kind no longer changes (a text in unknown words may still gain its
        // words). Measured the way the opener is read (normalized: whitespace squashed).
        let settled = kind.is_some_and(|k| k != LimitKind::Other) && texts::normalize(&text).len() > texts::OPENER_MAX;
        let next = screen.row_text(last + 1);
        if last + 1 - row > MAX_ROWS {
            ended = false;
            break;
        }
        if screen.row_wrapped(last) {
            text.push_str(&next);
        } else if !continues(&next) && cut_word(screen, last, &next) {
            // A word longer than the row (a URL), cut at the last column by codex.
            text.push_str(&next);
        } else if continues(&next) {
            // codex breaks long words (URLs) after `/` and `-`: no space there.
            if !text.ends_with(['/', '-']) {
                text.push(' ');
            }
            text.push_str(next.trim());
        } else {
            break;
        }
        last += 1;
        if !settled {
            kind = kind_of(&text);
        }
    }
    let first = first.trim_end().to_string();
    Some(Banner { first, text, kind, last, error_style, ended })
}

/// Whether row `row` is full to its last column and `next` goes straight on at column 0: codex
/// cut a word longer than the row there (`next` then may start with `)` or `.`).
fn cut_word(screen: &Model, row: u16, next: &str) -> bool {
    let cols = screen.size().1;
    let full = screen.filled(row, cols - 1);
    full && next.starts_with(|c: char| !c.is_whitespace()) && !next.starts_with(['■', '•', '›', '└', '⚠', '│', '─'])
}

/// Whether a row below a banner continues its message: not blank, and not the start of
/// something else codex draws (a marker glyph or box drawing in front).
fn continues(row: &str) -> bool {
    let t = row.trim_start();
    let indent = row.len() - t.len();
    match t.chars().next() {
        None => false,
        Some(c) => indent <= 2 && (c.is_alphanumeric() || "(\"'’`[<$".contains(c)),
    }
}

/// Where the first `■` in `hay` starts. (Literal searches run through `regex`'s SIMD substring
/// search: most bytes are never looked at one by one.)
fn find_glyph(hay: &[u8]) -> Option<usize> {
    static GLYPH_RE: LazyLock<regex::bytes::Regex> =
        LazyLock::new(|| regex::bytes::Regex::new(r"(?-u)\xE2\x96\xA0").unwrap());
    GLYPH_RE.find(hay).map(|m| m.start())
}

/// Where in `hay` the feed must stop: a `■` (the first is at `glyph`, from [`find_glyph`]); a
/// frame end at `frames_from` or later; while a banner is being read, any byte that may move
/// the cursor or scroll.
fn next_stop(hay: &[u8], reading: bool, frames_from: usize, glyph: Option<usize>) -> Option<usize> {
    static FRAME_RE: LazyLock<regex::bytes::Regex> =
        LazyLock::new(|| regex::bytes::Regex::new(r"(?-u)\x1B\[\?2026l").unwrap());
    if reading {
        return hay.iter().enumerate().position(|(i, &b)| match b {
            0xe2 => hay[i..].starts_with(GLYPH),
            0x1b | b'\n' | 0x0b | 0x0c => true,
            _ => false,
        });
    }
    let end = glyph.unwrap_or(hay.len());
    let frame = hay.get(frames_from..end).and_then(|h| FRAME_RE.find(h)).map(|m| frames_from + m.start());
    frame.or(glyph)
}

/// How many bytes at the end of `data` may begin a glyph or a frame end (held for the next feed).
fn held_suffix(data: &[u8]) -> usize {
    let max = (FRAME_END.len() - 1).min(data.len());
    (1..=max)
        .rev()
        .find(|&k| {
            let tail = &data[data.len() - k..];
            (k < GLYPH.len() && GLYPH.starts_with(tail)) || FRAME_END.starts_with(tail)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], rows: u16, cols: u16) -> Vec<(LimitKind, String)> {
        let mut s = ScreenReader::new(ScreenModel::Term, rows, cols);
        let mut out = s.feed(bytes, true);
        out.extend(s.finish(true));
        out
    }

    #[test]
    fn known_texts() {
        let mut s = ScreenReader::new(ScreenModel::Term, 24, 80);
        let mut out = Vec::new();
        let u = LimitKind::UsageLimit;
        s.settle(u, "You’ve hit your usage limit. Try again at 7:48 PM.", true, &mut out);
        s.settle(u, "You’ve hit your usage  limit. Try again at 7:48 PM.", true, &mut out);
        s.settle(u, "You’ve hit your usage limit. Try again", true, &mut out);
        assert_eq!(out.len(), 1, "the same text, re-wrapped or in part: {out:?}");
        s.settle(u, "You’ve hit your usage limit. Try again at 7:49 PM.", true, &mut out);
        assert_eq!(out.len(), 2, "another whole message");
        // A part seen (a banner cut short), then its completion: one banner.
        let r = LimitKind::RateLimited;
        s.settle(r, "exceeded retry limit, last status: 429 Too Many Requests, request id: a", true, &mut out);
        s.settle(r, "exceeded retry limit, last status: 429 Too Many Requests, request id: ab", true, &mut out);
        s.settle(r, "exceeded retry limit, last status: 429 Too Many Requests, request id: c", true, &mut out);
        assert_eq!(out.len(), 4, "{out:?}");
    }

    fn stop(hay: &[u8], reading: bool, frames_from: usize) -> Option<usize> {
        next_stop(hay, reading, frames_from, find_glyph(hay))
    }

    #[test]
    fn stops_and_held_bytes() {
        assert_eq!(stop(b"ab\xe2\x80\xa2 \xe2\x96\xa0 x", false, 0), Some(6));
        assert_eq!(stop(b"a\x1b[0m\x1b[?2026l", false, 0), Some(5));
        assert_eq!(stop(b"a\x1b[0m\x1b[?2026l", false, 6), None);
        assert_eq!(stop(b"a\x1b[0m\x1b[?2026l\xe2\x96\xa0", false, 6), Some(13));
        assert_eq!(stop(b"a\x1b[0m\n", true, 0), Some(1));
        assert_eq!(stop(b"a\x1b[0m\n", false, 0), None);
        assert_eq!(held_suffix(b"ab\xe2\x96"), 2);
        assert_eq!(held_suffix(b"ab\xe2"), 1);
        assert_eq!(held_suffix(b"ab\x1b[?20"), 5);
        assert_eq!(held_suffix(b"ab\xe2\x96\xa0"), 0);
        assert_eq!(held_suffix(b"ab\x1b[?2026l"), 0);
    }

    #[test]
    fn wrapped_by_the_terminal() {
        let msg = "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:48 PM.";
        let got = read_all(format!("\x1b[31m{msg}\x1b[0m\r\n").as_bytes(), 24, 40);
        assert_eq!(got, vec![(LimitKind::UsageLimit, msg["■ ".len()..].to_string())]);
    }

    #[test]
    fn a_kind_is_read_from_the_text_as_reported() {
        // A first row with a wide gap (a damaged redraw): over 80 bytes as drawn, but the
        // opener is read with the gap squashed, so the next row still makes it a model limit.
        let first = format!("■ You’ve{}hit your usage limit", " ".repeat(60));
        let bytes = format!("\x1b[?1049h\x1b[5;1H{first}\x1b[6;3Hfor GPT-6 Sol. Switch to another model now, or try again at 7:48 PM.\x1b[20;3H");
        let want = "You’ve hit your usage limit for GPT-6 Sol. Switch to another model now, or try again at 7:48 PM.";
        assert_eq!(read_all(bytes.as_bytes(), 24, 100), vec![(LimitKind::ModelLimit, want.to_string())]);
        // The same without the gap: a row ending at "usage limit" (a narrow terminal).
        let bytes = bytes.replace(&" ".repeat(60), " ");
        assert_eq!(read_all(bytes.as_bytes(), 24, 100), vec![(LimitKind::ModelLimit, want.to_string())]);
    }

    #[test]
    fn unknown_limit_words_count_only_on_the_red_error_row() {
        let frame = |sgr: &str, t: &str| {
            format!("\x1b[?1049h\x1b[?2026h\x1b[2J\x1b[5;1H{sgr}■ {t}\x1b[0m\x1b[20;3H\x1b[?2026l").into_bytes()
        };
        let text = "Your organization has reached its monthly credit limit. Ask an admin to raise it.";
        // Wrapped by codex over two rows at 60 columns: read whole, once.
        let wrapped = text.replacen("credit limit. ", "credit limit.\x1b[6;1H", 1);
        let want = vec![(LimitKind::Other, text.to_string())];
        assert_eq!(read_all(&frame("\x1b[38;5;1;49m", &wrapped), 24, 60), want);
        assert_eq!(read_all(&frame("\x1b[31m", text), 24, 120), want);
        // Not red: not codex's error row. Red, but not a limit: nothing either.
        assert!(read_all(&frame("", text), 24, 120).is_empty());
        assert!(read_all(&frame("\x1b[31m", "Conversation interrupted - tell the model what to do differently."), 24, 120).is_empty());
        assert!(read_all(&frame("\x1b[31m", "Couldn't load usage limit resets. Please try again."), 24, 120).is_empty());
    }

    #[test]
    fn indented_or_soft_wrapped_squares_are_not_banners() {
        let bytes = "• ■ You’ve hit your usage limit. Try again at 7:48 PM.\r\n  ■ You’ve hit your usage limit. Try again later.\r\n";
        assert!(read_all(bytes.as_bytes(), 24, 80).is_empty());
        // 10 columns: the square is pushed to column 0 of the next row by the terminal.
        assert!(read_all("123456789 ■ You’ve hit your usage limit. Try again later.\r\n".as_bytes(), 24, 10).is_empty());
    }

    #[test]
    fn on_screen_before_is_old_and_scrolling_is_followed() {
        let mut s = ScreenReader::new(ScreenModel::Term, 5, 80);
        assert!(s.feed("■ You’ve hit your usage limit. Try again later.\r\n".as_bytes(), false).is_empty());
        // Scrolled up (newlines at the bottom): still nothing, no ■ was written.
        assert!(s.feed(b"\x1b[5;1H\n\n\n", true).is_empty());
        assert!(s.finish(true).is_empty());
        // A half-written banner scrolled up by its own continuation row.
        let mut s = ScreenReader::new(ScreenModel::Term, 5, 80);
        let mut got = s.feed("\x1b[5;1H■ You’ve hit your usage limit. Upgrade to Pro, visit\r\n".as_bytes(), true);
        assert!(got.is_empty());
        got.extend(s.feed(b"https://chatgpt.com/settings/usage or try again at 7:48 PM.\x1b[1;1H", true));
        assert_eq!(got.len(), 1);
        assert!(got[0].1.ends_with("visit https://chatgpt.com/settings/usage or try again at 7:48 PM."), "{got:?}");
    }
}
