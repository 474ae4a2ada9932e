//! hs-detect: the fixture suite (hand-made and real captures), splits at every byte, --tee,
//! rollouts, marks, exit codes. `real_codex_texts`: every limit message of the installed codex binary.

#[path = "detect/codex_texts.rs"]
mod real_codex_texts; // runs the real codex: a `real…` module (tests/README.md)

use crate::support::env::{repo_root, TestEnv};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;
use shared::detect::{Clock, DetectOptions, Detector, Format, Zone};
use shared::events::{Event, LimitEvent};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// A fixture's sidecar: `<name>.expect.json`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Sidecar {
    why: String,
    now: String,
    args: Vec<String>,
    /// For captures of `codex resume`: the byte offset where the caller sets its mark.
    #[serde(default)]
    mark_at: Option<usize>,
    /// The input is a rollout file, given as `--rollout FILE` (stdin empty).
    #[serde(default)]
    rollout: bool,
    events: Vec<Expected>,
}

/// One event: a limit (kind, resets_at, source) or rate limits (primary used_percent, resets_at).
#[derive(Deserialize, Debug, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
struct Expected {
    #[serde(rename = "type", default = "limit_type")]
    ty: String,
    #[serde(default)]
    kind: Option<String>,
    resets_at: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    used_percent: Option<f64>,
}

fn limit_type() -> String {
    "limit".into()
}

impl Expected {
    fn of(v: &serde_json::Value) -> Expected {
        let s = |v: &serde_json::Value| v.as_str().map(String::from);
        if v["type"] == "rate_limits" {
            let p = &v["primary"];
            Expected {
                ty: "rate_limits".into(),
                kind: None,
                resets_at: s(&p["resets_at"]),
                source: None,
                used_percent: p["used_percent"].as_f64(),
            }
        } else {
            Expected {
                ty: "limit".into(),
                kind: s(&v["kind"]),
                resets_at: s(&v["resets_at"]),
                source: s(&v["source"]),
                used_percent: None,
            }
        }
    }
}

/// hs-detect's limit line, pinned field by field.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LimitLine {
    #[serde(rename = "type")]
    ty: String,
    kind: String,
    text: String,
    resets_at: Option<String>,
    source: String,
    account: Option<String>,
    at: String,
    #[serde(default)]
    session_id: Option<String>,
}

struct Fixture {
    name: String,
    path: PathBuf,
    input: Vec<u8>,
    side: Sidecar,
}

fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/fixtures/detect")
}

/// Every fixture: `*.expect.json` beside its input, in this folder and in `real/`.
fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for dir in [fixtures_dir(), fixtures_dir().join("real")] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for side_path in paths.iter().filter(|p| p.to_string_lossy().ends_with(".expect.json")) {
            let stem = side_path.file_name().unwrap().to_string_lossy().trim_end_matches(".expect.json").to_string();
            let input_path = paths
                .iter()
                .find(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with(&format!("{stem}.")) && !n.ends_with(".expect.json")
                })
                .unwrap_or_else(|| panic!("no input beside {}", side_path.display()));
            let side: Sidecar = serde_json::from_slice(&std::fs::read(side_path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", side_path.display()));
            out.push(Fixture { name: stem, path: input_path.clone(), input: std::fs::read(input_path).unwrap(), side });
        }
    }
    assert!(out.len() >= 15, "fixtures missing: {}", out.len());
    out
}

fn expected_of(ev: &LimitEvent) -> Expected {
    Expected::of(&serde_json::to_value(Event::Limit(ev.clone())).unwrap())
}

fn arg_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).map(|i| args[i + 1].as_str())
}

/// The library, set up as the sidecar's arguments say, in UTC.
fn detector(side: &Sidecar) -> Detector {
    let (rows, cols) = arg_value(&side.args, "--size")
        .map(|s| {
            let (r, c) = s.split_once('x').unwrap();
            (r.parse().unwrap(), c.parse().unwrap())
        })
        .unwrap_or((24, 80));
    Detector::new(DetectOptions {
        format: arg_value(&side.args, "--format").map(|f| f.parse::<Format>().unwrap()),
        rows,
        cols,
        account: None,
        zone: Zone::Fixed(FixedOffset::east_opt(0).unwrap()),
        clock: Clock::Fixed(side.now.parse().unwrap()),
        wait_for_mark: side.mark_at.is_some(),
        ..DetectOptions::default()
    })
}

/// Feeds `input` in the chunks `sizes` gives (cycled), setting the mark where the sidecar says.
fn run_library(f: &Fixture, sizes: &[usize]) -> Vec<LimitEvent> {
    let mut d = detector(&f.side);
    let mut evs = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < f.input.len() {
        let mut end = at.saturating_add(sizes[i % sizes.len()]).min(f.input.len());
        if let Some(m) = f.side.mark_at.filter(|&m| m > at && m < end) {
            end = m;
        }
        evs.extend(d.feed(&f.input[at..end]));
        if f.side.mark_at == Some(end) {
            d.set_mark();
        }
        at = end;
        i += 1;
    }
    evs.extend(d.finish());
    evs.into_iter()
        .map(|e| match e {
            Event::Limit(l) => l,
            other => panic!("{}: not a limit: {other:?}", f.name),
        })
        .collect()
}

