//! hs-rotate in a sealed HOME.

use crate::support::env::TestEnv;
use serde_json::Value;

fn with_accounts(names: &[&str]) -> TestEnv {
    let t = TestEnv::new();
    for n in names {
        t.run("hs-vault", &["add", n]).ok();
    }
    t
}

fn status(t: &TestEnv) -> Vec<Value> {
    t.run("hs-rotate", &["status", "--json"]).ok().json_lines()
}

fn entry<'a>(st: &'a [Value], name: &str) -> &'a Value {
    st.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("{name} not in {st:?}"))
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap_or_else(|| panic!("not a time: {v}")).parse().unwrap()
}

#[test]
fn status_current_use() {
    let t = with_accounts(&["acc1", "acc2", "acc3"]);
    let st = status(&t);
    assert_eq!(st.len(), 3);
    assert_eq!(st[0]["name"], "acc1");
    assert_eq!(st[0]["current"], true);
    assert_eq!(st[1]["current"], false);
    for e in &st {
        assert_eq!(e["state"], "available");
        assert!(e["until"].is_null() && e["reason"].is_null());
        assert!(e.get("primary_used_percent").is_none(), "no telemetry recorded yet");
    }
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc1\n");
    t.run("hs-rotate", &["use", "acc3"]).ok();
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc3\n");
    let r = t.run("hs-rotate", &["use", "zzz"]).code(2);
    assert_eq!(r.stderr.trim(), "hs-rotate: unknown account 'zzz' (known: acc1, acc2, acc3)");
    let human = t.run("hs-rotate", &["status"]).ok().stdout;
    let acc3 = human.lines().find(|l| l.contains("acc3")).unwrap();
    assert_eq!(acc3, "* acc3  available", "{human}");
    assert!(human.contains("no usage seen yet"), "{human}");
}

/// A `rate_limits` line of acc `name` with the 5h window at `pct`, reset in `secs`.
fn usage_line(name: &str, pct: f64, secs: i64, weekly_pct: f64) -> String {
    let now = chrono::Utc::now();
    let r = |s: i64| (now + chrono::Duration::seconds(s)).to_rfc3339();
    serde_json::json!({"type":"rate_limits","account":name,"at":now.to_rfc3339(),
        "primary":{"used_percent":pct,"window_minutes":300,"resets_at":r(secs)},
        "secondary":{"used_percent":weekly_pct,"window_minutes":10080,"resets_at":r(5 * 86400)}})
    .to_string()
}

