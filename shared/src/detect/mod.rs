//! Usage-limit detection in codex's output: a streaming [`Detector`] for terminal bytes (the TUI),
//! `codex exec` text, and `codex exec --json` lines.
//!
//! ```no_run
//! use shared::detect::{Detector, DetectOptions, Format};
//! let mut d = Detector::new(DetectOptions { format: Some(Format::Tui), rows: 50, cols: 200, ..Default::default() });
//! for chunk in [&b"..."[..]] {
//!     for event in d.feed(chunk) { /* Event::Limit(..) */ let _ = event; }
//! }
//! let _last = d.finish();
//! ```
//!
//! What counts as a limit, per format:
//! - **tui** ([`Format::Tui`]): the bytes drive a `vt100` screen of `rows`×`cols`. A limit is
//!   codex's error cell: a row with `■` at column 0 (not reached by soft-wrapping), a space, and
//!   a text that starts like one of codex's limit messages (see [`texts::classify`]), read
//!   together with its wrapped continuation rows; or, when that `■` is in codex's error colour
//!   (red, ANSI colour 1), a text in other words that says a limit was hit
//!   ([`texts::limit_like`], kind `other`: a wording this table does not know yet, reported once
//!   its frame is drawn). Why column 0 is the rule: every other cell
//!   codex draws is indented behind its own marker (`• ` the agent's answer, `› ` the user's
//!   prompt, `└ `/spaces for shell output, diffs and file views under their header), so a `■`
//!   that the model, a file or a command prints lands at column 2 or later; the status line
//!   (`⚠ 5h limit: …`) and the "Approaching rate limits" popup start with other glyphs. Rows
//!   are read when a `■` is printed at column 0 on the normal screen, at the end of each feed,
//!   and every 16 KiB of codex's frames (see the `screen` module for the details).
//!
//!   Newness: a banner is reported the first time its text shows up on the screen while the
//!   detector is armed. Texts already reported, and texts that were on the screen before the
//!   detector was armed or at a [`Detector::set_mark`], are *known*, and a known text is never
//!   reported again: the conversation scrolling, a repaint, a banner coming back into view or a
//!   resume redrawing it never fire. (So a later limit with exactly the same text, same plan and
//!   same reset minute, is not reported by the screen; the rollout reports every one.)
//! - **text** ([`Format::Text`]): a line `ERROR: <limit message>` (codex 0.169 prints it twice
//!   in a row for one limit: reported once).
//! - **json** ([`Format::Json`]): `{"type":"error"}` lines, and `turn.failed` lines whose message
//!   was not already reported in that turn.
//!
//! In the line formats too, an error message in unknown words that says a limit was hit is kind
//! `other` ([`texts::classify_error`]).
//!
//! Auto-detection (`format: None`): the first non-blank byte `{` means json; a terminal control
//! sequence other than a colour (SGR) means tui; 20 lines or 4 KiB without one (or the end of
//! the stream) mean text. At most 4 KiB are held back while deciding.
//!
//! Memory is bounded: the screen model, at most 8 banners being read, the last 64 known
//! texts, and one 64 KiB line for the line formats.
//!
//! # In a wrapper (hs-run)
//! - Embed it: one `Detector` per codex process, `format: Some(Format::Tui)`, the PTY's size,
//!   [`Detector::feed`] with every chunk read from the PTY master (after copying it to the real
//!   terminal), [`Detector::resize`] on SIGWINCH, [`Detector::finish`] when codex exits. Events
//!   come back at once: a feed ending in the middle of a frame leaves a half-drawn banner for the
//!   next feed, never reports it early. Or run `hs-detect --format tui --size RxC` as a child fed
//!   on its stdin (events on its stdout, SIGUSR1 = mark).
//! - After `codex resume <id>` the TUI redraws the old conversation, old banner included. Before
//!   starting it, give the new detector the limits already recorded in the session's rollout:
//!   [`crate::rollout::limit_texts`] → [`Detector::add_known_text`] (`hs-detect --rollout FILE
//!   --from-end` does it; `hs-detect --known TEXT` for texts handled elsewhere). No timing is
//!   involved: those texts are never reported, wherever and whenever they are redrawn. Or, with
//!   no rollout at hand: `wait_for_mark: true` and [`Detector::set_mark`] when the user's first
//!   Enter (or the prompt the wrapper types) is sent to codex: everything drawn before is old.
//! - Follow the session's rollout too ([`crate::rollout::Follower`], `from_end: true` after a
//!   resume): it has every limit as a record, exact reset times, and telemetry.

