//! Reading codex's `■ <message>` error banner off a modelled terminal screen.
//!
//! Every byte goes through the `vt100` screen, so cursor moves, colours, scroll regions and
//! wrapping are seen as a person sees them. The rows are only read around a freshly written
//! `■` at column 0: from that byte on, the banner is a *candidate*, and the feed is cut before
//! every byte that may move or scroll it (ESC, LF, VT, FF) to read it again, following it up the
//! screen when codex scrolls it. A candidate is settled (reported or dropped) once its text is a
//! whole limit message ([`texts::is_complete`]), once the cursor has left its rows (codex went
//! on drawing elsewhere), once it is erased or scrolled away (its last reading counts), or at
//! the end of the stream. Text that cannot become a limit message drops it at once.

use crate::detect::texts;
use crate::events::LimitKind;
use std::collections::VecDeque;

/// U+25A0 BLACK SQUARE, codex's error marker, in UTF-8.
const GLYPH: &[u8; 3] = b"\xe2\x96\xa0";
/// Banners read at once; more are ignored until one settles.
const MAX_PENDING: usize = 8;
/// Continuation rows read below a banner's first row.
const MAX_ROWS: u16 = 8;
/// Readings of one candidate before it is settled anyway.
const MAX_READS: u32 = 4096;
/// Reported texts remembered (a redraw of one of them is not reported again).
const MAX_REPORTED: usize = 32;

struct Candidate {
    /// The screen row of the `■`.
    row: u16,
    /// The first row's text at the last reading (the row only grows while drawn).
    first: String,
    /// The message (after `■ `, continuation rows joined) at the last reading.
    text: String,
    kind: Option<LimitKind>,
    /// The last row the message covered at the last reading.
    last_row: u16,
    reads: u32,
}

pub(super) struct ScreenReader {
    parser: vt100::Parser,
    pending: Vec<Candidate>,
    /// Bytes of [`GLYPH`] that ended the previous feed.
    carry: usize,
    reported: VecDeque<String>,
}

enum Verdict {
    Wait,
    Drop,
    Report,
}

impl ScreenReader {
    pub fn new(rows: u16, cols: u16) -> ScreenReader {
        ScreenReader {
            parser: vt100::Parser::new(rows, cols, 0),
            pending: Vec::new(),
            carry: 0,
            reported: VecDeque::new(),
        }
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.set_size(rows, cols);
        self.pending.clear();
    }

    pub fn set_mark(&mut self) {
        self.pending.clear();
        self.reported.clear();
    }

    /// Feeds bytes; returns the banners they complete. New banners are noticed only if `armed`.
    pub fn feed(&mut self, bytes: &[u8], armed: bool) -> Vec<(LimitKind, String)> {
        let mut out = Vec::new();
        let mut i = 0;
        // A glyph split across feeds: its first bytes are already in the parser, the cursor
        // has not moved yet.
        if self.carry > 0 {
            let rest = &GLYPH[self.carry..];
            let n = rest.len().min(bytes.len());
            if bytes[..n] == rest[..n] {
                if n == rest.len() {
                    if armed {
                        self.glyph_at_cursor();
                    }
                    self.carry = 0;
                } else {
                    self.carry += n;
                }
                self.parser.process(&bytes[..n]);
                i = n;
            } else {
                self.carry = 0;
            }
        }
        while i < bytes.len() {
            let rest = &bytes[i..];
            let glyph = find_glyph(rest);
            let stop = if self.pending.is_empty() {
                glyph.map(|(at, _)| at)
            } else {
                let boundary = rest.iter().position(|&b| matches!(b, 0x1b | b'\n' | 0x0b | 0x0c));
                match (glyph, boundary) {
                    (Some((g, _)), Some(b)) => Some(g.min(b)),
                    (g, b) => g.map(|(at, _)| at).or(b),
                }
            };
            let Some(stop) = stop else {
                self.parser.process(rest);
                break;
            };
            self.parser.process(&rest[..stop]);
            if !self.pending.is_empty() {
                self.read_candidates(&mut out);
            }
            match glyph {
                Some((at, len)) if at == stop => {
                    if len == GLYPH.len() {
                        if armed {
                            self.glyph_at_cursor();
                        }
                    } else {
                        self.carry = len;
                    }
                    self.parser.process(&rest[stop..stop + len]);
                    i += stop + len;
                }
                _ => {
                    self.parser.process(&rest[stop..stop + 1]);
                    i += stop + 1;
                }
            }
        }
        if !self.pending.is_empty() {
            self.read_candidates(&mut out);
        }
        out
    }

    /// The end of the stream: every candidate is settled with what it shows now.
    pub fn finish(&mut self) -> Vec<(LimitKind, String)> {
        let mut out = Vec::new();
        self.read_candidates(&mut out);
        for c in std::mem::take(&mut self.pending) {
            if let Some(kind) = c.kind {
                self.report(kind, c.text, &mut out);
            }
        }
        out
    }

