//! What can go wrong on the account a session lands on, besides a limit: its login is dead, or
//! the backend refuses to go on with the thread there.
//!
//! What codex 0.169.0 shows (seen against the mock, see tests/README.md):
//! - dead login (401 on its requests and the refresh refused): the turn ends with
//!   `task_complete` whose error is `{"message": "Your access token could not be refreshed because
//!   your refresh token was revoked. Please log out and sign in again.", "codex_error_info":
//!   "unauthorized"}`; `exec` prints it as `ERROR: …` (twice) and exits 1, the TUI shows it and
//!   stays open. Other wordings: "…was already used…", "…has expired…", "…you have since logged
//!   out or signed in to another account. Please sign in again."
//! - refused thread (400 `invalid_encrypted_content`): `task_complete` whose error message is the
//!   backend's JSON body (`codex_error_info: "other"`), `exec` prints `ERROR: {"error":{…}}`
//!   and exits 1; one request, no retry.
//!   A resumed TUI does not get that far: it fails at its start with `Error: account/read failed:
//!   account/read failed: Your access token could not be refreshed because your refresh token was
//!   revoked. Please log out and sign in again. (code -32603)` and exits 1.
//! - `--enable cli_resume_account_check`: no turn at all; `Error: thread/resume: thread/resume
//!   failed: This thread was created with a different ChatGPT account or workspace. Sign in with
//!   the original account to resume it. (code -32600)` (the TUI: `Error: Failed to resume session
//!   from <file>: thread/resume failed during TUI bootstrap: …`) and exit 1 within a second.

/// What went wrong.
use crate::term::Term;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TroubleKind {
    /// The account's tokens were revoked or spent: it needs a new login.
    DeadLogin,
    /// The backend (or codex) refused to continue this thread on this account.
    ResumeRefused,
}

/// One such error, with codex's words.
#[derive(Debug, Clone, PartialEq)]
pub struct Trouble {
    pub kind: TroubleKind,
    pub text: String,
}

/// Words of a refused thread (checked first: its text also says "Sign in").
const REFUSED: &[&str] = &[
    "invalid_encrypted_content",
    "could not be verified",
    "organization_id did not match",
    "created with a different ChatGPT account or workspace",
];

/// Words of a dead login.
const DEAD_LOGIN: &[&str] = &[
    "refresh_token_reused",
    "refresh_token_invalidated",
    "refresh_token_expired",
    "token_invalidated",
    "token_revoked",
    "Please log out and sign in again",
    "could not be refreshed",
    "Please sign in again",
];

/// The kind of an error codex reported (a turn's error message and its `codex_error_info`), or
/// `None` for any other error.
pub fn classify(message: &str, info: Option<&str>) -> Option<TroubleKind> {
    if REFUSED.iter().any(|w| message.contains(w)) {
        Some(TroubleKind::ResumeRefused)
    } else if info == Some("unauthorized") || DEAD_LOGIN.iter().any(|w| message.contains(w)) {
        Some(TroubleKind::DeadLogin)
    } else {
        None
    }
}

/// The error lines codex prints on stderr (`ERROR: …` from exec, `Error: …` when it cannot
/// start), read by read: the source when nothing reaches the rollout (a resume refused before
/// any turn).
#[derive(Default)]
pub struct ErrorLines {
    line: Vec<u8>,
    /// `line` says `ERROR: ` or `Error: `.
    flagged: bool,
}

/// What a line of trouble says.
static FINDERS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 2]> =
    std::sync::LazyLock::new(|| [memchr::memmem::Finder::new("ERROR: "), memchr::memmem::Finder::new("Error: ")]);

/// A line longer than this is read by its start only.
const LINE_MAX: usize = 64 * 1024;

