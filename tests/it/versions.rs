//! Codex versions: two real versions on one shared store (`cross_version`, run once by
//! `shell/test` with the newest and the oldest version under test).

use crate::support::env::{repo_root, Run, TestEnv};
use crate::support::mock::{is_real_codex_test, real_codex};
use shared::codex_versions::tested;

/// `codex-hotswap doctor` and `hs-config codex --json` with the fake codex naming `version`.
fn doctor_with(t: &mut TestEnv, version: &str) -> (Run, serde_json::Value) {
    t.set("FAKE_CODEX_VERSION", version);
    let doctor = t.run(&repo_root().join("shell/codex-hotswap").to_string_lossy(), &["doctor"]);
    (doctor, t.run("hs-config", &["codex", "--json"]).ok().json())
}

/// `version` with its minor number moved by `by` (`0.171.0`, 1 → `0.172.0`).
fn minor(version: &str, by: i64) -> String {
    let n: Vec<i64> = version.split('.').map(|p| p.parse().unwrap()).collect();
    format!("{}.{}.{}", n[0], n[1] + by, n[2])
}

/// The tested versions ship with the tools (compiled from `tests/codex-versions`, the list
/// `shell/test` installs), and doctor names the installed version against them: a version outside
/// them is a warning, not a problem.
#[test]
fn doctor_names_the_codex_version_and_warns_outside_the_tested_ones() {
    let list = std::fs::read_to_string(repo_root().join("tests/codex-versions")).unwrap();
    let (oldest, newest) = (tested()[0].clone(), tested().last().unwrap().clone());
    assert!(list.lines().any(|l| l.trim() == oldest) && list.lines().any(|l| l.trim() == newest), "{list}");
    let shown = tested().join(", ");
    let mut t = TestEnv::new();
    t.use_fake_codex();
    let fake = crate::support::env::bin("fake-codex");

    let (ok, json) = doctor_with(&mut t, &newest);
    let want = serde_json::json!({"type": "codex", "path": fake, "from": "env", "version": newest, "tested": tested(), "standing": "tested"});
    assert_eq!(json, want);
    assert!(ok.stdout.contains(&format!("ok       real codex: {} (codex-cli {newest})\n", fake.display())), "{}", ok.stdout);
    assert!(ok.stdout.contains(&format!("ok       codex-cli {newest} is a tested version (tested: {shown})\n")), "{}", ok.stdout);
    assert!(!ok.stdout.contains("warning"), "{}", ok.stdout);
    let status = |r: &Run| r.stdout.lines().last().unwrap_or_default().to_string();

    let newer = minor(&newest, 1);
    let (r, json) = doctor_with(&mut t, &newer);
    assert_eq!((json["version"].as_str(), json["standing"].as_str()), (Some(newer.as_str()), Some("newer")));
    let warning = format!(
        "warning  codex-cli {newer} is newer than the newest version codex-hotswap was tested with ({newest}): if switching misbehaves, install that one (npm install -g @openai/codex@{newest}) and report it\n"
    );
    assert!(r.stdout.contains(&format!("(codex-cli {newer})\n")) && r.stdout.contains(&warning), "{}", r.stdout);
    assert_eq!((r.code, status(&r)), (ok.code, status(&ok)), "a warning is not a problem:\n{}", r.stdout);

    let older = minor(&oldest, -1);
    let (r, json) = doctor_with(&mut t, &older);
    assert_eq!(json["standing"], "older");
    let warning = format!(
        "warning  codex-cli {older} is older than the oldest version codex-hotswap was tested with ({oldest}): update codex (npm install -g @openai/codex@{newest})\n"
    );
    assert!(r.stdout.contains(&warning), "{}", r.stdout);
    assert_eq!((r.code, status(&r)), (ok.code, status(&ok)), "{}", r.stdout);

    // a pre-release of the newest: not itself tested, not newer
    let between = format!("{newest}-alpha.1");
    let (r, json) = doctor_with(&mut t, &between);
    assert_eq!(json["standing"], "between");
    assert!(r.stdout.contains(&format!("info     codex-cli {between} was not tested itself (tested: {shown})\n")), "{}", r.stdout);

    let (r, json) = doctor_with(&mut t, "garbage");
    assert_eq!((&json["version"], &json["standing"]), (&serde_json::Value::Null, &serde_json::Value::Null));
    assert!(r.stdout.contains("(version unknown)\n") && r.stdout.contains("warning  cannot tell the version of"), "{}", r.stdout);
}