mod lines;
mod screen;
pub mod texts;

pub use screen::ScreenModel;
pub use texts::Zone;

use crate::events::{Event, LimitEvent, LimitKind, Source};
use chrono::{DateTime, Utc};

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Raw terminal output of the codex TUI.
    Tui,
    /// `codex exec` text (its stderr, possibly merged with stdout).
    Text,
    /// `codex exec --json` lines.
    Json,
}

impl std::str::FromStr for Format {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Format> {
        match s {
            "tui" => Ok(Format::Tui),
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => anyhow::bail!("unknown format {s:?}: use tui, text or json"),
        }
    }
}

/// Where "now" comes from: the system clock, or a fixed moment (tests, replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    #[default]
    System,
    Fixed(DateTime<Utc>),
}

impl Clock {
    pub fn now(self) -> DateTime<Utc> {
        match self {
            Clock::System => whole_seconds(Utc::now()),
            Clock::Fixed(t) => t,
        }
    }
}

/// How a [`Detector`] reads its input.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// `None`: detect the format from the first bytes.
    pub format: Option<Format>,
    /// The terminal size the TUI drew for (tui format only). Default 24×80.
    pub rows: u16,
    pub cols: u16,
    /// Stamped into every event's `account`.
    pub account: Option<String>,
    /// The zone that `try again at 7:48 PM` is read in.
    pub zone: Zone,
    /// Gives `at` and the base for relative reset times.
    pub clock: Clock,
    /// When true, nothing is reported until the first [`Detector::set_mark`]: the stream is
    /// modelled (the screen stays right) and every banner drawn before the mark is old, even
    /// when it is redrawn after the mark. For a `codex resume` that redraws the old conversation.
    pub wait_for_mark: bool,
    /// The terminal-screen model for the tui format (the built-in one unless comparing).
    pub screen_model: ScreenModel,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            format: None,
            rows: 24,
            cols: 80,
            account: None,
            zone: Zone::Local,
            clock: Clock::System,
            wait_for_mark: false,
            screen_model: ScreenModel::default(),
        }
    }
}

/// Stamps events with the account, the time and a reset time.
#[derive(Debug, Clone)]
pub(crate) struct Stamp {
    pub account: Option<String>,
    pub clock: Clock,
    pub zone: Zone,
}

impl Stamp {
    /// A limit event seen now; `resets_at` from the record when it had one, else from the text.
    pub fn limit(&self, kind: LimitKind, text: &str, resets_at: Option<DateTime<Utc>>, source: Source) -> Event {
        self.limit_at(kind, text, resets_at, source, self.clock.now(), None)
    }

    /// A limit event seen at `at` (the rollout record's own time).
    pub fn limit_at(
        &self,
        kind: LimitKind,
        text: &str,
        resets_at: Option<DateTime<Utc>>,
        source: Source,
        at: DateTime<Utc>,
        session_id: Option<String>,
    ) -> Event {
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let resets_at = resets_at.or_else(|| texts::reset_time(&text, at, self.zone));
        Event::Limit(LimitEvent { kind, text, resets_at, source, account: self.account.clone(), at, session_id })
    }
}

/// A time in a JSON record: unix seconds (integer or float) or an RFC 3339 string; whole seconds.
pub(crate) fn json_time(v: &serde_json::Value) -> Option<DateTime<Utc>> {
    match v {
        serde_json::Value::Number(n) => DateTime::from_timestamp(n.as_f64()?.floor() as i64, 0),
        serde_json::Value::String(s) => {
            DateTime::parse_from_rfc3339(s).ok().map(|t| whole_seconds(t.with_timezone(&Utc)))
        }
        _ => None,
    }
}

/// Events carry whole seconds, like every time the tools write.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Bytes held back while the format is unknown.
const SNIFF_MAX: usize = 4096;

enum Mode {
    Sniff(Vec<u8>),
    Tui(Box<screen::ScreenReader>),
    Text(lines::LineSplitter, lines::TextLines),
    Json(lines::LineSplitter, lines::JsonLines),
}

