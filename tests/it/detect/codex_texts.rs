//! Every limit message the installed codex binary can print, read out of the binary itself and
//! drawn the way codex draws it: hs-detect must recognise each one (kind and reset time), on the
//! screen at several widths, as an `ERROR:` line and as a JSON `error` event, and must not
//! report the same words anywhere else on the screen.
//!
//! How the messages are found: codex is a Rust binary, and its message texts sit in it either
//! as string literals laid end to end, or as format templates (a length byte before each
//! literal piece, `0xC0` where an argument goes, `0x00` at the end). The search starts at
//! anchors that every limit message holds ("hit your usage limit", "out of credits", …), goes
//! back to the capital letter that starts the message (one not after a space), and forward to
//! the end of the sentence that runs into the next literal, or to the end of the template.
//! Arguments are filled in with realistic values (model names, a promotion, reset times).

use crate::support::mock::real_codex;
use chrono::{DateTime, FixedOffset, Utc};
use shared::detect::{Clock, DetectOptions, Detector, Format, Zone};
use shared::events::{Event, LimitKind};
use std::path::{Path, PathBuf};

/// What every limit message holds, and the kind hs-detect must give it. The first anchor found
/// in a message decides (longer anchors first).
const ANCHORS: &[(&str, LimitKind)] = &[
    ("hit your usage limit for ", LimitKind::ModelLimit),
    ("hit your usage limit", LimitKind::UsageLimit),
    // The TUI's words for a workspace owner at the workspace's limit (core: "spend cap").
    ("reached your usage limit", LimitKind::SpendCap),
    ("hit your spend cap", LimitKind::SpendCap),
    ("out of credits", LimitKind::WorkspaceCredits),
    ("Quota exceeded. Check", LimitKind::Quota),
    ("To use Codex with your ChatGPT plan", LimitKind::PlanNotIncluded),
    ("exceeded retry limit, last status: ", LimitKind::RateLimited),
];

/// Texts with an anchor that codex never puts on its error row: the body of the workspace
/// popup that offers to notify the owner (it comes with the error row, which says the limit).
const NOT_ERROR_ROWS: &[&str] = &["Your workspace is out of credits. Ask your workspace owner to add more. Notify owner?"];

/// One message as the binary holds it: literal pieces and argument slots.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Piece {
    Text(String),
    Arg,
}

/// The native codex binary behind the launcher `CODEX_HOTSWAP_TEST_CODEX` names: the npm
/// launcher's platform package (`node_modules/@openai/codex-<platform>/vendor/<triple>/bin/codex`,
/// beside the launcher's package or inside it), or the launcher itself when it is native.
fn native_codex(launcher: &Path) -> PathBuf {
    let real = std::fs::canonicalize(launcher).unwrap_or_else(|e| panic!("{}: {e}", launcher.display()));
    if is_native(&real) {
        return real;
    }
    // .../node_modules/@openai/codex/bin/codex.js → the package folder, then every
    // node_modules above it.
    let package = real.parent().and_then(Path::parent).expect("the launcher sits in <package>/bin");
    let mut places = vec![package.join("vendor"), package.join("node_modules/@openai")];
    for dir in package.ancestors().filter(|d| d.file_name().is_some_and(|n| n == "node_modules")) {
        places.push(dir.join("@openai"));
    }
    let mut found = Vec::new();
    for place in places {
        let Ok(entries) = std::fs::read_dir(&place) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let vendor = if place.ends_with("vendor") {
                place.clone()
            } else if name.starts_with("codex-") {
                e.path().join("vendor")
            } else {
                continue;
            };
            for triple in std::fs::read_dir(&vendor).into_iter().flatten().flatten() {
                let bin = triple.path().join("bin/codex");
                if is_native(&bin) && !found.contains(&bin) {
                    found.push(bin);
                }
            }
        }
    }
    assert_eq!(found.len(), 1, "native codex binaries found for {}: {found:?}", launcher.display());
    found.pop().unwrap()
}