#[test]
fn near_limit_accounts_are_passed_over_by_new_sessions_and_said_so() {
    let t = with_accounts(&["acc1", "acc2", "acc3"]);
    let lines = [usage_line("acc1", 96.0, 4320, 12.0), usage_line("acc2", 40.0, 3600, 98.5)].join("\n");
    t.run_stdin("hs-rotate", &["record", "--event", "-"], lines.as_bytes()).ok();
    let st = status(&t);
    let a1 = entry(&st, "acc1");
    assert_eq!((a1["state"].as_str(), a1["current"].as_bool()), (Some("near_limit"), Some(true)));
    assert_eq!(a1["reason"], "near limit: 5h window at 96% (switch at 95%)");
    assert_eq!(a1["windows"][0]["name"], "5h");
    assert_eq!((a1["windows"][0]["over"].as_bool(), a1["windows"][0]["switch_at"].as_f64()), (Some(true), Some(95.0)));
    assert_eq!((a1["windows"][1]["name"].as_str(), a1["windows"][1]["over"].as_bool()), (Some("week"), Some(false)));
    assert_eq!(a1["primary_window_minutes"], 300);
    // acc2's weekly window is over its 98%
    assert_eq!(entry(&st, "acc2")["state"], "near_limit");
    // a new session starts on acc3; the current account stays acc1
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc3\n");
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc1\n");
    let human = t.run("hs-rotate", &["status"]).ok().stdout;
    assert!(human.contains("* acc1  near limit: 5h window at 96% (switch at 95%) until"), "{human}");
    assert!(human.contains("resets in 1h 1") && human.contains(" 96%"), "{human}");
    assert!(!human.contains('\x1b'), "no colour off a terminal: {human}");
    // every account near its limit: the least used one; a boundary switch finds none
    t.run_stdin("hs-rotate", &["record", "--event", "-"], usage_line("acc3", 97.0, 3600, 1.0).as_bytes()).ok();
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc1\n");
    let r = t.run("hs-rotate", &["next", "--under-threshold", "--dry-run"]).code(1);
    assert!(r.stderr.contains("no other account available"), "{}", r.stderr);
    assert_eq!(t.run("hs-rotate", &["next", "--dry-run"]).ok().stdout, "acc3\n");
    // off: nobody is near a limit
    t.run("hs-config", &["set", "switch_at", "off"]).ok();
    assert!(status(&t).iter().all(|e| e["state"] == "available"));
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc1\n");
    // per window length: 5h at 96.5%, weekly at 99%
    t.run("hs-config", &["set", "switch_at", "5h=96.5,7d=99"]).ok();
    assert_eq!(t.run("hs-config", &["get", "switch_at"]).ok().stdout, "{\"5h\":96.5,\"7d\":99.0}\n");
    let st = status(&t);
    let states: Vec<&str> = ["acc1", "acc2", "acc3"].iter().map(|n| entry(&st, n)["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["available", "available", "near_limit"]);
}

#[test]
fn stale_usage_is_ignored() {
    let t = with_accounts(&["acc1", "acc2"]);
    // seen at 99%, but its window reset a minute ago
    let old = usage_line("acc1", 99.0, -60, 10.0);
    t.run_stdin("hs-rotate", &["record", "--event", "-"], old.as_bytes()).ok();
    let a1 = entry(&status(&t), "acc1").clone();
    assert_eq!(a1["state"], "available");
    assert_eq!((a1["windows"][0]["stale"].as_bool(), a1["windows"][0]["over"].as_bool()), (Some(true), Some(false)));
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc1\n");
    assert!(t.run("hs-rotate", &["status"]).ok().stdout.contains("the window has reset since"));
}

#[test]
fn bad_switch_at_is_refused_and_nothing_written() {
    let t = with_accounts(&["acc1"]);
    for bad in ["5h=120", "weekly=90", "sometimes", "5h"] {
        let r = t.run("hs-config", &["set", "switch_at", bad]).code(2);
        assert!(r.stderr.starts_with("hs-config: switch_at") || r.stderr.starts_with("hs-config: config switch_at"), "{bad}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    }
    assert!(!t.config_dir().join("config.json").exists());
    // a hand-edited bad value is named by every tool that reads it
    std::fs::write(t.config_dir().join("config.json"), r#"{"version":1,"switch_at":{"5h":"lots"}}"#).unwrap();
    let r = t.run("hs-rotate", &["pick"]).code(2);
    assert!(r.stderr.contains("config switch_at: invalid percent \"lots\" for 5h"), "{}", r.stderr);
}

#[test]
fn no_accounts_is_a_none_answer() {
    let t = TestEnv::new();
    for cmd in ["current", "pick", "next"] {
        let r = t.run("hs-rotate", &[cmd]).code(1);
        assert!(r.stderr.contains("no accounts registered"), "{cmd}: {}", r.stderr);
    }
}

#[test]
fn exhaust_next_pick_and_expiry() {
    let t = with_accounts(&["acc1", "acc2", "acc3"]);
    let before = chrono::Utc::now();
    t.run("hs-rotate", &["exhaust", "acc1", "--for", "1h30m", "--reason", "weekly"]).ok();
    let st = status(&t);
    let a1 = entry(&st, "acc1");
    assert_eq!(a1["state"], "exhausted");
    assert_eq!(a1["reason"], "weekly");
    let until = time(&a1["until"]);
    assert!(until >= before + chrono::Duration::minutes(90) - chrono::Duration::seconds(1), "{until}");
    assert!(until <= chrono::Utc::now() + chrono::Duration::minutes(90), "{until}");

    // pick does not move the current account; next does, skipping exhausted ones
    assert_eq!(t.run("hs-rotate", &["pick"]).ok().stdout, "acc2\n");
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc1\n");
    t.run("hs-rotate", &["exhaust", "acc2", "--until", "2099-01-01T00:00:00Z"]).ok();
    assert_eq!(t.run("hs-rotate", &["next", "--dry-run"]).ok().stdout, "acc3\n");
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc1\n");
    assert_eq!(t.run("hs-rotate", &["next"]).ok().stdout, "acc3\n");
    assert_eq!(t.run("hs-rotate", &["current"]).ok().stdout, "acc3\n");

    // every account out: exit 1 and say who comes back first
    t.run("hs-rotate", &["exhaust", "acc3", "--for", "5h"]).ok();
    let r = t.run("hs-rotate", &["next"]).code(1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("the first back is acc1 at "), "{}", r.stderr);
    let r = t.run("hs-rotate", &["pick"]).code(1);
    assert!(r.stderr.starts_with("hs-rotate: no account available; the first back is acc1"), "{}", r.stderr);

    // an exhaustion whose time has passed ends by itself
    t.run("hs-rotate", &["exhaust", "acc1", "--until", "2020-01-01T00:00:00Z"]).ok();
    assert_eq!(entry(&status(&t), "acc1")["state"], "available");
    assert_eq!(t.run("hs-rotate", &["next"]).ok().stdout, "acc1\n");

    // reset one, then all
    t.run("hs-rotate", &["reset", "acc2"]).ok();
    assert_eq!(entry(&status(&t), "acc2")["state"], "available");
    assert_eq!(entry(&status(&t), "acc3")["state"], "exhausted");
    t.run("hs-rotate", &["reset"]).ok();
    assert!(status(&t).iter().all(|e| e["state"] == "available"));
    t.run("hs-rotate", &["reset", "ghost"]).code(2);
}

const LIMIT: &str = r#"{"type":"limit","kind":"usage_limit","text":"You’ve hit your usage limit. Try again at 8:13 PM.","resets_at":"2099-11-24T20:13:00Z","source":"screen","account":"acc2","at":"2026-11-24T18:00:00Z"}"#;

#[test]
fn exhaust_from_an_event() {
    let t = with_accounts(&["acc1", "acc2"]);
    let input = format!("codex output line\n{{\"type\":\"something_new\"}}\n{LIMIT}\n");
    t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], input.as_bytes()).ok();
    let a2 = entry(&status(&t), "acc2").clone();
    assert_eq!(a2["state"], "exhausted");
    assert_eq!(a2["until"], "2099-11-24T20:13:00Z");
    assert_eq!(a2["kind"], "usage_limit");
    assert_eq!(a2["reason"], "You’ve hit your usage limit. Try again at 8:13 PM.");

    // NAME overrides the event's account; --for overrides its reset time
    let before = chrono::Utc::now();
    t.run_stdin("hs-rotate", &["exhaust", "acc1", "--for", "10m", "--event", "-"], LIMIT.as_bytes()).ok();
    let u = time(&entry(&status(&t), "acc1")["until"]);
    assert!(u >= before + chrono::Duration::minutes(10) - chrono::Duration::seconds(1) && u <= chrono::Utc::now() + chrono::Duration::minutes(10));

    // no reset time: the configured default cooldown
    std::fs::write(t.config_dir().join("config.json"), r#"{"version":1,"default_cooldown":"45m"}"#).unwrap();
    t.run("hs-rotate", &["reset"]).ok();
    let no_reset = LIMIT.replace(r#""resets_at":"2099-11-24T20:13:00Z""#, r#""resets_at":null"#);
    let before = chrono::Utc::now();
    t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], no_reset.as_bytes()).ok();
    let u = time(&entry(&status(&t), "acc2")["until"]);
    assert!(u >= before + chrono::Duration::minutes(45) - chrono::Duration::seconds(1) && u <= chrono::Utc::now() + chrono::Duration::minutes(45));

    // nothing to read: a none answer; bad input: errors, state untouched
    let state = std::fs::read(t.state_dir().join("rotation.json")).unwrap();
    t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], b"just text\n").code(1);
    let r = t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], b"{\"type\":\"limit\",\n").code(2);
    assert!(r.stderr.starts_with("hs-rotate: stdin:1:"), "{}", r.stderr);
    let anon = LIMIT.replace(r#""account":"acc2""#, r#""account":null"#);
    let r = t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], anon.as_bytes()).code(2);
    assert!(r.stderr.contains("names no account"), "{}", r.stderr);
    let r = t.run_stdin("hs-rotate", &["exhaust", "--event", "-"], LIMIT.replace("acc2", "acc9").as_bytes()).code(2);
    assert!(r.stderr.contains("unknown account 'acc9'"), "{}", r.stderr);
    assert_eq!(std::fs::read(t.state_dir().join("rotation.json")).unwrap(), state);
}