#[test]
fn every_fixture_gives_exactly_its_events_through_the_cli() {
    let t = TestEnv::new();
    for f in fixtures().iter().filter(|f| f.side.mark_at.is_none()) {
        let mut args: Vec<&str> = f.side.args.iter().map(String::as_str).collect();
        args.extend(["--now", &f.side.now, "--account", "acc1"]);
        let run = if f.side.rollout {
            args.extend(["--rollout", f.path.to_str().unwrap(), "--from-start"]);
            t.run("hs-detect", &args)
        } else {
            t.run_stdin("hs-detect", &args, &f.input)
        };
        let limits = f.side.events.iter().filter(|e| e.ty == "limit").count();
        assert_eq!(run.code, if limits == 0 { 1 } else { 0 }, "{}: exit {}\n{}", f.name, run.code, run.stderr);
        let got: Vec<Expected> = run.json_lines().iter().map(Expected::of).collect();
        assert_eq!(got, f.side.events, "{} ({})\n{}", f.name, f.side.why, run.stdout);
        for line in run.stdout.lines().filter(|l| l.starts_with(r#"{"type":"limit""#)) {
            let l: LimitLine = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}: {line}: {e}", f.name));
            assert_eq!((l.ty.as_str(), l.account.as_deref()), ("limit", Some("acc1")));
            if !f.side.rollout {
                assert_eq!(l.at, f.side.now, "{}", f.name);
            }
            assert!(!l.text.contains('\n') && !l.text.contains("  "), "{}: {:?}", f.name, l.text);
        }
    }
}

/// Rollout fixtures written to a growing file in uneven pieces, polled after each: the same
/// events as reading it whole.
#[test]
fn rollout_fixtures_give_the_same_events_when_read_while_written() {
    use shared::rollout::{FollowOptions, Follower};
    let dir = tempfile::tempdir().unwrap();
    for f in fixtures().into_iter().filter(|f| f.side.rollout) {
        let path = dir.path().join(&f.name);
        std::fs::write(&path, b"").unwrap();
        let mut follower = Follower::open(&path, FollowOptions::default()).unwrap();
        let mut got = Vec::new();
        for piece in f.input.chunks(977) {
            append(&path, piece);
            got.extend(follower.poll().unwrap());
        }
        let got: Vec<Expected> = got.iter().map(|e| Expected::of(&serde_json::to_value(e).unwrap())).collect();
        assert_eq!(got, f.side.events, "{}", f.name);
    }
}

#[test]
fn every_fixture_gives_the_same_events_however_it_is_split() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for f in fixtures().into_iter().filter(|f| !f.side.rollout) {
        let whole = run_library(&f, &[usize::MAX]);
        assert_eq!(whole.iter().map(expected_of).collect::<Vec<_>>(), f.side.events, "{} whole", f.name);
        let mut random = Vec::new();
        for _ in 0..64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            random.push((seed % 97) as usize + 1);
        }
        for sizes in [&[1][..], &[2, 3], &[5, 1, 13], &[4096], &random] {
            let got = run_library(&f, sizes);
            assert_eq!(got, whole, "{} split by {sizes:?}", f.name);
        }
    }
}