/// An executable in a native format (ELF, Mach-O), not a script.
fn is_native(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && (head == *b"\x7fELF" || [[0xcf, 0xfa, 0xed, 0xfe], [0xca, 0xfe, 0xba, 0xbe]].contains(&head))
}

/// Bytes that can be part of a text: printable ASCII and UTF-8 (0xC0, never valid UTF-8, is
/// the argument slot of a template).
fn texty(b: u8) -> bool {
    (0x20..0x7f).contains(&b) || (0x80..=0xf4).contains(&b) && b != 0xc0 && b != 0xc1
}

/// Every limit message in `bin`, deduplicated, with the kind its anchor gives.
fn messages_in(bin: &[u8]) -> Vec<(Vec<Piece>, LimitKind)> {
    let mut out: Vec<(Vec<Piece>, LimitKind)> = Vec::new();
    let any = ANCHORS.iter().map(|(a, _)| regex::escape(a)).collect::<Vec<_>>().join("|");
    let finder = regex::bytes::Regex::new(&any).unwrap();
    {
        for m in finder.find_iter(bin) {
            let Some(pieces) = message_at(bin, m.start()) else { continue };
            let text: String = pieces.iter().map(|p| if let Piece::Text(t) = p { t.as_str() } else { "" }).collect();
            if NOT_ERROR_ROWS.contains(&text.as_str()) {
                continue;
            }
            let kind = ANCHORS.iter().find(|(a, _)| text.contains(a)).map(|&(_, k)| k).unwrap();
            if !out.iter().any(|(p, _)| *p == pieces) {
                out.push((pieces, kind));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The message around an anchor at `at`.
fn message_at(bin: &[u8], at: usize) -> Option<Vec<Piece>> {
    // Back to the capital that starts the message: one not after a space or a bracket.
    let mut start = at;
    loop {
        if start == 0 || !texty(bin[start - 1]) {
            break;
        }
        let (prev, here) = (bin[start - 1], bin[start]);
        if here.is_ascii_uppercase() && !b" (-/'".contains(&prev) && !(0x80..0xc0).contains(&prev) {
            break;
        }
        start -= 1;
    }
    while !bin[start].is_ascii_alphabetic() {
        start += 1;
    }
    // Forward: the text runs to an argument slot or the end of the bytes that can be text.
    let mut end = at;
    while end < bin.len() && texty(bin[end]) {
        end += 1;
    }
    let run_end = end;
    // A template: the byte before the message is the length of its first piece.
    if start > 0 && bin[start - 1] as usize == run_end - start && bin.get(run_end) == Some(&0xc0) {
        return template_at(bin, start - 1);
    }
    // Literals laid end to end: the sentence that runs straight into the next literal ends it.
    let mut i = at;
    while i < run_end {
        if b".?!".contains(&bin[i]) && bin.get(i + 1).is_some_and(|b| b.is_ascii_uppercase()) {
            end = i + 1;
            break;
        }
        i += 1;
    }
    let text = std::str::from_utf8(&bin[start..end]).ok()?.to_string();
    // A literal that does not end a sentence is followed by the reset time.
    let open = !text.ends_with(['.', '?', '!']);
    let mut pieces = vec![Piece::Text(text)];
    if open {
        pieces.push(Piece::Arg);
    }
    Some(pieces)
}

/// A template from its first length byte: `len piece`, `0xC0` an argument, `0x00` the end.
fn template_at(bin: &[u8], mut at: usize) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    for _ in 0..16 {
        match *bin.get(at)? {
            0x00 => return Some(pieces),
            0xc0 => {
                pieces.push(Piece::Arg);
                at += 1;
            }
            n => {
                let piece = bin.get(at + 1..at + 1 + n as usize)?;
                pieces.push(Piece::Text(std::str::from_utf8(piece).ok()?.to_string()));
                at += 1 + n as usize;
            }
        }
    }
    None
}

/// When the tests run (`TZ=UTC`, the zone the reset times are read in).
const NOW: &str = "2026-11-24T18:00:00Z";

/// Reset times as codex words them, and the moment each names (seen at [`NOW`] in UTC).
const RESETS: &[(&str, Option<&str>)] = &[
    ("7:48 PM", Some("2026-11-24T19:48:00Z")),
    ("11:05 AM", Some("2026-11-25T11:05:00Z")),
    ("Dec 1st, 2026 9:05 AM", Some("2026-12-01T09:05:00Z")),
    ("", None),
];

/// Every text codex can show for a message, each with the reset time it names.
fn renderings(pieces: &[Piece]) -> Vec<(String, Option<DateTime<Utc>>)> {
    let mut out = Vec::new();
    let last_arg = pieces.iter().rposition(|p| *p == Piece::Arg);
    let suffixed = last_arg == Some(pieces.len() - 1);
    let resets: &[(&str, Option<&str>)] = if suffixed { RESETS } else { &RESETS[3..] };
    for model in ["GPT-6 Sol", "gpt-6-luna-mini"] {
        for &(time, resets_at) in resets {
            let mut text = String::new();
            for (i, p) in pieces.iter().enumerate() {
                match p {
                    Piece::Text(t) => text.push_str(t),
                    Piece::Arg if Some(i) == last_arg && suffixed && !text.contains("last status: ") => {
                        // codex's retry suffixes: " or try again …" after a clause, " Try again …"
                        // after a sentence.
                        let or = !text.ends_with('.');
                        text.push_str(match (or, time.is_empty()) {
                            (true, false) => " or try again at ",
                            (false, false) => " Try again at ",
                            (true, true) => " or try again later.",
                            (false, true) => " Try again later.",
                        });
                        if !time.is_empty() {
                            text.push_str(time);
                            text.push('.');
                        }
                    }
                    Piece::Arg if text.ends_with(" for ") => text.push_str(model),
                    Piece::Arg if text.ends_with("last status: ") => text.push_str("429 Too Many Requests"),
                    Piece::Arg if text.contains("last status: ") => text.push_str(", request id: req_5f2c9a"),
                    Piece::Arg if matches!(pieces.get(i + 1), Some(Piece::Text(t)) if t.starts_with(',')) => {
                        text.push_str("Upgrade to Pro for more usage (https://chatgpt.com/explore/pro)")
                    }
                    Piece::Arg => panic!("no value for an argument of {pieces:?}: a new kind of template"),
                }
            }
            let at = resets_at.filter(|_| !text.contains("last status: ")).map(|t| t.parse().unwrap());
            if !out.iter().any(|(t, _)| *t == text) {
                out.push((text, at));
            }
        }
    }
    out
}

/// `text` broken into rows of at most `width` columns at spaces (a longer word is cut), as
/// codex wraps its history cells.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut rows = vec![String::new()];
    for word in text.split(' ') {
        let mut word = word.to_string();
        loop {
            let row = rows.last_mut().unwrap();
            let room = width - row.chars().count();
            let need = word.chars().count() + usize::from(!row.is_empty());
            if need <= room {
                if !row.is_empty() {
                    row.push(' ');
                }
                row.push_str(&word);
                break;
            }
            if row.is_empty() {
                let cut: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                rows.last_mut().unwrap().push_str(&cut);
            }
            rows.push(String::new());
        }
    }
    rows
}

/// One codex frame on the alternate screen: an answer above, `body` from row 3, then the
/// composer, the `⚠ 5h limit` status line and the rate-limit popup, as codex 0.169 draws them.
fn frame(body: &[String], rows: u16, cols: usize) -> Vec<u8> {
    let mut f = String::from("\x1b[?1049h\x1b[?2026h\x1b[2J\x1b[1;1H\x1b[1m•\x1b[22m Looking at the tests now.");
    for (i, row) in body.iter().enumerate() {
        f.push_str(&format!("\x1b[{};1H{row}", 3 + i));
    }
    let status = "⚠ 5h limit: only <1% left · resets at 18:50";
    let popup = ["Approaching rate limits", "Switch to gpt-6-luna for lower credit usage?", "› 1. Switch to gpt-6-luna"];
    let below = 3 + body.len() as u16 + 1;
    for (i, line) in popup.iter().chain([&status]).enumerate() {
        let r = (below + i as u16).min(rows);
        f.push_str(&format!("\x1b[{r};1H\x1b[0m  {}", line.chars().take(cols - 2).collect::<String>()));
    }
    f.push_str(&format!("\x1b[{rows};3H\x1b[?2026l"));
    f.into_bytes()
}

fn detector(format: Format, rows: u16, cols: u16) -> Detector {
    Detector::new(DetectOptions {
        format: Some(format),
        rows,
        cols,
        account: None,
        zone: Zone::Fixed(FixedOffset::east_opt(0).unwrap()),
        clock: Clock::Fixed(NOW.parse().unwrap()),
        wait_for_mark: false,
        ..DetectOptions::default()
    })
}

fn limits(format: Format, rows: u16, cols: u16, bytes: &[u8]) -> Vec<(LimitKind, Option<DateTime<Utc>>)> {
    let mut d = detector(format, rows, cols);
    let mut evs = d.feed(bytes);
    evs.extend(d.finish());
    evs.into_iter()
        .map(|e| match e {
            Event::Limit(l) => (l.kind, l.resets_at),
            other => panic!("not a limit: {other:?}"),
        })
        .collect()
}

/// Every way codex shows `text`, and places where the same words must not count. Returns what
/// went wrong, one line each.
fn check(text: &str, kind: LimitKind, resets_at: Option<DateTime<Utc>>) -> Vec<String> {
    let want = vec![(kind, resets_at)];
    let mut wrong = Vec::new();
    let mut expect = |what: &str, got: Vec<(LimitKind, Option<DateTime<Utc>>)>, want: &[(LimitKind, Option<DateTime<Utc>>)]| {
        if got != want {
            wrong.push(format!("{what}: got {got:?}, want {want:?}: {text}"));
        }
    };
    const RED: &str = "\x1b[38;5;1;49m";
    const PLAIN: &str = "\x1b[39m\x1b[49m\x1b[0m";
    // codex's error row on the alternate screen, wrapped by codex at each width.
    for (rows, cols) in [(24u16, 80usize), (40, 120), (20, 44), (30, 32)] {
        let mut body = wrap(&format!("■ {text}"), cols);
        body[0] = format!("{RED}{}", body[0]);
        let last = body.len() - 1;
        body[last].push_str(PLAIN);
        expect(&format!("error row {rows}x{cols}"), limits(Format::Tui, rows, cols as u16, &frame(&body, rows, cols)), &want);
    }
    // Inline (normal screen): one long line that the terminal wraps at 40 columns.
    let inline = format!("\x1b[24;1H\r\n{RED}■ {text}{PLAIN}\r\n\r\n› \x1b[24;3H");
    expect("inline, terminal-wrapped at 40", limits(Format::Tui, 24, 40, inline.as_bytes()), &want);
    // `codex exec`: its stderr line, and its JSON error event.
    expect("exec text", limits(Format::Text, 24, 80, format!("ERROR: {text}\n").as_bytes()), &want);
    let json = serde_json::json!({"type": "error", "message": text}).to_string() + "\n";
    expect("exec --json", limits(Format::Json, 24, 80, json.as_bytes()), &want);
    // The same words elsewhere: quoted in an answer, a prompt, shell output, a diff.
    for (what, lead, more) in
        [("answer", "\x1b[1m•\x1b[22m ", "  "), ("prompt", "› ", "  "), ("shell output", "  └ ", "    "), ("diff", "  12 +", "     ")]
    {
        let mut body = wrap(&format!("■ {text}"), 70);
        for (i, row) in body.iter_mut().enumerate() {
            *row = format!("{}{RED}{row}{PLAIN}", if i == 0 { lead } else { more });
        }
        expect(what, limits(Format::Tui, 24, 80, &frame(&body, 24, 80)), &[]);
    }
    wrong
}

/// The test itself: every limit message of the codex under test (`CODEX_HOTSWAP_TEST_CODEX`).
#[test]
fn recognises_every_limit_message_in_the_installed_codex() {
    let launcher = real_codex();
    let bin_path = native_codex(&launcher);
    let bin = std::fs::read(&bin_path).unwrap_or_else(|e| panic!("{}: {e}", bin_path.display()));
    for suffix in [" Try again at ", " or try again at ", " Try again later.", " or try again later.", "%-I:%M %p"] {
        assert!(
            bin.windows(suffix.len()).any(|w| w == suffix.as_bytes()),
            "{} lacks the reset wording {suffix:?} this test renders",
            bin_path.display()
        );
    }
    let messages = messages_in(&bin);
    let listing: Vec<String> = messages.iter().map(|(p, k)| format!("{k:?}: {p:?}")).collect();
    eprintln!("{} limit messages in {}:\n{}", messages.len(), bin_path.display(), listing.join("\n"));
    // Sanity: the search finds every family codex-facts.md lists, so a broken search fails.
    for kind in ANCHORS.iter().map(|&(_, k)| k) {
        assert!(messages.iter().any(|(_, k)| *k == kind), "no {kind:?} message found:\n{}", listing.join("\n"));
    }
    assert!(messages.len() >= 14, "only {} messages found:\n{}", messages.len(), listing.join("\n"));
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (pieces, kind) in &messages {
        for (text, resets_at) in renderings(pieces) {
            wrong.extend(check(&text, *kind, resets_at));
            checked += 1;
        }
    }
    assert!(wrong.is_empty(), "{} of {checked} renderings wrong:\n{}", wrong.len(), wrong.join("\n"));
}

/// The search on a made-up binary: a template, literals laid end to end, a popup text.
#[test]
fn finds_messages_in_templates_and_literals() {
    let mut bin = b"\x00\x01junk\x00".to_vec();
    let t = "You’ve hit your usage limit for ";
    bin.push(t.len() as u8);
    bin.extend_from_slice(t.as_bytes());
    bin.extend_from_slice(b"\xc0\x1e. Switch to another model now,\xc0\x00");
    bin.extend_from_slice("<empty>Your workspace is out of credits. Add credits to continue.You hit your spend cap set in your workspace. Increase your spend cap to continue.Your workspace is out of credits. Ask your workspace owner to add more. Notify owner?Quota exceeded".as_bytes());
    let found = messages_in(&bin);
    let texts: Vec<String> = found.iter().map(|(p, _)| format!("{p:?}")).collect();
    assert_eq!(found.len(), 3, "{texts:#?}");
    assert_eq!(
        found.iter().find(|(_, k)| *k == LimitKind::ModelLimit).unwrap().0,
        vec![Piece::Text(t.into()), Piece::Arg, Piece::Text(". Switch to another model now,".into()), Piece::Arg]
    );
    let literal = |s: &str| vec![Piece::Text(s.into())];
    assert!(found.contains(&(literal("Your workspace is out of credits. Add credits to continue."), LimitKind::WorkspaceCredits)));
    assert!(found.contains(&(
        literal("You hit your spend cap set in your workspace. Increase your spend cap to continue."),
        LimitKind::SpendCap
    )));
    let model = renderings(&found.iter().find(|(_, k)| *k == LimitKind::ModelLimit).unwrap().0);
    assert!(model.iter().any(|(t, r)| t == "You’ve hit your usage limit for GPT-6 Sol. Switch to another model now, or try again at 7:48 PM."
        && *r == Some("2026-11-24T19:48:00Z".parse().unwrap())));
}
