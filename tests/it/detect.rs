//! hs-detect: the fixture suite (hand-made and real captures), splits at every byte, --tee,
//! rollouts, marks, exit codes.

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
    events: Vec<Expected>,
}

#[derive(Deserialize, Debug, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
struct Expected {
    kind: String,
    resets_at: Option<String>,
    source: String,
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
            out.push(Fixture { name: stem, input: std::fs::read(input_path).unwrap(), side });
        }
    }
    assert!(out.len() >= 15, "fixtures missing: {}", out.len());
    out
}

fn expected_of(ev: &LimitEvent) -> Expected {
    let v = serde_json::to_value(ev).unwrap();
    Expected {
        kind: v["kind"].as_str().unwrap().into(),
        resets_at: v["resets_at"].as_str().map(String::from),
        source: v["source"].as_str().unwrap().into(),
    }
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
    })
}

/// Feeds `input` in the chunks `sizes` gives (cycled), setting the mark where the sidecar says.
fn run_library(f: &Fixture, sizes: &[usize]) -> Vec<LimitEvent> {
    let mut d = detector(&f.side);
    let mut evs = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < f.input.len() {
        let mut end = (at + sizes[i % sizes.len()]).min(f.input.len());
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
        let run = t.run_stdin("hs-detect", &args, &f.input);
        let want = if f.side.events.is_empty() { 1 } else { 0 };
        assert_eq!(run.code, want, "{}: exit {}\n{}", f.name, run.code, run.stderr);
        let lines: Vec<LimitLine> = run
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {l}: {e}", f.name)))
            .collect();
        let got: Vec<Expected> = lines
            .iter()
            .map(|l| Expected { kind: l.kind.clone(), resets_at: l.resets_at.clone(), source: l.source.clone() })
            .collect();
        assert_eq!(got, f.side.events, "{} ({})\n{}", f.name, f.side.why, run.stdout);
        for l in &lines {
            assert_eq!(
                (l.ty.as_str(), l.account.as_deref(), l.at.as_str()),
                ("limit", Some("acc1"), f.side.now.as_str())
            );
            assert!(!l.text.contains('\n') && !l.text.contains("  "), "{}: {:?}", f.name, l.text);
        }
    }
}

#[test]
fn every_fixture_gives_the_same_events_however_it_is_split() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for f in fixtures() {
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

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
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
    let run = t.run("hs-detect", &["--rollout", path.to_str().unwrap(), "--account", "acc2"]).code(0);
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
    assert_eq!(lim["resets_at"], "2026-11-27T17:48:00Z");
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
    append(&path, &format!("{second}\n{FAILED}\n"));
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
    append(&path, &format!("{NO_LIMITS}\n{FAILED}\n"));
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
}