/// `shell/test` runs the tests of modules named `real…` with every codex version; a test
/// elsewhere that starts the real codex would run with one version only, so it is refused.
#[test]
fn only_tests_in_a_real_module_get_the_real_codex() {
    let refused = std::panic::catch_unwind(real_codex).expect_err("refused");
    let msg = refused.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("versions::only_tests_in_a_real_module_get_the_real_codex runs the real codex: put it in a module named `real`"), "{msg}");
    for (path, real) in [
        ("run::real::real_tui_moves", true),
        ("real_harness::tui_answers", true),
        ("overlay::real_codex::two_overlays", true),
        ("detect::real::capture_real_fixtures", true),
        ("real_review", false),
        ("review::real_review_at_the_limit", false),
        ("surreal::x", false),
        ("realm::x", false),
    ] {
        assert_eq!(is_real_codex_test(path), real, "{path}");
    }
}

/// A codex on a remote app server (`--remote`, the TUI's and, since codex 0.171.0, exec's) uses
/// the server's login: hs-run runs it untouched, in the user's own CODEX_HOME, on no account.
#[test]
fn remote_sessions_run_untouched() {
    let mut t = TestEnv::new();
    t.add_logged_in("acc1");
    let log = t.use_fake_codex();
    let user_home = t.root().join("my-codex-home");
    t.set("CODEX_HOME", &user_home);
    for args in [&["exec", "--remote", "ws://127.0.0.1:9", "hi"][..], &["--remote=ws://127.0.0.1:9", "hi"]] {
        t.run("hs-run", &[&["--"][..], args].concat()).ok();
    }
    let starts: Vec<serde_json::Value> =
        std::fs::read_to_string(log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    for s in &starts {
        assert_eq!(s["codex_home"].as_str(), Some(user_home.to_str().unwrap()), "{s}");
    }
    assert!(!t.state_dir().join("runtime").exists() || std::fs::read_dir(t.state_dir().join("runtime")).unwrap().count() == 0);
}

/// The newest and the oldest codex of `tests/codex-versions` on one shared store, through hs-run:
/// what one version writes, the other lists and resumes, whichever ran first (and so whichever
/// migrated `state_5.sqlite` last).
mod cross_version {
    use crate::support::auth::FakeAccount;
    use crate::support::env::Run;
    use crate::support::mock::{real_codexes, RequestRecord};
    use crate::support::real::RealWorld;
    use crate::support::tui::Tui;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(90);
    const READY: &str = "Ask Codex to do anything";

    struct Codex {
        version: String,
        path: PathBuf,
    }

    /// The newest and the oldest codex `shell/test` installed.
    fn newest_and_oldest() -> (Codex, Codex) {
        let all = real_codexes();
        assert!(
            all.len() >= 2,
            "this test needs two codex versions (CODEX_HOTSWAP_TEST_CODEXES holds {all:?}): run it with shell/test and two versions in tests/codex-versions"
        );
        let codex = |(version, path): &(String, PathBuf)| Codex { version: version.clone(), path: path.clone() };
        (codex(&all[0]), codex(&all[all.len() - 1]))
    }

    /// hs-run with `codex`, in the work folder.
    fn hs_run(w: &RealWorld, codex: &Codex) -> std::process::Command {
        let mut c = w.env.cmd("hs-run");
        c.current_dir(&w.work).env("CODEX_HOTSWAP_REAL_CODEX", &codex.path);
        c
    }

    /// `hs-run -- exec --skip-git-repo-check args…` with `codex`: must succeed; its session id.
    fn exec(w: &RealWorld, codex: &Codex, args: &[&str]) -> String {
        let r = Run::from(hs_run(w, codex).args(["exec", "--skip-git-repo-check"]).args(args).output().unwrap());
        assert_eq!(r.code, 0, "codex-cli {} exec {args:?}\nstdout: {}\nstderr: {}", codex.version, r.stdout, r.stderr);
        r.stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("session id: "))
            .unwrap_or_else(|| panic!("codex-cli {}: no session id in {r:?}", codex.version))
            .trim()
            .to_string()
    }

    fn turn_with(w: &RealWorld, prompt: &str) -> RequestRecord {
        w.mock.wait_for(|r| r.is_turn() && r.body.contains(prompt), WAIT).unwrap_or_else(|| panic!("no turn for {prompt:?}"))
    }

    /// A TUI session through hs-run with `codex`: `prompt` answered, then `/quit`; its session id.
    fn tui_session(w: &RealWorld, codex: &Codex, args: &[&str], prompt: &str) -> (String, Tui) {
        let mut cmd = hs_run(w, codex);
        cmd.args(args);
        let tui = Tui::spawn(cmd, 30, 120);
        let v = &codex.version;
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("codex-cli {v}: {e}"));
        tui.submit(prompt);
        let turn = turn_with(w, prompt);
        tui.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("codex-cli {v}: {e}"));
        (turn.session_id.expect("a session-id header"), tui)
    }

    fn quit(codex: &Codex, mut tui: Tui) {
        tui.submit("/quit");
        let st = tui.wait_exit(WAIT).unwrap_or_else(|| panic!("codex-cli {} did not quit:\n{}", codex.version, tui.screen()));
        assert_eq!(st.code(), Some(0), "codex-cli {}:\n{}", codex.version, tui.screen());
    }

    /// `hs-run -- resume` with `codex`: the picker lists the one TUI session there is (another
    /// version's, under the title the mock gave it; exec sessions are not listed); picked, it
    /// continues `session` (whose first prompt was `preview`) with `prompt`.
    fn pick_and_continue(w: &RealWorld, codex: &Codex, preview: &str, session: &str, prompt: &str) {
        let mut cmd = hs_run(w, codex);
        cmd.arg("resume");
        let tui = Tui::spawn(cmd, 30, 120);
        let v = &codex.version;
        tui.wait_for_text("Mock thread", WAIT).unwrap_or_else(|e| panic!("codex-cli {v}'s resume picker: {e}"));
        tui.send(b"\r");
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("codex-cli {v}: {e}"));
        tui.submit(prompt);
        let turn = turn_with(w, prompt);
        assert_eq!(turn.session_id.as_deref(), Some(session), "codex-cli {v} continues the picked session");
        assert!(turn.body.contains(preview), "codex-cli {v}: the old conversation is part of the turn");
        tui.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("codex-cli {v}: {e}"));
        quit(codex, tui);
    }

    /// The newest migration applied to `state_5.sqlite`, and the codex version of each thread row.
    fn thread_index(shared: &Path) -> (i64, Vec<(String, String)>) {
        let db = rusqlite::Connection::open_with_flags(shared.join("state_5.sqlite"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the shared store has state_5.sqlite");
        let migration = db.query_row("SELECT max(version) FROM _sqlx_migrations WHERE success", [], |r| r.get(0)).unwrap();
        let mut q = db.prepare("SELECT id, cli_version FROM threads ORDER BY created_at_ms").unwrap();
        let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect();
        (migration, rows)
    }

    /// `first` starts a TUI and an exec session on a fresh shared store; `second` resumes the
    /// exec one, lists and continues the TUI one (the resume picker) and starts its own; `first`
    /// then resumes that one. Every run works, and the thread index keeps every session.
    fn alternate(first: &Codex, second: &Codex) {
        let one = FakeAccount::new("one", "plus");
        let w = RealWorld::new(&[&one]).with_hs_run_on(&first.path);
        let (v1, v2) = (&first.version, &second.version);

        let typed = format!("typed into codex-cli {v1}");
        let (t1, tui) = tui_session(&w, first, &[], &typed);
        quit(first, tui);
        let by_first = format!("written by codex-cli {v1}");
        let e1 = exec(&w, first, &[&by_first]);
        let (migration_after_first, _) = thread_index(&w.shared());

        let resumed = format!("codex-cli {v2} resumes it");
        assert_eq!(exec(&w, second, &["resume", &e1, &resumed]), e1);
        let turn = turn_with(&w, &resumed);
        assert_eq!(turn.session_id.as_deref(), Some(e1.as_str()));
        assert!(turn.body.contains(&by_first), "codex-cli {v2} resumed the conversation of codex-cli {v1}");
        pick_and_continue(&w, second, &typed, &t1, &format!("codex-cli {v2} picked it"));

        let by_second = format!("written by codex-cli {v2}");
        let e2 = exec(&w, second, &[&by_second]);
        let back = format!("codex-cli {v1} resumes it");
        assert_eq!(exec(&w, first, &["resume", &e2, &back]), e2);
        assert!(turn_with(&w, &back).body.contains(&by_second));

        let (migration, rows) = thread_index(&w.shared());
        assert!(migration >= migration_after_first, "the store never goes back: {migration} < {migration_after_first}");
        for id in [&t1, &e1, &e2] {
            assert!(rows.iter().any(|(r, _)| r == id), "{id} in the thread index: {rows:?}");
        }
        assert!(w.mock.requests().iter().all(|r| r.status != 401), "every request was authorised:\n{}", w.requests_summary());
        eprintln!("codex-cli {v1} then {v2}: migrations {migration_after_first} then {migration}; threads {rows:?}");
    }

    #[test]
    fn an_older_codex_works_on_a_store_a_newer_one_upgraded() {
        let (newest, oldest) = newest_and_oldest();
        alternate(&newest, &oldest);
    }

    #[test]
    fn a_newer_codex_works_on_a_store_an_older_one_made() {
        let (newest, oldest) = newest_and_oldest();
        alternate(&oldest, &newest);
    }
}

/// What the npm launcher of codex 0.171.0 changed: it passes on every signal until the native
/// codex exits (0.169.0 passed on the first only). hs-run's ways of stopping codex, run with every
/// codex version: codex ends by itself (no SIGKILL), nothing is left running, and the session
/// resumes.
mod real {
    use crate::support::auth::FakeAccount;
    use crate::support::env::Run;
    use crate::support::mock::{real_codex_version, Behaviour};
    use crate::support::real::RealWorld;
    use crate::support::tui::Tui;
    use std::os::unix::process::CommandExt;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(60);
    const READY: &str = "Ask Codex to do anything";

    fn world() -> RealWorld {
        RealWorld::new(&[&FakeAccount::new("one", "plus")]).with_hs_run()
    }

    fn hs_run(w: &RealWorld) -> std::process::Command {
        let mut c = w.env.cmd("hs-run");
        c.current_dir(&w.work);
        c
    }

    fn kill(pid: i32, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
    }

    /// hs-run stopped no codex with SIGKILL, and left no runtime home behind.
    #[track_caller]
    fn assert_codex_ended_by_itself(w: &RealWorld) {
        let log = std::fs::read_to_string(w.hs_run_log()).unwrap();
        assert!(!log.contains("SIGKILL"), "codex-cli {} needed a SIGKILL:\n{log}", real_codex_version());
        let left: Vec<_> = std::fs::read_dir(w.env.state_dir().join("runtime")).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "runtime homes left: {left:?}");
    }

    /// `hs-run -- exec resume <session> <prompt>`: the same thread goes on, its conversation included.
    #[track_caller]
    fn assert_resumes(w: &RealWorld, session: &str, earlier: &str) {
        let prompt = "after the signal";
        let r = Run::from(hs_run(w).args(["exec", "--skip-git-repo-check", "resume", session, prompt]).output().unwrap());
        assert_eq!(r.code, 0, "codex-cli {}: {r:?}", real_codex_version());
        let turn = w.mock.wait_for(|t| t.is_turn() && t.body.contains(prompt), WAIT).expect("the resumed turn");
        assert_eq!(turn.session_id.as_deref(), Some(session));
        assert!(turn.body.contains(earlier), "the resumed thread carries the old conversation");
    }

    /// codex (0.169.0 and 0.171.0 alike) names a TUI session after the title it asks the backend
    /// for (the mock's "Mock thread") in `session_index.jsonl`, and `resume` takes that name: the
    /// index is written through the runtime home's link into the shared store, so the name
    /// outlives the runtime home, and a session resumed by name switches accounts like any other.
    #[test]
    fn session_names_outlive_the_runtime_home_and_resume_by_name_switches() {
        let (one, two) = (FakeAccount::new("one", "plus"), FakeAccount::new("two", "plus"));
        let w = RealWorld::new(&[&one, &two]).with_hs_run();
        let mut tui = Tui::spawn(hs_run(&w), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("named session");
        let turn = w.mock.wait_for(|t| t.is_turn() && t.body.contains("named session"), WAIT).expect("a turn");
        let session = turn.session_id.unwrap();
        w.mock.wait_for(|r| r.is_title(), WAIT).expect("codex asks for a title");
        tui.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("/quit");
        assert_eq!(tui.wait_exit(WAIT).and_then(|s| s.code()), Some(0), "{}", tui.screen());
        assert_codex_ended_by_itself(&w);

        let index = w.shared().join("session_index.jsonl");
        assert!(std::fs::symlink_metadata(&index).unwrap().is_file(), "the shared store holds the index itself");
        let text = std::fs::read_to_string(&index).unwrap();
        let named: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(named.iter().any(|e| e["id"] == session.as_str() && e["thread_name"] == "Mock thread"), "{text}");

        let reset = chrono::Utc::now().timestamp() + 3600;
        w.mock.set_behaviour("acct-one", Behaviour::usage_limit("plus", reset));
        w.mock.set_behaviour("acct-two", Behaviour::Answer("answered on two".into()));
        let r = Run::from(hs_run(&w).args(["exec", "--skip-git-repo-check", "resume", "Mock thread", "go on by name"]).output().unwrap());
        assert_eq!(r.code, 0, "codex-cli {}: {r:?}", real_codex_version());
        assert!(r.stdout.contains("answered on two"), "{r:?}");
        let on_two = w.mock.wait_for(|t| t.is_turn() && t.account_id.as_deref() == Some("acct-two"), WAIT).expect("a turn on two");
        assert_eq!(on_two.session_id.as_deref(), Some(session.as_str()), "the named session went on under two");
        assert!(on_two.body.contains("named session"));
    }

    /// `kill <hs-run>` (SIGTERM) while the TUI runs: hs-run passes it to codex's process group
    /// (the launcher and the native codex each get it; the launcher passes it on too), codex
    /// quits, hs-run exits 143.
    #[test]
    fn a_sigterm_to_hs_run_ends_the_tui_and_the_session_resumes() {
        let w = world();
        let mut tui = Tui::spawn(hs_run(&w), 30, 110);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit("before the signal");
        let turn = w.mock.wait_for(|t| t.is_turn() && t.body.contains("before the signal"), WAIT).expect("a turn");
        tui.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        kill(tui.pid() as i32, nix::sys::signal::Signal::SIGTERM);
        let st = tui.wait_exit(WAIT).unwrap_or_else(|| panic!("hs-run still runs:\n{}", tui.screen()));
        assert_eq!(st.code(), Some(143), "{}", tui.screen());
        assert_codex_ended_by_itself(&w);
        assert_resumes(&w, turn.session_id.as_deref().unwrap(), "before the signal");
    }

    /// Ctrl-C in the terminal during `codex exec`: the terminal signals the whole foreground
    /// group (hs-run, the launcher, the native codex) and hs-run passes it on as well, so the
    /// native codex 0.171.0 gets SIGINT three times. It interrupts the turn and exits as alone.
    #[test]
    fn ctrl_c_in_the_terminal_interrupts_an_exec() {
        let w = world();
        // a backend that fails: codex retries and waits between tries, so the turn is running
        let failing = Behaviour::Status { code: 500, body: r#"{"error":{"message":"try again"}}"#.into() };
        w.mock.set_behaviour("acct-one", failing);
        let child = hs_run(&w)
            .args(["exec", "--skip-git-repo-check", "before the signal"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let turn = w.mock.wait_for(|t| t.is_turn() && t.body.contains("before the signal"), WAIT).expect("a turn");
        kill(-(child.id() as i32), nix::sys::signal::Signal::SIGINT);
        let out = Run::from(child.wait_with_output().unwrap());
        assert!(out.stdout.contains("turn interrupted") || out.stderr.contains("turn interrupted"), "{out:?}");
        assert_eq!(out.code, 1, "codex's own code for an interrupted exec: {out:?}");
        assert!(!out.stderr.contains("hs-detect failed"), "the detectors are not the terminal's to stop: {out:?}");
        assert_codex_ended_by_itself(&w);
        w.mock.set_behaviour("acct-one", Behaviour::Answer("answered after the signal".into()));
        assert_resumes(&w, turn.session_id.as_deref().unwrap(), "before the signal");
    }
}