impl ErrorLines {
    /// The first trouble in the complete lines of `bytes` (the unfinished one waits for its end).
    pub fn scan(&mut self, bytes: &[u8]) -> Option<Trouble> {
        if !self.flagged && !self.may_hold_an_error(bytes) {
            // No line here says `ERROR: ` or `Error: `: only the unfinished one is kept. (The
            // relay calls this for every read: one SIMD search instead of a look at each byte.)
            match memchr::memrchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.line.clear();
                    self.keep(&bytes[end + 1..]);
                }
                None => self.keep(bytes),
            }
            return None;
        }
        let found = self.scan_lines(bytes);
        self.flagged = FINDERS.iter().any(|f| f.find(&self.line).is_some());
        found
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = LINE_MAX.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// `ERROR: ` or `Error: ` in `bytes`, or across the end of the unfinished line and them.
    fn may_hold_an_error(&self, bytes: &[u8]) -> bool {
        let tail = &self.line[self.line.len().saturating_sub(6)..];
        let head = &bytes[..bytes.len().min(6)];
        let mut edge = [0u8; 12];
        edge[..tail.len()].copy_from_slice(tail);
        edge[tail.len()..tail.len() + head.len()].copy_from_slice(head);
        let edge = &edge[..tail.len() + head.len()];
        FINDERS.iter().any(|f| f.find(bytes).is_some() || f.find(edge).is_some())
    }

    fn scan_lines(&mut self, bytes: &[u8]) -> Option<Trouble> {
        let mut found = None;
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                let line = std::mem::take(&mut self.line);
                found = found.or_else(|| trouble_in_line(&String::from_utf8_lossy(&line)));
            } else if self.line.len() < LINE_MAX {
                self.line.push(b);
            }
        }
        found
    }
}

/// A line codex starts with `ERROR: ` or `Error: ` (escape sequences before it aside).
fn trouble_in_line(line: &str) -> Option<Trouble> {
    let start = line.find("ERROR: ").or_else(|| line.find("Error: "))?;
    // only escape sequences and blanks may come before it
    let before = &line[..start];
    if before.chars().any(|c| c.is_alphanumeric()) && !before.contains('\x1b') {
        return None;
    }
    let text = line[start + 7..].trim().to_string();
    classify(&text, None).map(|kind| Trouble { kind, text })
}

/// What a wrapped TUI on a login codex refuses may show instead of failing (codex 0.169.0 under
/// load, now and then): its first-run sign-in screen, "Sign in with ChatGPT to use Codex as part
/// of your paid plan", waiting for the user. A session hs-run wraps always has a login in its
/// vault, so that screen means the login is dead.
pub const SIGN_IN_TEXT: &str = "codex shows its sign-in screen: the login was refused";

/// Reads the start of a TUI's output on a screen model for codex's sign-in screen. Words on the
/// screen, not bytes: a TUI redraws only what changed, so the sentence may come in pieces.
pub struct SignInScreen {
    parser: Option<Term>,
    read: usize,
    /// "ChatGPT" came by: the screen is worth reading from now on (reading it costs; codex
    /// writes each word whole).
    hint: bool,
}

/// The sign-in screen shows before anything else; later output is not looked at.
const SIGN_IN_WATCH: usize = 512 * 1024;

impl SignInScreen {
    pub fn new(rows: u16, cols: u16) -> SignInScreen {
        SignInScreen { parser: Some(Term::new(rows, cols)), read: 0, hint: false }
    }