    /// A `■` is about to be printed at the cursor.
    fn glyph_at_cursor(&mut self) {
        let screen = self.parser.screen();
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
            last_row: row,
            reads: 0,
        });
    }

    fn read_candidates(&mut self, out: &mut Vec<(LimitKind, String)>) {
        let mut pending = std::mem::take(&mut self.pending);
        let rows: Vec<String> = self.parser.screen().rows(0, self.parser.screen().size().1).collect();
        let mut settled = Vec::new();
        pending.retain_mut(|c| match self.read(c, &rows) {
            Verdict::Wait => true,
            Verdict::Drop => false,
            Verdict::Report => {
                settled.extend(c.kind.map(|k| (k, std::mem::take(&mut c.text))));
                false
            }
        });
        self.pending = pending;
        for (kind, text) in settled {
            self.report(kind, text, out);
        }
    }

    fn read(&self, c: &mut Candidate, rows: &[String]) -> Verdict {
        let screen = self.parser.screen();
        let holds =
            |r: u16| rows.get(usize::from(r)).is_some_and(|t| t.starts_with('■') && t.starts_with(c.first.as_str()));
        // Where is it now? Codex scrolls history up, so look upwards.
        // Not yet read: it is where the glyph was printed, or higher up by as many rows as the
        // terminal's own wrapping of its text scrolled it (an old banner above is not it).
        let mut lowest = c.row;
        if c.reads == 0 {
            while lowest > 0 && !holds(lowest) && screen.row_wrapped(lowest - 1) {
                lowest -= 1;
            }
        } else {
            lowest = 0;
        }
        let Some(row) = (lowest..=c.row).rev().find(|&r| holds(r)) else {
            // Erased or scrolled off: what it last showed is what a person saw.
            return if c.kind.is_some() { Verdict::Report } else { Verdict::Drop };
        };
        c.row = row;
        c.reads += 1;
        let first = rows[usize::from(row)].trim_end();
        let Some(body) = first.strip_prefix("■") else { return Verdict::Drop };
        if body.is_empty() {
            return Verdict::Wait;
        }
        if !body.starts_with(' ') {
            return Verdict::Drop;
        }
        c.first = first.to_string();
        // A soft-wrapped row runs on into the next one: keep its trailing blanks.
        let piece = |r: u16| {
            let t = rows[usize::from(r)].as_str();
            if screen.row_wrapped(r) {
                t
            } else {
                t.trim_end()
            }
        };
        let mut text = piece(row)["■ ".len()..].trim_start().to_string();
        // Rows below may be drawn before this one is finished: judge by this row alone.
        if !texts::could_be_limit(&text) {
            return Verdict::Drop;
        }
        let mut last = row;
        let mut kind = texts::classify(&text);
        while last + 1 - row <= MAX_ROWS && !kind.is_some_and(|k| texts::is_complete(k, &text)) {
            let Some(next) = rows.get(usize::from(last) + 1) else { break };
            if screen.row_wrapped(last) {
                text.push_str(piece(last + 1));
            } else if continues(next) {
                text.push(' ');
                text.push_str(piece(last + 1).trim_start());
            } else {
                break;
            }
            last += 1;
            kind = texts::classify(&text);
        }
        c.text = text;
        c.kind = kind;
        c.last_row = last;
        let (cursor_row, _) = screen.cursor_position();
        let cursor_near = (row..=last + 1).contains(&cursor_row);
        // Whole, and the cursor is past its start rows (rows drawn out of order are done).
        match kind {
            Some(k) if texts::is_complete(k, &c.text) && cursor_row >= last => Verdict::Report,
            _ if !cursor_near || c.reads >= MAX_READS => {
                if kind.is_some() {
                    Verdict::Report
                } else {
                    Verdict::Drop
                }
            }
            _ => Verdict::Wait,
        }
    }

    fn report(&mut self, kind: LimitKind, text: String, out: &mut Vec<(LimitKind, String)>) {
        if self.reported.contains(&text) {
            return;
        }
        if self.reported.len() == MAX_REPORTED {
            self.reported.pop_front();
        }
        self.reported.push_back(text.clone());
        out.push((kind, text));
    }
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

/// The next [`GLYPH`] in `hay`: its offset and how many of its bytes `hay` holds (3, or 1–2
/// when `hay` ends inside it).
fn find_glyph(hay: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(off) = hay[from..].iter().position(|&b| b == GLYPH[0]) {
        let at = from + off;
        let tail = &hay[at..hay.len().min(at + 3)];
        if GLYPH.starts_with(tail) {
            return Some((at, tail.len()));
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], rows: u16, cols: u16) -> Vec<(LimitKind, String)> {
        let mut s = ScreenReader::new(rows, cols);
        let mut out = s.feed(bytes, true);
        out.extend(s.finish());
        out
    }

    #[test]
    fn finds_glyphs_and_their_halves() {
        assert_eq!(find_glyph(b"ab\xe2\x80\xa2 \xe2\x96\xa0 x"), Some((6, 3)));
        assert_eq!(find_glyph(b"ab\xe2\x96"), Some((2, 2)));
        assert_eq!(find_glyph(b"ab\xe2"), Some((2, 1)));
        assert_eq!(find_glyph(b"ab\xe2\x80"), None);
    }

    #[test]
    fn wrapped_by_the_terminal() {
        let msg = "■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:48 PM.";
        let got = read_all(format!("\x1b[31m{msg}\x1b[0m\r\n").as_bytes(), 24, 40);
        assert_eq!(got, vec![(LimitKind::UsageLimit, msg["■ ".len()..].to_string())]);
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
        let mut s = ScreenReader::new(5, 80);
        assert!(s.feed("■ You’ve hit your usage limit. Try again later.\r\n".as_bytes(), false).is_empty());
        // Scrolled up (newlines at the bottom): still nothing, no ■ was written.
        assert!(s.feed(b"\x1b[5;1H\n\n\n", true).is_empty());
        assert!(s.finish().is_empty());
        // A half-written banner scrolled up by its own continuation row.
        let mut s = ScreenReader::new(5, 80);
        let mut got = s.feed("\x1b[5;1H■ You’ve hit your usage limit. Upgrade to Pro, visit\r\n".as_bytes(), true);
        assert!(got.is_empty());
        got.extend(s.feed(b"https://chatgpt.com/settings/usage or try again at 7:48 PM.\x1b[1;1H", true));
        assert_eq!(got.len(), 1);
        assert!(got[0].1.ends_with("visit https://chatgpt.com/settings/usage or try again at 7:48 PM."), "{got:?}");
    }
}