#[test]
fn tee_copies_stdin_unchanged_and_sends_events_elsewhere() {
    let t = TestEnv::new();
    let input = std::fs::read(fixtures_dir().join("tui-plus-24x80.bin")).unwrap();
    let run = t.run_stdin("hs-detect", &["--tee", "--format", "tui"], &input).code(0);
    assert_eq!(run.stdout.as_bytes(), &input[..], "stdout is stdin, byte for byte");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with(r#"{"type":"limit","kind":"usage_limit""#), "{}", run.stderr);

    let events = t.root().join("events.jsonl");
    std::fs::write(&events, "{\"type\":\"old\"}\n").unwrap();
    let run = t.run_stdin("hs-detect", &["--tee", "--events", events.to_str().unwrap()], &input).code(0);
    assert_eq!(run.stdout.as_bytes(), &input[..]);
    assert_eq!(run.stderr, "");
    let written = std::fs::read_to_string(&events).unwrap();
    assert_eq!(written.lines().count(), 2, "appended: {written}");
    assert!(written.lines().nth(1).unwrap().contains(r#""source":"screen""#));
}

#[test]
fn exit_codes_and_errors() {
    let t = TestEnv::new();
    t.run_stdin("hs-detect", &[], b"all good\n").code(1);
    t.run("hs-detect", &[]).code(1);
    let run = t.run_stdin("hs-detect", &["--size", "24"], b"").code(2);
    assert_eq!(run.stderr.trim(), r#"hs-detect: invalid --size "24": use ROWSxCOLS like 24x80"#);
    let missing = t.root().join("nope.jsonl");
    let run = t.run("hs-detect", &["--rollout", missing.to_str().unwrap()]).code(2);
    assert!(run.stderr.starts_with(&format!("hs-detect: failed to open {}:", missing.display())), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1);
    t.run("hs-detect", &["--from-end"]).code(2);
    t.run("hs-detect", &["--events", "x"]).code(2);
    let help = t.run("hs-detect", &["--help"]).ok().stdout;
    for word in
        ["--format", "--size", "--rollout", "--from-end", "--follow", "--tee", "--events", "--wait-for-mark", "SIGUSR1"]
    {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

const META: &str = r#"{"timestamp":"2026-11-24T18:00:00.000Z","type":"session_meta","payload":{"id":"0199b2c4-7f00-7a31-9c1e-1c2d3e4f5a6b","cwd":"/w","originator":"codex-tui","cli_version":"0.169.0"}}"#;
const TOKENS: &str = r#"{"timestamp":"2026-11-24T18:01:00.500Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"limit_id":"codex","primary":{"used_percent":100.0,"window_minutes":300,"resets_at":1795546357},"secondary":{"used_percent":10.0,"window_minutes":10080,"resets_in_seconds":3600},"plan_type":"plus"}}}"#;
const NO_LIMITS: &str = r#"{"timestamp":"2026-11-24T18:01:01Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":null}}"#;
const FAILED: &str = r#"{"timestamp":"2026-11-24T18:01:02Z","type":"event_msg","payload":{"type":"task_complete","turn_id":"1","last_agent_message":null,"error":{"message":"You’ve hit your usage limit. Try again at Nov 27th, 2026 5:48 PM.","codex_error_info":"usage_limit_exceeded"}}}"#;
const OLD_ERROR: &str = r#"{"timestamp":"2026-11-24T18:01:02Z","type":"event_msg","payload":{"type":"error","message":"You’ve hit your usage limit. Try again at Nov 27th, 2026 5:48 PM."}}"#;

fn append(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(bytes.as_ref()).unwrap();
}

#[test]
fn rollout_from_the_start_when_stdin_is_empty() {
    let t = TestEnv::new();
    let path = t.root().join("rollout.jsonl");
    std::fs::write(
        &path,
        format!("{META}\n{TOKENS}\n{NO_LIMITS}\n{OLD_ERROR}\n{FAILED}\n{{\"type\":\"event_msg\",\"payl"),
    )
    .unwrap();
    let run = t.run("hs-detect", &["--rollout", path.to_str().unwrap(), "--from-start", "--account", "acc2"]).code(0);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    let rl = &lines[0];
    assert_eq!(rl["type"], "rate_limits");
    assert_eq!(rl["primary"]["used_percent"], 100.0);
    assert_eq!(rl["primary"]["window_minutes"], 300);
    assert_eq!(rl["primary"]["resets_at"], "2026-11-24T18:52:37Z");
    assert_eq!(rl["secondary"]["resets_at"], "2026-11-24T19:01:00Z", "resets_in_seconds counts from the record");
    assert_eq!((rl["plan_type"].as_str(), rl["limit_id"].as_str()), (Some("plus"), Some("codex")));
    assert_eq!(rl["at"], "2026-11-24T18:01:00Z");
    assert_eq!(rl["session_id"], "0199b2c4-7f00-7a31-9c1e-1c2d3e4f5a6b");
    let lim = &lines[1];
    assert_eq!(
        (lim["type"].as_str(), lim["kind"].as_str(), lim["source"].as_str()),
        (Some("limit"), Some("usage_limit"), Some("rollout"))
    );
    // The window at 100 % in the token_count before the error gives the exact reset (the text
    // says Nov 27th, and a null rate_limits record in between tells nothing).
    assert_eq!(lim["resets_at"], "2026-11-24T18:52:37Z");
    assert_eq!(lim["account"], "acc2");
    assert_eq!(lim["session_id"], "0199b2c4-7f00-7a31-9c1e-1c2d3e4f5a6b");
}

/// Starts hs-detect with piped stdin and stdout; returns once it has read a first byte (its
/// echo came back through --tee), so it is following the rollout by then.
fn start_teeing(t: &TestEnv, args: &[&str]) -> (Child, std::process::ChildStdin, BufReader<std::process::ChildStdout>) {
    let mut child = t
        .cmd("hs-detect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"x").unwrap();
    stdin.flush().unwrap();
    let mut echo = [0u8];
    stdout.read_exact(&mut echo).unwrap();
    (child, stdin, stdout)
}

#[test]
fn rollout_from_end_reports_only_what_is_appended_while_stdin_is_open() {
    let t = TestEnv::new();
    let path = t.root().join("rollout.jsonl");
    std::fs::write(&path, format!("{META}\n{FAILED}\n")).unwrap();
    let (child, stdin, _stdout) =
        start_teeing(&t, &["--tee", "--rollout", path.to_str().unwrap(), "--from-end", "--format", "text"]);
    let (first, second) = TOKENS.split_at(40);
    append(&path, first);
    append(&path, format!("{second}\n{FAILED}\n"));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> =
        String::from_utf8(out.stderr).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["rate_limits", "limit"], "{events:?}");
    assert_eq!(events[1]["session_id"], "0199b2c4-7f00-7a31-9c1e-1c2d3e4f5a6b");
}

#[test]
fn follow_keeps_reading_after_stdin_ends_until_terminated() {
    let t = TestEnv::new();
    let path = t.root().join("rollout.jsonl");
    std::fs::write(&path, format!("{META}\n{FAILED}\n")).unwrap();
    let (mut child, stdin, _stdout) =
        start_teeing(&t, &["--tee", "--rollout", path.to_str().unwrap(), "--from-end", "--follow"]);
    let mut events = BufReader::new(child.stderr.take().unwrap());
    drop(stdin);
    // Nothing old is reported; what is appended after stdin ended is.
    append(&path, format!("{NO_LIMITS}\n{FAILED}\n"));
    let mut line = String::new();
    events.read_line(&mut line).unwrap();
    assert!(line.starts_with(r#"{"type":"limit","kind":"usage_limit""#), "{line}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "a limit was seen");
    let mut rest = String::new();
    events.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the old record is not reported");
}

#[test]
fn wait_for_mark_ignores_banners_until_sigusr1() {
    let t = TestEnv::new();
    let banner = |text: &str| format!("\x1b[?2004h\x1b[24;1H\r\n\x1b[31m■ {text}\x1b[0m\r\n\x1b[1;1H").into_bytes();
    let (mut child, mut stdin, mut stdout) = start_teeing(&t, &["--tee", "--format", "tui", "--wait-for-mark"]);
    let redrawn = banner("You’ve hit your usage limit. Try again at 7:48 PM.");
    stdin.write_all(&redrawn).unwrap();
    let mut echo = vec![0u8; redrawn.len()];
    stdout.read_exact(&mut echo).unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGUSR1).unwrap();
    stdin.write_all(&banner("Quota exceeded. Check your plan and billing details.")).unwrap();
    drop(stdin);
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let kinds: Vec<String> =
        err.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string()).collect();
    assert_eq!(kinds, [r#""quota""#], "{err}");
}

/// hs-detect following a resumed session's rollout `--from-end`: the limit already recorded
/// there is old, so its banner redrawn by `codex resume` does not fire; a new limit does.
#[test]
fn resume_with_the_rollout_from_end_needs_no_mark() {
    let t = TestEnv::new();
    let real = fixtures_dir().join("real");
    for (name, want) in [("resume-then-answer", 0), ("resume-then-limit", 1)] {
        let rollout = t.root().join(format!("{name}.jsonl"));
        std::fs::copy(real.join(format!("rollout-before-{name}.jsonl")), &rollout).unwrap();
        let capture = std::fs::read(real.join(format!("tui-{name}-30x100.bin"))).unwrap();
        let args = ["--format", "tui", "--size", "30x100", "--rollout", rollout.to_str().unwrap(), "--from-end"];
        let run = t.run_stdin("hs-detect", &args, &capture);
        let limits: Vec<serde_json::Value> = run.json_lines().into_iter().filter(|e| e["type"] == "limit").collect();
        assert_eq!(limits.len(), want, "{name}: {}", run.stdout);
        assert_eq!(run.code, if want == 0 { 1 } else { 0 });
        if want == 1 {
            assert!(limits[0]["text"].as_str().unwrap().contains("Upgrade to Plus"), "{:?}", limits[0]);
        }
        // Without the rollout the redraw is taken for a new limit: the test above means something.
        let bare = t.run_stdin("hs-detect", &args[..4], &capture);
        let lines = bare.json_lines();
        assert_eq!(lines.len(), want + 1, "{name}");
        // Told the old text (as a restarted detector is), the redraw does not count either.
        let old = lines[0]["text"].as_str().unwrap().replace(' ', "  ");
        let told = t.run_stdin("hs-detect", &[&args[..4], &["--known", &old]].concat(), &capture);
        assert_eq!(told.json_lines().len(), want, "{name}: {}", told.stdout);
    }
}

#[test]
fn library_marks_and_resizes() {
    let opts = || DetectOptions {
        format: Some(Format::Tui),
        zone: Zone::Fixed(FixedOffset::east_opt(0).unwrap()),
        clock: Clock::Fixed("2026-11-24T18:00:00Z".parse::<DateTime<Utc>>().unwrap()),
        ..Default::default()
    };
    let banner = "\r\n\x1b[31m■ You’ve hit your usage limit. Try again later.\x1b[0m\r\n".as_bytes();
    // A banner half drawn at the mark is old, even when its end comes after the mark.
    let mut d = Detector::new(opts());
    assert!(d.feed(&banner[..20]).is_empty());
    d.set_mark();
    assert!(d.feed(&banner[20..]).is_empty());
    assert!(d.finish().is_empty());
    // A text once seen is known: drawn again, before or after a mark, it is a redraw.
    let mut d = Detector::new(opts());
    assert_eq!(d.feed(banner).len(), 1);
    assert!(d.feed(banner).is_empty());
    d.set_mark();
    assert!(d.feed(banner).is_empty());
    let other = "\r\n\x1b[31m■ You’ve hit your usage limit. Try again at 9:00 PM.\x1b[0m\r\n".as_bytes();
    assert_eq!(d.feed(other).len(), 1);
    // Waiting for the mark: what is drawn before it is known, the rest is reported.
    let mut d = Detector::new(DetectOptions { wait_for_mark: true, ..opts() });
    assert!(d.feed(banner).is_empty());
    d.set_mark();
    assert!(d.feed(banner).is_empty());
    assert_eq!(d.feed(other).len(), 1);
    // Resized to 40 columns: a long banner is read over the rows it wraps to.
    let mut d = Detector::new(opts());
    d.resize(10, 40);
    let long = "\x1b[10;1H\r\n■ You’ve hit your usage limit. To get more access now, send a request to your admin or try again at 7:48 PM.\r\n";
    let evs = d.feed(long.as_bytes());
    let [Event::Limit(l)] = &evs[..] else { panic!("{evs:?}") };
    assert_eq!(l.resets_at, Some("2026-11-24T19:48:00Z".parse().unwrap()));
    assert_eq!(d.format(), Some(Format::Tui));
    // A text made known (from the rollout before a resume) is never reported, however wrapped.
    let mut d = Detector::new(opts());
    d.add_known_text("You’ve hit your usage limit.   Try again later.");
    assert!(d.feed(banner).is_empty());
    assert_eq!(d.feed(other).len(), 1);
    // On the alternate screen, a banner redrawn after a resize breaks elsewhere (codex cut a
    // long word in the middle the first time): the same text, no new event.
    let mut d = Detector::new(opts());
    let first = "\x1b[?1049h\x1b[?2026h\x1b[3;1H■ Your workspace is out of credits. Ask your workspace ow\x1b[4;1Hner to refill in order to continue.\x1b[20;3H\x1b[?2026l";
    assert_eq!(d.feed(first.as_bytes()).len(), 1);
    d.resize(24, 60);
    let again = "\x1b[?2026h\x1b[2J\x1b[3;1H■ Your workspace is out of credits. Ask your workspace\x1b[4;1Howner to refill in order to continue.\x1b[20;3H\x1b[?2026l";
    assert!(d.feed(again.as_bytes()).is_empty());
    assert!(d.finish().is_empty());
}

// The capture tests' shared parts (real codex against the mock, saved with a sidecar).
use crate::support::auth::{leaked_markers, FakeAccount};
use crate::support::mock::{Behaviour, MockBackend};
use crate::support::tui::{codex_command, Tui};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const READY: &str = "Ask Codex to do anything";

struct Capture<'a> {
    env: TestEnv,
    mock: MockBackend,
    work: PathBuf,
    out_dir: &'a Path,
    version: &'a str,
}
impl Capture<'_> {
    fn new<'a>(out_dir: &'a Path, version: &'a str) -> Capture<'a> {
        let env = TestEnv::new();
        let mock = MockBackend::start(&env.root().join("mock"));
        let work = env.root().join("work");
        std::fs::create_dir_all(&work).unwrap();
        Capture { env, mock, work, out_dir, version }
    }
    fn home(&self, acct: &FakeAccount) -> PathBuf {
        self.mock.codex_home(&self.env.root().join(format!("codex-{}", acct.account_id)), acct, &[&self.work])
    }
    fn tui(&self, home: &Path, args: &[&str], rows: u16, cols: u16) -> Tui {
        let mut cmd = codex_command(&self.env, &self.mock, home, &self.work);
        cmd.arg("--no-daemon").args(args);
        Tui::spawn(cmd, rows, cols)
    }
    /// Types `prompt` and waits until the mock has answered it.
    fn turn(&self, tui: &Tui, prompt: &str) -> String {
        tui.expect_text(READY, WAIT);
        let from = self.mock.requests().len();
        tui.submit(prompt);
        let r = self
            .mock
            .wait_for_from(from, |r| r.is_turn() && r.body.contains(prompt), WAIT)
            .unwrap_or_else(|| panic!("no turn for {prompt:?}:\n{}", tui.screen()));
        r.session_id.expect("turns carry a session id")
    }
    fn save(&self, name: &str, bytes: &[u8], side: serde_json::Value) {
        assert!(leaked_markers(bytes).is_empty(), "{name} shows a token");
        std::fs::write(self.out_dir.join(name), bytes).unwrap();
        let stem = name.rsplit_once('.').unwrap().0;
        let text = serde_json::to_string_pretty(&side).unwrap() + "\n";
        std::fs::write(self.out_dir.join(format!("{stem}.expect.json")), text).unwrap();
    }
    fn why(&self, what: &str) -> String {
        format!("real codex {}: {what}", self.version)
    }
}
/// A reset time on a whole minute, so the text's `7:48 PM` names it exactly.
fn reset_in(hours: i64) -> DateTime<Utc> {
    let t = Utc::now().timestamp() + hours * 3600;
    DateTime::from_timestamp(t - t % 60, 0).unwrap()
}
fn now() -> String {
    shared::duration::rfc3339(Utc::now())
}
fn limit(reset: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({"kind": "usage_limit", "resets_at": shared::duration::rfc3339(reset), "source": "screen"})
}
fn rollout_of(home: &Path) -> PathBuf {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out)
            } else if e.path().extension().is_some_and(|x| x == "jsonl") {
                out.push(e.path())
            }
        }
    }
    let mut found = Vec::new();
    walk(&home.join("sessions"), &mut found);
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}


/// Regenerates `tests/fixtures/detect/real/` from the real codex (see the README there):
/// `shell/test detect::capture_real_fixtures -- --ignored`. Each capture's sidecar states the
/// events the scenario makes codex show, worked out from what the mock was told to answer, not
/// from running the detector.
fn capture_real_fixtures() {
    let out_dir = fixtures_dir().join("real");
    std::fs::create_dir_all(&out_dir).unwrap();
    let version = crate::support::mock::real_codex_version();
    // A usage limit on plus and free plans, at three sizes.
    for (plan, rows, cols, text) in
        [("plus", 24, 80, "Upgrade to Pro"), ("free", 50, 200, "Upgrade to Plus"), ("plus", 20, 44, "Upgrade to Pro")]
    {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("lim", plan);
        let reset = reset_in(3);
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit(plan, reset.timestamp()));
        let home = c.home(&acct);
        let tui = c.tui(&home, &[], rows, cols);
        let at = now();
        c.turn(&tui, "where were we");
        tui.expect_text(&format!("You’ve hit your usage limit. {text}"), WAIT);
        tui.expect_text("Approaching rate limits", WAIT);
        let name = format!("tui-{plan}-{rows}x{cols}");
        c.save(
            &format!("{name}.bin"),
            &tui.raw(),
            serde_json::json!({"why": c.why(&format!("{plan} usage limit at {rows}x{cols}")), "now": at,
                "args": ["--format", "tui", "--size", format!("{rows}x{cols}")], "events": [limit(reset)]}),
        );
        if plan == "plus" && cols == 80 {
            // The session's rollout: telemetry of the 429 and the structured limit record.
            let path = rollout_of(&home);
            let records = std::fs::read(&path).unwrap();
            let mut events = Vec::new();
            for line in String::from_utf8_lossy(&records).lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let p = &v["payload"];
                if p["type"] == "token_count" && p["rate_limits"].is_object() {
                    let primary = &p["rate_limits"]["primary"];
                    let resets = DateTime::from_timestamp(primary["resets_at"].as_i64().unwrap(), 0).unwrap();
                    events.push(serde_json::json!({"type": "rate_limits", "used_percent": primary["used_percent"],
                        "resets_at": shared::duration::rfc3339(resets)}));
                }
                if p["type"] == "task_complete" && p["error"]["codex_error_info"] == "usage_limit_exceeded" {
                    let mut l = limit(reset);
                    l["source"] = "rollout".into();
                    events.push(l);
                }
            }
            assert!(events.iter().any(|e| e["source"] == "rollout"), "no limit record in {}", path.display());
            let ts = String::from_utf8_lossy(&records).lines().next().map(|l| l.to_string()).unwrap();
            let start: serde_json::Value = serde_json::from_str(&ts).unwrap();
            c.save(
                "rollout-plus.jsonl",
                &records,
                serde_json::json!({"why": c.why("the rollout of the plus 24x80 session"),
                    "now": start["timestamp"], "args": [], "rollout": true, "events": events}),
            );
        }
    }

    // Answers, no limit: one quoting the limit texts (■ lines included, in the prompt too); a
    // long one (markdown, code, lists) scrolling through the screen, the bulk of what a session
    // prints and the benchmark's seed with the captures above.
    let quoting = "When the account runs out, codex prints:\n\n■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 7:48 PM.\n\nYou’ve hit your usage limit. Try again later.\n\n```\n■ Quota exceeded. Check your plan and billing details.\n```\nDone.";
    let mut long = String::new();
    for i in 1..=12 {
        long.push_str(&format!(
            "## Step {i}\n\nThe parser reads the **rollout** line by line; step {i} checks `resets_at` \
             against the local clock and keeps going when the record is partial.\n\n\
             - first, open the file and seek to the end\n- then poll every 250 ms\n\n\
             ```rust\nfn step_{i}(x: u64) -> u64 {{\n    x.wrapping_mul({i}).rotate_left(7)\n}}\n```\n\n"
        ));
    }
    long.push_str("All steps done.");
    for (name, answer, prompt, why) in [
        (
            "tui-answer-quotes-limit-30x100",
            quoting.to_string(),
            "■ You’ve hit your usage limit. Try again later. <- what does this mean?",
            "the answer and the prompt quote limit texts, ■ lines included",
        ),
        ("tui-long-answer-30x100", long, "explain the follower step by step", "a long markdown answer scrolling by"),
    ] {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("ok", "pro");
        let last_words = answer.rsplit("\n").next().unwrap().to_string();
        c.mock.set_behaviour(&acct.account_id, Behaviour::Answer(answer));
        let tui = c.tui(&c.home(&acct), &[], 30, 100);
        let at = now();
        c.turn(&tui, prompt);
        tui.expect_text(&last_words, WAIT);
        c.save(
            &format!("{name}.bin"),
            &tui.raw(),
            serde_json::json!({"why": c.why(why), "now": at, "args": ["--format", "tui", "--size", "30x100"], "events": []}),
        );
    }

    // `codex exec` and `codex exec --json` hitting a limit: what scripts pipe into hs-detect.
    for (name, json) in [("exec-free.txt", false), ("exec-json-free.jsonl", true)] {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("ex", "free");
        let reset = reset_in(4);
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit("free", reset.timestamp()));
        let mut cmd = codex_command(&c.env, &c.mock, &c.home(&acct), &c.work);
        cmd.args(["exec", "--skip-git-repo-check"]);
        if json {
            cmd.arg("--json");
        }
        let at = now();
        let out = cmd.arg("summarise the repo").output().expect("run codex exec");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        // As `2>&1` gives it: codex writes its stderr lines before the final stdout.
        let bytes = if json { out.stdout } else { [out.stderr, out.stdout].concat() };
        let (format, source) = if json { ("json", "exec_json") } else { ("text", "text") };
        let mut l = limit(reset);
        l["source"] = source.into();
        c.save(
            name,
            &bytes,
            serde_json::json!({"why": c.why(&format!("codex exec{} on a limited free account", if json { " --json" } else { "" })),
                "now": at, "args": ["--format", format], "events": [l]}),
        );
    }

    // A plain 429 (no usage-limit body): codex retries, then gives up.
    {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("busy", "plus");
        let body = r#"{"error":{"type":"rate_limit_exceeded","message":"slow down"}}"#;
        c.mock.set_behaviour(&acct.account_id, Behaviour::Status { code: 429, body: body.into() });
        let tui = c.tui(&c.home(&acct), &[], 30, 100);
        let at = now();
        c.turn(&tui, "busy?");
        tui.expect_text("exceeded retry limit, last status: 429", Duration::from_secs(180));
        tui.expect_text(READY, WAIT);
        c.save(
            "tui-retry-429-30x100.bin",
            &tui.raw(),
            serde_json::json!({"why": c.why("a plain 429: retries, then the retry failure"), "now": at,
                "args": ["--format", "tui", "--size", "30x100"],
                "events": [{"kind": "rate_limited", "resets_at": null, "source": "screen"}]}),
        );
    }

    // Still limited, the user tries again: a second banner lands where the first one stood
    // (codex redraws only changed cells, so its `■` may not be printed again). Two limits.
    {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("again", "plus");
        let (first, second) = (reset_in(2), reset_in(3));
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit("plus", first.timestamp()));
        let tui = c.tui(&c.home(&acct), &[], 30, 100);
        let at = now();
        c.turn(&tui, "first try");
        tui.expect_text("Approaching rate limits", WAIT);
        // The popup holds the keyboard: choose "2. Keep current model".
        tui.send(b"\x1b[B");
        std::thread::sleep(Duration::from_millis(300));
        tui.send(b"\r");
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit("plus", second.timestamp()));
        c.turn(&tui, "second try");
        let shown = |t: DateTime<Utc>| t.format("%-I:%M %p").to_string();
        tui.expect_text(&format!("try again at {}.", shown(second)), WAIT);
        c.save(
            "tui-limit-twice-30x100.bin",
            &tui.raw(),
            serde_json::json!({"why": c.why("a limit, then the same limit again with a later reset"), "now": at,
                "args": ["--format", "tui", "--size", "30x100"], "events": [limit(first), limit(second)]}),
        );
    }

    // `codex resume` after a limit redraws the old banner; the caller marks the stream when it
    // types the next prompt. Then either an answer (no event) or a new limit (one event).
    for (name, second) in [("resume-then-answer", None), ("resume-then-limit", Some(reset_in(5)))] {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("res", "plus");
        let reset = reset_in(2);
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit("plus", reset.timestamp()));
        let home = c.home(&acct);
        let tui = c.tui(&home, &[], 30, 100);
        let session = c.turn(&tui, "first try");
        tui.expect_text("You’ve hit your usage limit. Upgrade to Pro", WAIT);
        // The rate-limit popup holds the keyboard: end codex the hard way, its rollout is written.
        drop(tui);
        let before = std::fs::read(rollout_of(&home)).unwrap();
        assert!(leaked_markers(&before).is_empty());
        std::fs::write(c.out_dir.join(format!("rollout-before-{name}.jsonl")), before).unwrap();

        c.mock.set_behaviour(
            &acct.account_id,
            match second {
                Some(r) => Behaviour::usage_limit("free", r.timestamp()),
                None => Behaviour::Answer("Picking up where we left off.".into()),
            },
        );
        let tui = c.tui(&home, &["resume", &session], 30, 100);
        tui.expect_text("You’ve hit your usage limit. Upgrade to Pro", WAIT);
        tui.expect_text(READY, WAIT);
        let mark_at = tui.raw().len();
        let at = now();
        c.turn(&tui, "continue please");
        match second {
            Some(_) => tui.expect_text("You’ve hit your usage limit. Upgrade to Plus", WAIT),
            None => tui.expect_text("Picking up where we left off.", WAIT),
        }
        let events: Vec<serde_json::Value> = second.into_iter().map(limit).collect();
        c.save(
            &format!("tui-{name}-30x100.bin"),
            &tui.raw(),
            serde_json::json!({"why": c.why(&format!("{name}: the old banner is redrawn before the mark")), "now": at,
                "args": ["--format", "tui", "--size", "30x100"], "mark_at": mark_at, "events": events}),
        );
    }
}