/// A streaming limit detector: feed it bytes as they come (split anywhere, even inside a UTF-8
/// character or an escape sequence) and it returns the [`Event::Limit`] events they complete.
pub struct Detector {
    stamp: Stamp,
    rows: u16,
    cols: u16,
    model: ScreenModel,
    armed: bool,
    mode: Mode,
    /// Texts made known before the format was decided.
    known_early: Vec<String>,
    /// Events found by `set_mark` reading held bytes, returned by the next feed or finish.
    deferred: Vec<Event>,
}

impl Detector {
    pub fn new(opts: DetectOptions) -> Detector {
        let stamp = Stamp { account: opts.account, clock: opts.clock, zone: opts.zone };
        let mut d = Detector {
            stamp,
            rows: opts.rows.max(1),
            cols: opts.cols.max(2),
            model: opts.screen_model,
            armed: !opts.wait_for_mark,
            mode: Mode::Sniff(Vec::new()),
            known_early: Vec::new(),
            deferred: Vec::new(),
        };
        if let Some(f) = opts.format {
            d.mode = d.mode_for(f);
        }
        d
    }

    /// The format in use (`None` while auto-detection still waits for bytes).
    pub fn format(&self) -> Option<Format> {
        match self.mode {
            Mode::Sniff(_) => None,
            Mode::Tui(_) => Some(Format::Tui),
            Mode::Text(..) => Some(Format::Text),
            Mode::Json(..) => Some(Format::Json),
        }
    }

    /// Reads more bytes; returns the limits they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.deferred);
        if let Mode::Sniff(buf) = &mut self.mode {
            buf.extend_from_slice(bytes);
            let Some(format) = sniff(buf, false) else { return out };
            let held = std::mem::take(buf);
            self.mode = self.mode_for(format);
            self.consume(&held, &mut out);
        } else {
            self.consume(bytes, &mut out);
        }
        out
    }

    /// The end of the stream: reports what only the end makes certain (a banner still being
    /// drawn, a last line without a newline). The detector can be fed again afterwards.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.deferred);
        if let Mode::Sniff(buf) = &mut self.mode {
            if buf.is_empty() {
                return out;
            }
            let held = std::mem::take(buf);
            let format = sniff(&held, true).unwrap_or(Format::Text);
            self.mode = self.mode_for(format);
            self.consume(&held, &mut out);
        }
        let (stamp, armed) = (&self.stamp, self.armed);
        match &mut self.mode {
            Mode::Sniff(_) => {}
            Mode::Tui(s) => {
                for (kind, text) in s.finish(armed) {
                    out.push(stamp.limit(kind, &text, None, Source::Screen));
                }
            }
            Mode::Text(split, text) => split.finish(|l| out.extend(text.line(l, stamp))),
            Mode::Json(split, json) => split.finish(|l| out.extend(json.line(l, stamp))),
        }
        if !armed {
            out.clear();
        }
        out
    }

    /// Everything up to here is old: banners on the screen now (or half drawn) are never
    /// reported, not even when redrawn later, and a line not yet finished is dropped. Also arms
    /// a detector made with `wait_for_mark`.
    pub fn set_mark(&mut self) {
        // Bytes held while the format was unknown came before the mark: read them first (their
        // events come out of the next feed or finish).
        if let Mode::Sniff(buf) = &mut self.mode {
            if !buf.is_empty() {
                let held = std::mem::take(buf);
                self.mode = self.mode_for(sniff(&held, true).unwrap_or(Format::Text));
                let mut out = std::mem::take(&mut self.deferred);
                self.consume(&held, &mut out);
                self.deferred = out;
            }
        }
        self.armed = true;
        match &mut self.mode {
            Mode::Sniff(_) => {}
            Mode::Tui(s) => s.set_mark(),
            Mode::Text(split, _) | Mode::Json(split, _) => *split = lines::LineSplitter::default(),
        }
    }

    /// Makes a limit message known, so the screen never reports a banner with this text: for a
    /// resumed session, the limit records already in its rollout (their banners may come into
    /// view later, when the user scrolls back). Only the tui format keeps known texts.
    pub fn add_known_text(&mut self, text: &str) {
        if let Mode::Tui(s) = &mut self.mode {
            s.add_known(text);
        } else if let Mode::Sniff(_) = self.mode {
            self.known_early.push(text.to_string());
        }
    }

    /// The terminal was resized (SIGWINCH): the screen model follows.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.rows = rows.max(1);
        self.cols = cols.max(2);
        if let Mode::Tui(s) = &mut self.mode {
            s.resize(self.rows, self.cols);
        }
    }

    fn mode_for(&self, format: Format) -> Mode {
        match format {
            Format::Tui => {
                let mut s = screen::ScreenReader::new(self.model, self.rows, self.cols);
                for t in &self.known_early {
                    s.add_known(t);
                }
                Mode::Tui(Box::new(s))
            }
            Format::Text => Mode::Text(lines::LineSplitter::default(), lines::TextLines::default()),
            Format::Json => Mode::Json(lines::LineSplitter::default(), lines::JsonLines::default()),
        }
    }

    fn consume(&mut self, bytes: &[u8], out: &mut Vec<Event>) {
        let (stamp, armed) = (&self.stamp, self.armed);
        let start = out.len();
        match &mut self.mode {
            Mode::Sniff(_) => unreachable!("format decided before consuming"),
            Mode::Tui(s) => {
                for (kind, text) in s.feed(bytes, armed) {
                    out.push(stamp.limit(kind, &text, None, Source::Screen));
                }
            }
            Mode::Text(split, text) => split.push(bytes, |l| out.extend(text.line(l, stamp))),
            Mode::Json(split, json) => split.push(bytes, |l| out.extend(json.line(l, stamp))),
        }
        if !armed {
            out.truncate(start);
        }
    }
}