#[test]
fn record_telemetry_and_soonest_reset_policy() {
    let t = with_accounts(&["acc1", "acc2", "acc3"]);
    let ev = |acc: &str, used: f64, reset: &str| {
        format!(
            r#"{{"type":"rate_limits","primary":{{"used_percent":{used},"window_minutes":300,"resets_at":"{reset}"}},"secondary":{{"used_percent":10.0,"window_minutes":10080,"resets_at":null}},"limit_id":"codex","plan_type":null,"account":"{acc}","at":"2026-11-24T18:00:00Z"}}"#
        )
    };
    let lines = format!("{}\n{}\n", ev("acc2", 42.5, "2099-01-01T05:00:00Z"), ev("acc3", 80.0, "2099-01-01T01:00:00Z"));
    t.run_stdin("hs-rotate", &["record", "--event", "-"], lines.as_bytes()).ok();
    let st = status(&t);
    let a2 = entry(&st, "acc2");
    assert_eq!(a2["primary_used_percent"], 42.5);
    assert_eq!(a2["secondary_used_percent"], 10.0);
    assert_eq!(a2["resets_at"], "2099-01-01T05:00:00Z");
    assert_eq!(a2["seen_at"], "2026-11-24T18:00:00Z");
    assert!(entry(&st, "acc1").get("primary_used_percent").is_none());

    // --account overrides; an unknown one is refused
    t.run_stdin("hs-rotate", &["record", "--event", "-", "--account", "acc1"], ev("x", 5.0, "2099-01-01T09:00:00Z").as_bytes()).ok();
    assert_eq!(entry(&status(&t), "acc1")["primary_used_percent"], 5.0);
    t.run_stdin("hs-rotate", &["record", "--event", "-", "--account", "nope"], ev("x", 5.0, "2099-01-01T09:00:00Z").as_bytes()).code(2);
    t.run_stdin("hs-rotate", &["record", "--event", "-"], LIMIT.as_bytes()).code(1);

    assert_eq!(t.run("hs-rotate", &["next", "--dry-run"]).ok().stdout, "acc2\n", "order policy");
    std::fs::write(t.config_dir().join("config.json"), r#"{"version":1,"policy":"soonest-reset"}"#).unwrap();
    assert_eq!(t.run("hs-rotate", &["next", "--dry-run"]).ok().stdout, "acc3\n", "acc3's window resets first");
    std::fs::write(t.config_dir().join("config.json"), r#"{"version":1,"policy":"random"}"#).unwrap();
    let r = t.run("hs-rotate", &["next"]).code(2);
    assert!(r.stderr.contains("config.json:1:") && r.stderr.contains("unknown variant"), "{}", r.stderr);
}

#[test]
fn corrupt_state_is_refused_and_kept() {
    let t = with_accounts(&["acc1", "acc2"]);
    let f = t.state_dir().join("rotation.json");
    std::fs::create_dir_all(t.state_dir()).unwrap();
    for (text, want) in [
        ("{\"version\":1,\"current\":\"acc1\",\"accounts\":{", ":1:42: truncated JSON"),
        ("{\"version\":2}", ": unsupported version 2"),
        ("[]", ": expected a JSON object"),
    ] {
        std::fs::write(&f, text).unwrap();
        for args in [&["status"][..], &["exhaust", "acc1", "--for", "1h"], &["next"], &["reset"], &["use", "acc2"]] {
            let r = t.run("hs-rotate", args).code(2);
            assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
            assert!(r.stderr.starts_with(&format!("hs-rotate: {}", f.display())) && r.stderr.contains(want), "{args:?}: {}", r.stderr);
            assert_eq!(std::fs::read_to_string(&f).unwrap(), text);
        }
    }
}

#[test]
fn bad_times_and_durations() {
    let t = with_accounts(&["acc1"]);
    let r = t.run("hs-rotate", &["exhaust", "acc1", "--for", "2 hours"]).code(2);
    assert!(r.stderr.contains("invalid duration"), "{}", r.stderr);
    let r = t.run("hs-rotate", &["exhaust", "acc1", "--until", "tomorrow"]).code(2);
    assert!(r.stderr.contains("invalid time"), "{}", r.stderr);
    t.run("hs-rotate", &["exhaust", "acc1", "--until", "1", "--for", "1h"]).code(2);
    assert!(!t.state_dir().join("rotation.json").exists());
}

/// 32 processes change the state at once: no update is lost and the file stays valid.
#[test]
fn parallel_updates_lose_nothing() {
    let names: Vec<String> = (0..32).map(|i| format!("acc{i:02}")).collect();
    let t = TestEnv::new();
    let reg: Vec<Value> = names
        .iter()
        .map(|n| serde_json::json!({"name": n, "vault": t.home.join(format!(".codex-{n}"))}))
        .collect();
    std::fs::create_dir_all(t.config_dir()).unwrap();
    std::fs::write(t.config_dir().join("accounts.json"), serde_json::json!({"version":1,"accounts":reg}).to_string()).unwrap();
    let mut children = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut c = t.cmd("hs-rotate");
        if i % 2 == 0 {
            c.args(["exhaust", n, "--until", "2099-01-01T00:00:00Z", "--reason", n]);
        } else {
            // odd ones with a duration, all racing with the `next` calls below
            c.args(["exhaust", n, "--for", "1d"]);
        }
        children.push(c.stdout(std::process::Stdio::null()).spawn().unwrap());
        let mut nx = t.cmd("hs-rotate");
        nx.arg("next").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        children.push(nx.spawn().unwrap());
    }
    for mut c in children {
        let st = c.wait().unwrap();
        assert!(st.code() == Some(0) || st.code() == Some(1), "{st}");
    }
    let st = status(&t);
    assert_eq!(st.len(), 32);
    for e in &st {
        assert_eq!(e["state"], "exhausted", "lost update for {}", e["name"]);
    }
    let left: Vec<_> = std::fs::read_dir(t.state_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut left: Vec<String> = left.iter().map(|n| n.to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["rotation.json", "rotation.lock"], "no temp files left behind");
}

/// A write that fails (here: the file-size limit, `ulimit -f`) leaves the old state intact and
/// says what failed. (A read-only folder: `fault::writes_into_read_only_folders_keep_the_old_files`.)
#[test]
fn failed_state_write_keeps_the_old_file() {
    let t = with_accounts(&["acc1", "acc2"]);
    t.run("hs-rotate", &["exhaust", "acc1", "--for", "1h", "--reason", "first"]).ok();
    let f = t.state_dir().join("rotation.json");
    let before = std::fs::read(&f).unwrap();
    let mut cmd = t.cmd("hs-rotate");
    cmd.args(["exhaust", "acc2", "--for", "1h", "--reason", &"long reason ".repeat(50)]);
    let r = crate::support::env::run_with_small_file_limit(cmd).code(2);
    assert!(r.stderr.starts_with("hs-rotate: cannot write "), "{}", r.stderr);
    assert!(r.stderr.contains("File too large"), "{}", r.stderr);
    assert_eq!(std::fs::read(&f).unwrap(), before, "old state intact");
    let st = status(&t);
    assert_eq!(entry(&st, "acc1")["reason"], "first");
    assert_eq!(entry(&st, "acc2")["state"], "available");
    let names: Vec<String> = std::fs::read_dir(t.state_dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "temp file left: {names:?}");
}
