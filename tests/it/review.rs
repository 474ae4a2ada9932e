//! `codex review` and `codex exec review` through hs-run, with the real codex 0.169.0 against the
//! mock backend. A review that hits the usage limit runs again, as the user wrote it, on the next
//! account, in a session of its own: codex runs the review in a sub-agent thread that resuming
//! its session does not continue (the last test here shows that fact; see
//! `shared::run::args::CodexArgs::reruns`).

use std::process::Stdio;
use std::time::Duration;

use shared::events::{Event, LimitKind, SwapEvent};

use crate::support::auth::FakeAccount;
use crate::support::env::Run;
use crate::support::mock::{Behaviour, RequestRecord};
use crate::support::real::RealWorld;
use crate::support::tui::codex_command;

/// The prompt codex 0.169.0 gives the reviewer for `--uncommitted`.
const UNCOMMITTED: &str = "Review the current code changes (staged, unstaged, and untracked files)";
/// What codex prints above the findings of a review result (never for a plain answer).
const REVIEW_COMMENT: &str = "Review comment:";
/// hs-run's default continue prompt: a resumed session would send it.
const CONTINUE: &str = "The previous account hit its usage limit. Continue where you left off.";

/// acc1..acc3 logged in at the mock; the accounts in `limited` at their usage limit (resets 3 h
/// apart, or all at once with `same_reset`), the others answering `Review from accN`. The work
/// folder is a git repository on `main` with one commit and an uncommitted change.
fn world(limited: &[&str], same_reset: bool) -> RealWorld {
    let accounts = ["acc1", "acc2", "acc3"].map(|n| FakeAccount::new(n, "plus"));
    let w = RealWorld::new(&accounts.iter().collect::<Vec<_>>()).with_hs_run();
    let now = chrono::Utc::now().timestamp();
    for (i, name) in ["acc1", "acc2", "acc3"].iter().enumerate() {
        let id = format!("acct-{name}");
        if limited.contains(name) {
            let hours = if same_reset { 3 } else { 3 * (i as i64 + 1) };
            w.mock.set_behaviour(&id, Behaviour::usage_limit("plus", now + hours * 3600));
        } else {
            w.mock.set_behaviour(&id, Behaviour::Answer(format!("Review from {name}")));
        }
    }
    std::fs::write(w.work.join("main.rs"), "fn main() {\n    println!(\"hi\");\n}\n").unwrap();
    git(&w, &["init", "-q", "-b", "main"]);
    git(&w, &["add", "main.rs"]);
    git(&w, &["-c", "user.name=Test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "first"]);
    std::fs::write(w.work.join("main.rs"), "fn main() {\n    let x = 1 / 0;\n    println!(\"hi {x}\");\n}\n").unwrap();
    w
}

#[track_caller]
fn git(w: &RealWorld, args: &[&str]) {
    w.env.cmd("/usr/bin/env").arg("git").args(args).current_dir(&w.work).output().map(Run::from).unwrap().ok();
}

/// `hs-run <args>` in the work folder (`--` first unless `args` has it), stdin from `stdin`
/// (else /dev/null).
fn hs_run(w: &RealWorld, args: &[&str], stdin: Option<&str>) -> Run {
    let mut c = w.env.cmd("hs-run");
    c.current_dir(&w.work);
    if !args.contains(&"--") {
        c.arg("--");
    }
    c.args(args);
    if let Some(text) = stdin {
        let file = w.env.root().join("stdin.txt");
        std::fs::write(&file, text).unwrap();
        c.stdin(Stdio::from(std::fs::File::open(&file).unwrap()));
    }
    Run::from(c.output().expect("run hs-run"))
}

/// The review requests the mock saw: (account, status) each, and the records.
fn reviews(w: &RealWorld) -> (Vec<(String, u16)>, Vec<RequestRecord>) {
    let all: Vec<_> = w.mock.requests().into_iter().filter(RequestRecord::is_review).collect();
    (all.iter().map(|r| (r.account_id.clone().unwrap_or_default(), r.status)).collect(), all)
}

/// The switches hs-run recorded in events.jsonl.
fn swaps(w: &RealWorld) -> Vec<SwapEvent> {
    let text = std::fs::read_to_string(w.env.state_dir().join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| match shared::events::parse_line(l) {
            Ok(Some(Event::Swap(s))) => Some(s),
            _ => None,
        })
        .collect()
}

fn pairs(swaps: &[SwapEvent]) -> Vec<(&str, &str)> {
    swaps.iter().map(|s| (s.from.as_str(), s.to.as_str())).collect()
}

#[track_caller]
fn assert_no_overlay(w: &RealWorld) {
    let listed = w.env.run("hs-overlay", &["list", "--json"]).ok();
    assert!(listed.stdout.trim().is_empty(), "runtime homes left behind: {}", listed.stdout);
}

fn row(account: &str, status: u16) -> (String, u16) {
    (format!("acct-{account}"), status)
}

#[test]
fn real_review_at_the_limit_runs_again_on_acc2() {
    let w = world(&["acc1"], false);
    let out = hs_run(&w, &["review", "--uncommitted"], None);
    let said = format!("stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{said}");
    let (seen, records) = reviews(&w);
    assert_eq!(seen, [row("acc1", 429), row("acc2", 200)], "{said}");
    // the second run is the same review: the reviewer's own thread, the same target
    assert!(records.iter().all(|r| r.body.contains(UNCOMMITTED)), "{records:?}");
    // in a session of its own (not a resumed one), and nothing was sent as a plain turn
    let sessions: Vec<_> = records.iter().map(|r| r.session_id.clone().expect("session-id header")).collect();
    assert_ne!(sessions[0], sessions[1], "a fresh session on acc2");
    assert!(w.mock.turns().is_empty(), "a plain turn was sent: {:?}", w.mock.turns());
    assert!(w.mock.requests().iter().all(|r| !r.body.contains(CONTINUE)), "a continue prompt was sent");
    // codex printed the review result of acc2's reviewer, as a review
    assert!(out.stdout.contains(REVIEW_COMMENT) && out.stdout.contains("[P1] Review from acc2"), "{said}");
    assert!(out.stderr.contains("codex-hotswap: acc1 hit its usage limit (back at "), "{said}");
    assert!(out.stderr.contains("running the review again on acc2"), "{said}");
    // one switch, named after the session codex printed for the limited review
    let swaps = swaps(&w);
    assert_eq!(pairs(&swaps), [("acc1", "acc2")]);
    assert_eq!(swaps[0].kind, LimitKind::UsageLimit);
    assert_eq!(swaps[0].session_id.as_deref(), Some(sessions[0].as_str()));
    assert!(out.stderr.contains(&format!("session id: {}", sessions[0])), "{said}");
    assert_eq!(w.env.run("hs-rotate", &["current"]).ok().stdout.trim(), "acc2");
    assert_no_overlay(&w);
}

/// The other ways to ask for a review, `exec review` with exec's flags among them: each runs again
/// on acc2 with its own target.
#[test]
fn real_exec_review_forms_run_again_with_their_target() {
    let forms: &[(&[&str], &str)] = &[
        (&["exec", "review", "--base", "main"], "against the base branch 'main'"),
        (&["exec", "--json", "review", "--commit", "HEAD"], "introduced by commit HEAD"),
        (&["e", "review", "-c", "model_reasoning_effort=\"low\"", "check the division by zero"], "check the division by zero"),
        (&["review", "--commit", "HEAD", "--title", "First commit"], "First commit"),
    ];
    for (args, target) in forms {
        let w = world(&["acc1"], false);
        let out = hs_run(&w, args, None);
        let said = format!("{args:?}\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        assert_eq!(out.code, 0, "{said}");
        let (seen, records) = reviews(&w);
        assert_eq!(seen, [row("acc1", 429), row("acc2", 200)], "{said}");
        assert!(records.iter().all(|r| r.body.contains(target)), "{said}\n{records:?}");
        assert_ne!(records[0].session_id, records[1].session_id, "{said}");
        assert!(w.mock.turns().is_empty(), "{said}");
        assert_eq!(pairs(&swaps(&w)), [("acc1", "acc2")], "{said}");
        assert!(out.stdout.contains("[P1] Review from acc2"), "{said}");
        if args.contains(&"--json") {
            // stdout stays codex's JSON lines: the failed review, then the one that ran again
            let lines: Vec<serde_json::Value> = out.json_lines();
            let types: Vec<_> = lines.iter().filter_map(|v| v["type"].as_str()).collect();
            let failed = types.iter().position(|t| *t == "turn.failed");
            let completed = types.iter().rposition(|t| *t == "turn.completed");
            assert!(failed.is_some() && failed < completed, "{types:?}");
            assert_eq!(types.iter().filter(|t| **t == "thread.started").count(), 2, "two sessions: {types:?}");
        }
        assert_no_overlay(&w);
    }
}

/// acc1 and acc2 both out, with the same reset time: the review runs on acc3, once per account.
/// (`--no-continue` only drops the prompt of a resume: a review runs again all the same.)
#[test]
fn real_review_runs_again_until_an_account_answers() {
    let w = world(&["acc1", "acc2"], true);
    let out = hs_run(&w, &["--no-continue", "--", "review", "--uncommitted"], None);
    let said = format!("stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{said}");
    let (seen, records) = reviews(&w);
    assert_eq!(seen, [row("acc1", 429), row("acc2", 429), row("acc3", 200)], "{said}");
    let mut sessions: Vec<_> = records.iter().map(|r| r.session_id.clone()).collect();
    sessions.dedup();
    assert_eq!(sessions.len(), 3, "a session per run: {records:?}");
    assert_eq!(pairs(&swaps(&w)), [("acc1", "acc2"), ("acc2", "acc3")]);
    assert!(out.stdout.contains("[P1] Review from acc3"), "{said}");
    assert_no_overlay(&w);
}

/// `codex review -` reads its instructions from stdin, which the first run used up: hs-run says
/// so and does not run it again without them.
#[test]
fn real_review_with_instructions_from_stdin_is_not_run_again() {
    let w = world(&["acc1"], false);
    let out = hs_run(&w, &["review", "-"], Some("look for a division by zero"));
    let said = format!("stdout: {}\nstderr: {}", out.stdout, out.stderr);
    assert_eq!(out.code, 1, "codex's own code after the limit: {said}");
    let (seen, records) = reviews(&w);
    assert_eq!(seen, [row("acc1", 429)], "{said}");
    assert!(records[0].body.contains("look for a division by zero"));
    assert!(out.stderr.contains("this review read its instructions from stdin, so it cannot run again"), "{said}");
    assert!(swaps(&w).is_empty());
    assert!(w.mock.requests().iter().all(|r| r.account_id.as_deref() != Some("acct-acc2")), "acc2 was used");
    assert_no_overlay(&w);
}

/// The codex facts behind running a review again: the review has a thread (and rollout) of its
/// own under the session codex prints, and `codex exec resume <that session>` on another account
/// is a plain turn that carries none of the review: no reviewer thread, no review prompt, only
/// codex's note that the review was interrupted.
#[test]
fn real_codex_resumes_a_limited_review_as_a_plain_turn() {
    let w = world(&["acc1"], false);
    let home = w.env.root().join("review-home");
    w.mock.codex_home(&home, &FakeAccount::new("acc1", "plus"), &[&w.work]);
    let run = |args: &[&str]| Run::from(codex_command(&w.env, &w.mock, &home, &w.work).args(args).output().unwrap());
    let first = run(&["review", "--uncommitted"]);
    assert_eq!(first.code, 1, "{first:?}");
    assert!(first.stderr.contains("Review was interrupted. Please re-run /review"), "{first:?}");
    let (_, limited) = reviews(&w);
    let session = limited[0].session_id.clone().expect("session-id header");
    let review_thread = limited[0].thread_id.clone().expect("thread-id header");
    assert_ne!(session, review_thread, "the review runs in a thread of its own");
    assert!(first.stderr.contains(&format!("session id: {session}")), "{first:?}");
    // two rollouts: the session's, and the review thread's naming it as its parent
    let sessions = home.join("sessions");
    let meta = |id: &str| {
        let p = shared::run::rollout_watch::find_session(&sessions, id).unwrap_or_else(|| panic!("no rollout of {id}"));
        shared::rollout::read_session_meta(&p).unwrap()
    };
    assert_eq!(meta(&session).parent_thread_id, None);
    assert_eq!(meta(&review_thread).parent_thread_id.as_deref(), Some(session.as_str()));
    // resume the session on acc2
    w.mock.login(&home, &FakeAccount::new("acc2", "plus"));
    let before = w.mock.requests().len();
    let resumed = run(&["exec", "resume", &session, CONTINUE]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let on_acc2 = |r: &RequestRecord| r.account_id.as_deref() == Some("acct-acc2") && (r.is_turn() || r.is_review());
    let next = w.mock.wait_for_from(before, on_acc2, Duration::ZERO).expect("a request on acc2");
    assert!(next.is_turn() && !next.headers.contains_key("x-openai-subagent"), "a plain turn: {next:?}");
    assert_eq!(next.session_id.as_deref(), Some(session.as_str()), "the same session");
    assert!(next.body.contains("Review was interrupted") && next.body.contains(CONTINUE), "{}", next.body);
    assert!(!next.body.contains(UNCOMMITTED), "the review prompt is not in the resumed session");
    assert!(!resumed.stdout.contains(REVIEW_COMMENT), "no review result: {resumed:?}");
    assert_eq!(reviews(&w).0.len(), 1, "no review request after the resume");
}