/// Decides the format from the first bytes, or `None` to wait for more (never at the end).
/// codex may print warnings before the TUI starts, so text is only decided after 20 lines or
/// [`SNIFF_MAX`] bytes without a terminal control sequence.
fn sniff(buf: &[u8], at_end: bool) -> Option<Format> {
    let first = buf.iter().position(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|i| buf[i] == b'{') {
        return Some(Format::Json);
    }
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == 0x1b) {
        let esc = i + off;
        match buf.get(esc + 1) {
            None => break,
            Some(b'[') => {
                // A CSI ends with a byte in @..~; only colours (`m`) appear in plain text.
                match buf[esc + 2..].iter().position(|b| (0x40..=0x7e).contains(b)) {
                    None => break,
                    Some(f) if buf[esc + 2 + f] != b'm' => return Some(Format::Tui),
                    _ => {}
                }
            }
            Some(_) => return Some(Format::Tui),
        }
        i = esc + 1;
    }
    let lines = buf.iter().filter(|&&b| b == b'\n').count();
    (at_end || lines >= 20 || buf.len() >= SNIFF_MAX).then_some(Format::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_while_the_format_is_unknown_reads_what_came_before() {
        let line = "ERROR: Quota exceeded. Check your plan and billing details.\n".as_bytes();
        let mut d = Detector::new(DetectOptions::default());
        assert!(d.feed(line).is_empty(), "one line does not decide the format");
        d.set_mark();
        assert_eq!(d.format(), Some(Format::Text));
        assert_eq!(d.feed(b"").len(), 1, "the line before the mark still counts");
        // Waiting for the mark: the same line before it is not reported.
        let mut d = Detector::new(DetectOptions { wait_for_mark: true, ..Default::default() });
        d.feed(line);
        d.set_mark();
        assert!(d.feed(b"").is_empty() && d.finish().is_empty());
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(b"  {\"type\"", false), Some(Format::Json));
        assert_eq!(sniff(b"\x1b[?2004h", false), Some(Format::Tui));
        assert_eq!(sniff(b"WARNING: proceeding\r\n\x1b[?2004h", false), Some(Format::Tui));
        assert_eq!(sniff(b"\x1b[31mERROR: x\n", false), None);
        assert_eq!(sniff(b"\x1b[31mERROR: x\n", true), Some(Format::Text));
        assert_eq!(sniff("x\n".repeat(20).as_bytes(), false), Some(Format::Text));
        assert_eq!(sniff(b"\x1b[31", false), None);
        assert_eq!(sniff(b"OpenAI Codex", false), None);
        assert_eq!(sniff(b"OpenAI Codex", true), Some(Format::Text));
        assert_eq!(sniff(b"\x1b7", false), Some(Format::Tui));
    }
}