/// By default a rollout's existing records are history: only what is appended counts.
#[test]
fn rollout_default_reports_only_new_records() {
    let t = TestEnv::new();
    let path = t.root().join("rollout.jsonl");
    std::fs::write(&path, format!("{META}\n{TOKENS}\n{FAILED}\n")).unwrap();
    let run = t.run("hs-detect", &["--rollout", path.to_str().unwrap(), "--account", "acc2"]).code(1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let run = t.run("hs-detect", &["--rollout", path.to_str().unwrap(), "--from-end", "--from-start"]).code(2);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

/// The benchmark's sessions (`real/bench-*`, see BENCHMARKS.md), at 24x80, 40x120 and 50x200:
/// `shell/test detect::capture_bench_sessions -- --ignored`. Each size gives two captures: a
/// session with a long answer (markdown, lists, a table, diffs, code) then a usage limit (the
/// banner, the "Approaching rate limits" popup, the `⚠ 5h limit` status line), and its
/// `codex resume`: the whole conversation redrawn, old banner included, then a new answer.
fn capture_bench_sessions() {
    let out_dir = fixtures_dir().join("real");
    std::fs::create_dir_all(&out_dir).unwrap();
    let version = crate::support::mock::real_codex_version();
    let mut answer = String::new();
    for i in 1..=8 {
        answer.push_str(&format!(
            "## Change {i}: the follower\n\nThe **rollout** follower now seeks to the end before polling; \
             `resets_at` is read as unix seconds or RFC 3339, and a partial last line waits.\n\n\
             | step | before | after |\n|---|---|---|\n| open | {i} ms | {} ms |\n| poll | 250 ms | 100 ms |\n\n\
             ```diff\n--- a/shared/src/rollout.rs\n+++ b/shared/src/rollout.rs\n@@ -{i}0,7 +{i}0,8 @@ impl Follower {{\n\
             -    let pos = file.seek(SeekFrom::Start(0))?;\n+    let pos = file.seek(SeekFrom::End(0))?;\n\
             +    self.partial.clear();\n     loop {{\n-        std::thread::sleep(Duration::from_millis(250));\n\
             +        std::thread::sleep(Duration::from_millis(100));\n```\n\n\
             1. run `cargo test rollout::` again\n2. check the limit record\n   - `task_complete` with `usage_limit_exceeded`\n\n",
            i * 2
        ));
    }
    answer.push_str("That is every change.");
    for (rows, cols) in [(24u16, 80u16), (40, 120), (50, 200)] {
        let c = Capture::new(&out_dir, &version);
        let acct = FakeAccount::new("bench", "plus");
        c.mock.set_behaviour(&acct.account_id, Behaviour::Answer(answer.clone()));
        let home = c.home(&acct);
        let tui = c.tui(&home, &[], rows, cols);
        let at = now();
        let session = c.turn(&tui, "show me the follower changes as diffs");
        tui.expect_text("That is every change.", WAIT);
        let reset = reset_in(3);
        c.mock.set_behaviour(&acct.account_id, Behaviour::usage_limit("plus", reset.timestamp()));
        c.turn(&tui, "now apply them");
        tui.expect_text("You’ve hit your usage limit. Upgrade to Pro", WAIT);
        tui.expect_text("Approaching rate limits", WAIT);
        let size = format!("{rows}x{cols}");
        c.save(
            &format!("bench-session-{size}.bin"),
            &tui.raw(),
            serde_json::json!({"why": c.why(&format!("a long answer with diffs, then a plus usage limit with its popup and status line, at {size}")),
                "now": at, "args": ["--format", "tui", "--size", size], "events": [limit(reset)]}),
        );
        drop(tui);
        c.mock.set_behaviour(&acct.account_id, Behaviour::Answer("Picking up where we left off.".into()));
        let tui = c.tui(&home, &["resume", &session], rows, cols);
        tui.expect_text("You’ve hit your usage limit. Upgrade to Pro", WAIT);
        tui.expect_text(READY, WAIT);
        let mark_at = tui.raw().len();
        let at = now();
        c.turn(&tui, "continue please");
        tui.expect_text("Picking up where we left off.", WAIT);
        c.save(
            &format!("bench-resume-{size}.bin"),
            &tui.raw(),
            serde_json::json!({"why": c.why(&format!("codex resume after that limit at {size}: the conversation and the old banner redrawn before the mark, then an answer")),
                "now": at, "args": ["--format", "tui", "--size", size], "mark_at": mark_at, "events": []}),
        );
    }
}

/// The captures run the real codex, so they live in a module named `real` (see tests/README.md);
/// by hand: `CODEX_HOTSWAP_TEST_VERSIONS=0.169.0 shell/test detect::real -- --ignored`.
mod real {
    #[test]
    #[ignore]
    fn capture_real_fixtures() {
        super::capture_real_fixtures()
    }

    #[test]
    #[ignore]
    fn capture_bench_sessions() {
        super::capture_bench_sessions()
    }
}