    /// No more watching (a turn started: codex accepted the login).
    pub fn stop(&mut self) {
        self.parser = None;
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Option<Trouble> {
        let parser = self.parser.as_mut()?;
        parser.process(bytes);
        self.read += bytes.len();
        self.hint |= bytes.windows(7).any(|w| w == b"ChatGPT");
        let shown: String = if self.hint { parser.contents().split_whitespace().collect() } else { String::new() };
        if shown.contains("SigninwithChatGPTtouseCodexaspartofyourpaid") {
            self.parser = None;
            return Some(Trouble { kind: TroubleKind::DeadLogin, text: SIGN_IN_TEXT.into() });
        }
        if self.read > SIGN_IN_WATCH {
            self.parser = None;
        }
        None
    }
}

/// codex's words for a notice: one line, at most 160 bytes.
pub fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

/// A command line for the troubleshooting log: a long argument (a carried-over conversation)
/// only by its size.
pub fn loggable(argv: &[String]) -> String {
    argv.iter().map(|a| if a.len() > 200 { format!("<{} bytes>", a.len()) } else { a.clone() }).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_errors_are_classified() {
        let dead = [
            "Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.",
            "Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again.",
            "Your access token could not be refreshed because you have since logged out or signed in to another account. Please sign in again.",
            r#"unexpected status 401 Unauthorized: {"error":{"code":"token_invalidated"}}"#,
        ];
        for m in dead {
            assert_eq!(classify(m, Some("other")), Some(TroubleKind::DeadLogin), "{m}");
        }
        assert_eq!(classify("anything", Some("unauthorized")), Some(TroubleKind::DeadLogin));
        let refused = [
            r#"{"error":{"code":"invalid_encrypted_content","message":"The encrypted content gAAA…5Q== could not be verified. Reason: Encrypted content could not be decrypted or parsed."}}"#,
            "Encrypted content organization_id did not match the target organization",
            "thread/resume failed: This thread was created with a different ChatGPT account or workspace. Sign in with the original account to resume it. (code -32600)",
        ];
        for m in refused {
            assert_eq!(classify(m, Some("other")), Some(TroubleKind::ResumeRefused), "{m}");
        }
        assert_eq!(classify("You’ve hit your usage limit.", Some("usage_limit_exceeded")), None);
        assert_eq!(classify("stream disconnected before completion", None), None);
    }

    #[test]
    fn the_sign_in_screen_is_read_as_drawn() {
        // the words with cursor moves between them (cells left as they were), over two reads
        let frame = "\x1b[?2026h\x1b[2J\x1b[1;3HWelcome to Codex\x1b[3;3HSign\x1b[3;8Hin with ChatGPT to use \x1b[1mCodex\x1b[0m as part of your paid plan\x1b[?2026l";
        let (a, b) = frame.split_at(40);
        let mut s = SignInScreen::new(30, 100);
        assert_eq!(s.feed(a.as_bytes()), None);
        assert_eq!(s.feed(b.as_bytes()).map(|t| t.kind), Some(TroubleKind::DeadLogin));
        // wrapped on a narrow terminal too
        let mut narrow = SignInScreen::new(10, 24);
        assert!(narrow.feed(b"Sign in with ChatGPT to use Codex as part of your paid ChatGPT plan").is_some());
        // after a turn began, or far into the output, nothing is read
        let mut later = SignInScreen::new(30, 100);
        later.stop();
        assert_eq!(later.feed(frame.as_bytes()), None);
        let mut long = SignInScreen::new(30, 100);
        assert_eq!(long.feed(&vec![b'x'; SIGN_IN_WATCH + 1]), None);
        assert_eq!(long.feed(frame.as_bytes()), None);
        // the composer is no sign-in screen
        assert_eq!(SignInScreen::new(30, 100).feed("› Ask Codex to do anything".as_bytes()), None);
    }

    #[test]
    fn the_real_sign_in_screen_counts_and_a_real_answer_does_not() {
        let signed_out: &[u8] = include_bytes!("../../../tests/fixtures/recover/tui-sign-in-30x100.bin");
        let answer: &[u8] = include_bytes!("../../../tests/fixtures/detect/real/tui-answer-quotes-limit-30x100.bin");
        let found = |bytes: &[u8]| {
            let mut s = SignInScreen::new(30, 100);
            bytes.chunks(64).find_map(|c| s.feed(c)).map(|t| t.kind)
        };
        assert_eq!(found(signed_out), Some(TroubleKind::DeadLogin));
        assert_eq!(found(answer), None);
    }

    #[test]
    fn error_lines_on_stderr_however_cut() {
        let err = "session id: x\nError: thread/resume: thread/resume failed: This thread was created with a different ChatGPT account or workspace. Sign in with the original account to resume it. (code -32600)\n\nStack backtrace:\n";
        let b = err.as_bytes();
        for cut in 0..=b.len() {
            let mut s = ErrorLines::default();
            let got = s.scan(&b[..cut]).or_else(|| s.scan(&b[cut..]));
            assert_eq!(got.map(|t| t.kind), Some(TroubleKind::ResumeRefused), "cut at {cut}");
        }
        // in three reads, cut anywhere, after other lines (the reads without the words are
        // passed over whole; the line they finish is still read)
        let b = "an answer\r\n\x1b[31mERROR: Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.\x1b[0m\r\nmore\n".as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                let mut s = ErrorLines::default();
                let got = s.scan(&b[..i]).or_else(|| s.scan(&b[i..j])).or_else(|| s.scan(&b[j..]));
                assert_eq!(got.map(|t| t.kind), Some(TroubleKind::DeadLogin), "cut at {i} and {j}");
            }
        }
        let mut s = ErrorLines::default();
        let t = s.scan(b"ERROR: Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.\n");
        assert_eq!(t.as_ref().map(|t| t.kind), Some(TroubleKind::DeadLogin));
        assert!(t.unwrap().text.starts_with("Your access token"));
        // the words in an answer, or unfinished, are not codex's error
        assert_eq!(s.scan(b"the model said: ERROR: Please log out and sign in again\n"), None);
        assert_eq!(s.scan(b"ERROR: Please log out and sign in again"), None);
    }
}
