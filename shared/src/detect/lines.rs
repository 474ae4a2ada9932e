//! The line formats: `codex exec` text (`ERROR: <text>` on stderr) and `codex exec --json` lines.

use super::Stamp;
use crate::detect::texts;
use crate::events::{Event, Source};

/// Longest line kept; the rest of a longer line is dropped (codex's messages sit at the start).
const MAX_LINE: usize = 64 * 1024;

/// Splits a byte stream into lines, holding at most [`MAX_LINE`] bytes of an unfinished one.
#[derive(Default)]
pub(super) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Calls `line` for every complete line in `bytes` (without `\n` and a trailing `\r`).
    pub fn push(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8])) {
        while let Some(i) = memchr(b'\n', bytes) {
            if self.buf.is_empty() {
                line(trim_cr(&bytes[..i]));
            } else {
                self.keep(&bytes[..i]);
                line(trim_cr(&self.buf));
                self.buf.clear();
            }
            bytes = &bytes[i + 1..];
        }
        self.keep(bytes);
    }

    /// Calls `line` for a last line that had no newline.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if !self.buf.is_empty() {
            line(trim_cr(&self.buf));
            self.buf.clear();
        }
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }
}

fn memchr(b: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&x| x == b)
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Removes terminal escape sequences (colours on a terminal's stderr) from one line.
pub(super) fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            if !c.is_control() || c == '\t' {
                out.push(c);
            }
            continue;
        }
        match chars.next() {
            // CSI: parameters, then one final byte in @..~
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `codex exec` text: a line `ERROR: <limit message>` (an optional `[timestamp] ` before it).
/// Anything else (the agent's answer on stdout, tool output, the prompt echo) is ignored.
/// codex 0.169 prints the line twice for one limit: a repeat right after it (blank lines
/// aside) is the same limit.
#[derive(Default)]
pub(super) struct TextLines {
    /// The message of the last line when it was a reported limit.
    last: Option<String>,
}

impl TextLines {
    pub fn line(&mut self, line: &[u8], stamp: &Stamp) -> Option<Event> {
        // After a carriage return a terminal shows only what follows (progress lines).
        let raw = String::from_utf8_lossy(line);
        let line = strip_escapes(raw.rsplit('\r').find(|part| !part.trim().is_empty()).unwrap_or(""));
        let mut t = line.trim();
        if t.is_empty() {
            return None;
        }
        if t.starts_with('[') {
            if let Some(end) = t.find("] ") {
                t = &t[end + 2..];
            }
        }
        let limit = t.strip_prefix("ERROR:").map(str::trim).and_then(|m| texts::classify_error(m).map(|k| (k, m)));
        let last = self.last.take();
        let (kind, msg) = limit?;
        self.last = Some(msg.to_string());
        (last.as_deref() != Some(msg)).then(|| stamp.limit(kind, msg, None, Source::Text))
    }
}

/// `codex exec --json`: reports `{"type":"error","message":…}`, and `turn.failed` only when its
/// message was not already reported by an `error` line of the same turn (codex sends both for
/// one limit). Older exec versions wrap events as `{"msg":{"type":"error","message":…}}`.
#[derive(Default)]
pub(super) struct JsonLines {
    reported_in_turn: Vec<String>,
}

impl JsonLines {
    pub fn line(&mut self, line: &[u8], stamp: &Stamp) -> Option<Event> {
        let t = line.trim_ascii();
        // Cheap filter: every line we act on names an error or a turn boundary.
        if !t.starts_with(b"{") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(t).ok()?;
        let obj = if v.get("type").is_some() { &v } else { v.get("msg")? };
        let (message, detail) = match obj.get("type")?.as_str()? {
            "turn.started" | "thread.started" | "task_started" => {
                self.reported_in_turn.clear();
                return None;
            }
            "error" => (obj.get("message")?.as_str()?, obj),
            "turn.failed" => {
                let err = obj.get("error")?;
                let m = err.get("message")?.as_str()?;
                if self.reported_in_turn.iter().any(|r| r == m) {
                    return None;
                }
                (m, err)
            }
            _ => return None,
        };
        let kind = texts::classify_error(message)?;
        if self.reported_in_turn.len() < 16 {
            self.reported_in_turn.push(message.to_string());
        }
        let resets_at = detail.get("resets_at").and_then(super::json_time);
        Some(stamp.limit(kind, message, resets_at, Source::ExecJson))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_pushes() {
        let mut s = LineSplitter::default();
        let mut got = Vec::new();
        s.push(b"ab", |l| got.push(l.to_vec()));
        s.push(b"c\r\nd\n\ne", |l| got.push(l.to_vec()));
        s.finish(|l| got.push(l.to_vec()));
        assert_eq!(got, vec![b"abc".to_vec(), b"d".to_vec(), b"".to_vec(), b"e".to_vec()]);
    }

    #[test]
    fn text_lines_after_a_carriage_return_and_repeats() {
        let stamp = Stamp { account: None, clock: super::super::Clock::System, zone: super::super::Zone::Local };
        let mut t = TextLines::default();
        let quota = b"ERROR: Quota exceeded. Check your plan and billing details.";
        assert!(t.line(&[&b"Working...\r"[..], quota].concat(), &stamp).is_some());
        assert!(t.line(b"", &stamp).is_none());
        assert!(t.line(quota, &stamp).is_none(), "printed twice for one limit");
        assert!(t.line(b"thinking", &stamp).is_none());
        assert!(t.line(quota, &stamp).is_some(), "another run");
        assert!(t.line(b"  the log said ERROR: Quota exceeded. Check your plan and billing details.", &stamp).is_none());
    }

    #[test]
    fn strips_colours_and_titles() {
        assert_eq!(strip_escapes("\x1b[31mERROR:\x1b[0m hi\x1b]0;title\x07!"), "ERROR: hi!");
        assert_eq!(strip_escapes("a\x1b]8;;http://x\x1b\\b"), "ab");
    }
}
