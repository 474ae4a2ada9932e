//! Keys typed while hs-run switches accounts: kept, and typed into the next codex once it has
//! drawn its composer; never into the codex that is quitting, and never dropped.
//!
//! What the terminal sends is read token by token: escape sequences (the terminal's answers to
//! codex's queries, focus reports, arrow and function keys) and plain keys. Only plain keys are
//! kept across a switch: text, Enter, Tab, Backspace. Escape sequences are not: the answers
//! belong to the codex that asked, and an arrow key means nothing in a composer that is not
//! drawn yet. Ctrl-C and other control keys typed during a switch are dropped too (a Ctrl-C
//! meant for the old codex must not stop the new one).

use crate::term::Term;
use std::time::{Duration, Instant};

/// One piece of terminal input: an escape sequence or a run of plain bytes.
fn tokens(bytes: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != 0x1b {
            let end = bytes[i..].iter().position(|&b| b == 0x1b).map_or(bytes.len(), |p| i + p);
            out.push((false, &bytes[i..end]));
            i = end;
            continue;
        }
        let end = match bytes.get(i + 1) {
            // CSI: parameters, then a final byte 0x40..=0x7e
            Some(b'[') => bytes[i + 2..].iter().position(|b| (0x40..=0x7e).contains(b)).map_or(bytes.len(), |p| i + 3 + p),
            // OSC: up to BEL or ESC \
            Some(b']') => {
                let rest = &bytes[i + 2..];
                let bel = rest.iter().position(|&b| b == 0x07).map(|p| p + 1);
                let st = rest.windows(2).position(|w| w == b"\x1b\\").map(|p| p + 2);
                i + 2 + [bel, st].into_iter().flatten().min().unwrap_or(rest.len())
            }
            // SS3 (F1-F4, keypad arrows): ESC O x
            Some(b'O') => (i + 3).min(bytes.len()),
            Some(_) => i + 2,
            None => i + 1,
        };
        out.push((true, &bytes[i..end]));
        i = end;
    }
    out
}

/// A terminal's report, not a key: cursor position (`CSI … R`), device attributes
/// (`CSI ? … c`), keyboard flags (`CSI ? … u`), focus (`CSI I`, `CSI O`), colours (OSC).
fn is_report(seq: &[u8]) -> bool {
    match seq.get(1) {
        Some(b']') => true,
        Some(b'[') => {
            let body = &seq[2..];
            let last = body.last().copied();
            matches!(last, Some(b'R')) && body.len() > 1
                || body.first() == Some(&b'?') && matches!(last, Some(b'c') | Some(b'u'))
                || body == b"I"
                || body == b"O"
        }
        _ => false,
    }
}

/// The user typed something (anything that is not a terminal's report).
pub fn has_keys(bytes: &[u8]) -> bool {
    tokens(bytes).into_iter().any(|(esc, t)| !esc || !is_report(t))
}

/// The plain keys in `bytes` worth keeping across a switch (text, Enter, Tab, Backspace).
pub fn plain_keys(bytes: &[u8]) -> Vec<u8> {
    tokens(bytes)
        .into_iter()
        .filter(|(esc, _)| !esc)
        .flat_map(|(_, t)| t.iter().copied())
        .filter(|&b| b >= 0x20 || matches!(b, b'\r' | b'\t' | 0x08))
        .collect()
}

/// `bytes` split into what goes to codex at once (escape sequences: answers to its queries
/// among them) and the plain keys to hold.
pub fn split(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut now = Vec::new();
    for (esc, t) in tokens(bytes) {
        if esc {
            now.extend_from_slice(t);
        }
    }
    (now, plain_keys(bytes))
}

/// How long keys are held for a codex that never shows its composer (then they are typed).
pub const HOLD_AT_MOST: Duration = Duration::from_secs(10);
/// The pause between held text and its Enter (keys in one burst read as a paste to codex, and
/// an Enter in a paste is a new line).
pub const ENTER_AFTER: Duration = Duration::from_millis(500);

/// Keys held for a resumed codex until it has drawn its composer: the `›` prompt on the row
/// of the cursor, read from a screen model of its output.
pub struct Held {
    pub keys: Vec<u8>,
    screen: Term,
    since: Instant,
}

impl Held {
    pub fn new(keys: Vec<u8>, rows: u16, cols: u16) -> Held {
        Held { keys, screen: Term::new(rows, cols), since: Instant::now() }
    }

    /// Reads codex's output.
    pub fn saw(&mut self, bytes: &[u8]) {
        self.screen.process(bytes);
    }

    /// codex's composer is drawn: the cursor's row starts with `›`, and it is not the selected
    /// row of a popup's numbered list (`› 1. Switch to …`).
    pub fn composer_ready(&self) -> bool {
        let (row, _) = self.screen.cursor_position();
        let text = self.screen.row_text(row);
        let Some(rest) = text.trim_start().strip_prefix('›') else { return false };
        let rest = rest.trim_start();
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        !(digits > 0 && rest[digits..].starts_with(". "))
    }

    pub fn timed_out(&self) -> bool {
        self.since.elapsed() >= HOLD_AT_MOST
    }

    /// The keys to type now, and whether an Enter follows after [`ENTER_AFTER`] (a trailing
    /// Enter is sent apart, so the text is not taken for a paste with a new line in it).
    pub fn release(self) -> (Vec<u8>, bool) {
        let mut keys = self.keys;
        let mut enter = keys.last() == Some(&b'\r');
        while keys.last() == Some(&b'\r') {
            keys.pop();
        }
        // a lone Enter (nothing typed before it) would submit nothing, or pick a popup's first choice
        enter &= !keys.is_empty();
        (keys, enter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_not_keys() {
        let answers = b"\x1b[?62;22c\x1b[12;1R\x1b[?0u\x1b]10;rgb:ffff/ffff/ffff\x1b\\\x1b]11;rgb:0/0/0\x07\x1b[I";
        assert!(!has_keys(answers));
        assert!(plain_keys(answers).is_empty());
        assert!(has_keys(b"\x1b[A"), "an arrow key is a key");
        assert!(has_keys(b"h"));
        let mixed = b"\x1b[12;1Rfix it\x1b[D\x03\r";
        assert_eq!(plain_keys(mixed), b"fix it\r");
        let (now, held) = split(mixed);
        assert_eq!((now.as_slice(), held.as_slice()), (&b"\x1b[12;1R\x1b[D"[..], &b"fix it\r"[..]));
        assert_eq!(plain_keys("é›\t\x7f".as_bytes()), "é›\t\x7f".as_bytes());
    }

    #[test]
    fn composer_is_seen_on_the_cursor_row() {
        let mut h = Held::new(b"next question\r".to_vec(), 10, 40);
        h.saw(b"\x1b[2J\x1b[1;1H> old answer\x1b[3;1H\xe2\x80\xba old prompt\x1b[6;1H");
        assert!(!h.composer_ready(), "a prompt in the history is not the composer");
        h.saw("\x1b[6;1H› 1. Switch to gpt-6-luna\x1b[6;3H".as_bytes());
        assert!(!h.composer_ready(), "a popup's selected row is not the composer");
        h.saw("\x1b[8;1H› Ask Codex to do anything\x1b[8;3H".as_bytes());
        assert!(h.composer_ready());
        assert_eq!(h.release(), (b"next question".to_vec(), true));
    }
}
