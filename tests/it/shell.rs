//! shell/codex-hotswap (the front command) and shell/codex (the shim), in a sealed HOME.

use crate::support::env::{repo_root, TestEnv};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn front() -> String {
    repo_root().join("shell/codex-hotswap").display().to_string()
}

fn hotswap(t: &TestEnv, args: &[&str]) -> crate::support::env::Run {
    t.run(&front(), args)
}

/// A stand-in for the real codex in its own folder, put on PATH after our tools.
fn real_codex(t: &mut TestEnv) -> PathBuf {
    let dir = t.root().join("npm/bin");
    let p = stand_in(&dir);
    let path = format!("{}:{}", t.vars["PATH"].to_str().unwrap(), dir.display());
    t.set("PATH", path);
    p
}

/// `<dir>/codex`, a stand-in for the real codex that answers `--version` and `--help`.
fn stand_in(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("codex");
    std::fs::write(
        &p,
        "#!/bin/sh\ncase \"$1\" in --version) echo 'codex-cli 0.169.0';; --help) echo '      --no-daemon  run without the app-server daemon';; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn write_login(dir: &Path, email: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join("auth.json");
    std::fs::write(&f, crate::vault::login_text(email.split('@').next().unwrap(), "plus")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn setup_adopts_the_existing_login_and_registers_accounts() {
    let mut t = TestEnv::new();
    let real = real_codex(&mut t);
    write_login(&t.home.join(".codex"), "me@example.com");
    let r = hotswap(&t, &["setup", "--accounts", "main,work"]).ok();
    assert!(r.stdout.contains(&format!("real codex: {}", real.display())), "{}", r.stdout);
    let link = t.home.join(".codex/auth.json");
    assert_eq!(std::fs::read_link(&link).unwrap(), t.home.join(".codex-main/auth.json"));
    let list = t.run("hs-vault", &["list", "--json"]).ok().json_lines();
    let names: Vec<&str> = list.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["main", "work"]);
    assert_eq!(list[0]["email"], "me@example.com");
    assert_eq!(t.run("hs-config", &["get", "real_codex"]).ok().stdout.trim(), real.to_str().unwrap());
    assert_eq!(t.run("hs-config", &["get", "shared_home"]).ok().stdout.trim(), t.home.join(".codex").to_str().unwrap());
    // again: nothing breaks, nothing is imported twice
    hotswap(&t, &["setup", "--count", "3", "--prefix", "acc"]).ok();
    assert_eq!(t.run("hs-vault", &["list", "--json"]).ok().json_lines().len(), 5);
    hotswap(&t, &["setup", "--count", "abc"]).code(2);
}

#[test]
fn everyday_verbs_pass_through() {
    let t = TestEnv::new();
    for n in ["a", "b"] {
        t.run("hs-vault", &["add", n]).ok();
    }
    assert_eq!(hotswap(&t, &["current"]).ok().stdout, "a\n");
    assert_eq!(hotswap(&t, &["next"]).ok().stdout, "b\n");
    hotswap(&t, &["use", "a"]).ok();
    let r = hotswap(&t, &["use", "zz"]).code(2);
    assert!(r.stderr.contains("unknown account 'zz'"), "{}", r.stderr);
    t.run("hs-rotate", &["exhaust", "a", "--for", "1h"]).ok();
    assert!(hotswap(&t, &["status"]).ok().stdout.contains("exhausted"));
    hotswap(&t, &["reset"]).ok();
    assert!(!hotswap(&t, &["status"]).ok().stdout.contains("exhausted"));
    // near its limit: said in words, with a bar per window; --json carries the same
    let now = chrono::Utc::now();
    let reading = serde_json::json!({"type":"rate_limits","account":"a","at":now.to_rfc3339(),
        "primary":{"used_percent":96.0,"window_minutes":300,"resets_at":(now + chrono::Duration::minutes(72)).to_rfc3339()},
        "secondary":{"used_percent":12.0,"window_minutes":10080,"resets_at":(now + chrono::Duration::days(5)).to_rfc3339()}});
    t.run_stdin("hs-rotate", &["record", "--event", "-"], reading.to_string().as_bytes()).ok();
    let text = hotswap(&t, &["status"]).ok().stdout;
    assert!(text.lines().next().unwrap().starts_with("* a  near limit: 5h window at 96% (switch at 95%) until "), "{text}");
    assert!(text.contains("5h    ███████████████████░   96%  resets in 1h 1"), "{text}");
    assert!(text.contains("week  ██░░░░░░░░░░░░░░░░░░   12%  resets in "), "{text}");
    let json = hotswap(&t, &["status", "--json"]).ok().json_lines();
    assert_eq!((json[0]["state"].as_str(), json[0]["windows"][0]["used_percent"].as_f64()), (Some("near_limit"), Some(96.0)));
    let r = hotswap(&t, &["frobnicate"]).code(2);
    assert!(r.stderr.starts_with("codex-hotswap: unknown verb frobnicate"), "{}", r.stderr);
    assert!(hotswap(&t, &["help"]).ok().stdout.contains("doctor"));
}

#[test]
fn shim_install_refuses_foreign_codex_and_disable_links_the_login() {
    let mut t = TestEnv::new();
    real_codex(&mut t);
    let dir = t.root().join("shimbin");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.to_str().unwrap();

    // a codex that is not ours is never overwritten
    std::fs::write(dir.join("codex"), "#!/bin/sh\necho mine\n").unwrap();
    let r = hotswap(&t, &["enable", "--dir", dir_s]).code(2);
    assert!(r.stderr.contains("is not the codex-hotswap shim; refusing"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(dir.join("codex")).unwrap(), "#!/bin/sh\necho mine\n");
    hotswap(&t, &["disable", "--dir", dir_s]).code(2);
    assert!(dir.join("codex").exists());
    std::fs::remove_file(dir.join("codex")).unwrap();

    let r = hotswap(&t, &["enable", "--dir", dir_s]).ok();
    assert!(r.stdout.contains("installed the shim"), "{}", r.stdout);
    let shim = std::fs::read_to_string(dir.join("codex")).unwrap();
    assert!(shim.contains("codex-hotswap-shim"));
    assert!(shim.contains(&format!("HS_RUN=\"{}\"", crate::support::env::bin("hs-run").display())), "{shim}");
    assert_eq!(std::fs::metadata(dir.join("codex")).unwrap().permissions().mode() & 0o777, 0o755);
    hotswap(&t, &["install-shim", "--dir", dir_s]).ok(); // replacing our own shim is fine

    // disable: shim gone, ~/.codex/auth.json links to the current account's vault file
    t.run("hs-vault", &["add", "a"]).ok();
    t.run("hs-vault", &["add", "b"]).ok();
    write_login(&t.home.join(".codex-b"), "b@example.com");
    t.run("hs-rotate", &["use", "b"]).ok();
    let r = hotswap(&t, &["disable", "--dir", dir_s]).ok();
    assert!(!dir.join("codex").exists());
    assert!(r.stdout.contains("plain codex now uses b"), "{}", r.stdout);
    let link = t.home.join(".codex/auth.json");
    assert_eq!(std::fs::read_link(&link).unwrap(), t.home.join(".codex-b/auth.json"));

    // a login of its own in ~/.codex is never replaced
    std::fs::remove_file(&link).unwrap();
    write_login(&t.home.join(".codex"), "own@example.com");
    let r = hotswap(&t, &["disable", "--dir", dir_s]).code(2);
    assert!(r.stderr.contains("is a login of its own"), "{}", r.stderr);
    assert!(std::fs::read_to_string(&link).unwrap().contains("own@example.com") || std::fs::read_to_string(&link).unwrap().contains("tok-"));
    assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
}

#[test]
fn log_shows_recent_switches() {
    let t = TestEnv::new();
    assert!(hotswap(&t, &["log"]).ok().stdout.starts_with("no switches yet"));
    std::fs::create_dir_all(t.state_dir()).unwrap();
    let line = r#"{"type":"swap","at":"2026-11-24T19:00:00Z","session_id":"0199-abc","from":"acc1","to":"acc2","kind":"usage_limit","resets_at":"2026-11-24T20:13:00Z","cwd":"/w"}"#;
    std::fs::write(t.state_dir().join("events.jsonl"), format!("{line}\n{{\"type\":\"future\"}}\n{{\"type\":\"swap\"\n")).unwrap();
    let out = hotswap(&t, &["log"]).ok().stdout;
    assert_eq!(out, "2026-11-24T19:00:00Z  acc1 -> acc2  usage_limit  back 2026-11-24T20:13:00Z  session 0199-abc\n");
    assert_eq!(hotswap(&t, &["log", "--json", "-n", "3"]).ok().stdout.lines().next().unwrap(), line);
    // switches of their own kind: a dead login, a conversation carried over as text
    let dead = r#"{"type":"swap","at":"2026-11-24T19:01:00Z","session_id":"0199-abc","from":"acc2","to":"acc3","kind":"other","resets_at":null,"cwd":"/w","how":"login_needed","reason":"Please log out and sign in again."}"#;
    let carried = r#"{"type":"swap","at":"2026-11-24T19:02:00Z","session_id":"0199-abc","from":"acc3","to":"acc3","kind":"other","resets_at":null,"cwd":"/w","how":"carried_over","reason":"x","new_session_id":"0199-def"}"#;
    std::fs::write(t.state_dir().join("events.jsonl"), format!("{dead}\n{carried}\n")).unwrap();
    let out = hotswap(&t, &["log"]).ok().stdout;
    assert_eq!(
        out,
        "2026-11-24T19:01:00Z  acc2 -> acc3  login_needed  session 0199-abc\n\
         2026-11-24T19:02:00Z  acc3 -> acc3  carried_over  session 0199-abc -> 0199-def\n"
    );
}

#[test]
fn doctor_reports_problems_then_ok() {
    let mut t = TestEnv::new();
    let r = hotswap(&t, &["doctor"]).code(1);
    assert!(r.stdout.contains("problem  the real codex is not installed"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("doctor status: issues found"), "{}", r.stdout);

    real_codex(&mut t);
    t.run("hs-vault", &["add", "a"]).ok();
    let vault = t.home.join(".codex-a");
    std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = hotswap(&t, &["doctor"]).code(1);
    assert!(r.stdout.contains("problem  a: not logged in") && r.stdout.contains("fix: hs-vault login a"), "{}", r.stdout);
    assert!(r.stdout.contains("has mode 755, not 700"), "{}", r.stdout);

    write_login(&vault, "a@example.com");
    std::fs::set_permissions(vault.join("auth.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = hotswap(&t, &["doctor", "--fix"]).ok();
    assert!(r.stdout.contains("ok       codex supports --no-daemon"), "{}", r.stdout);
    assert!(r.stdout.contains("ok       a: logged in (a@example.com)"), "{}", r.stdout);
    assert!(r.stdout.trim_end().ends_with("doctor status: ok"), "{}", r.stdout);
    assert_eq!(std::fs::metadata(&vault).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(vault.join("auth.json")).unwrap().permissions().mode() & 0o777, 0o600);
    for out in [&r.stdout, &r.stderr] {
        assert!(!out.contains("tok-"), "a token was printed");
    }
    assert!(!r.stdout.contains("cli_auth_credentials_store"), "{}", r.stdout);

    // a shared config.toml asking for another credential store: a warning, not a problem
    let shared = t.home.join(".codex");
    std::fs::create_dir_all(&shared).unwrap();
    let config = shared.join("config.toml");
    for (text, store) in [
        ("model = \"o3\"\ncli_auth_credentials_store = \"keyring\"  # mine\n", Some("keyring")),
        ("cli_auth_credentials_store='auto'\n", Some("auto")),
        ("cli_auth_credentials_store = \"file\"\n", None),
        ("[profiles.x]\ncli_auth_credentials_store = \"keyring\"\n", None),
    ] {
        std::fs::write(&config, text).unwrap();
        let r = hotswap(&t, &["doctor"]).ok();
        let warned = format!("warning  {}/config.toml sets cli_auth_credentials_store = \"{}\"", shared.display(), store.unwrap_or(""));
        assert_eq!(r.stdout.contains(&warned), store.is_some(), "{text:?}:\n{}", r.stdout);
        assert_eq!(r.stdout.contains("cli_auth_credentials_store"), store.is_some(), "{text:?}:\n{}", r.stdout);
        assert!(r.stdout.trim_end().ends_with("doctor status: ok"), "{}", r.stdout);
    }
}

#[test]
fn config_tool_validates_before_writing() {
    let t = TestEnv::new();
    t.run("hs-config", &["get", "policy"]).code(1);
    t.run("hs-config", &["set", "policy", "soonest-reset"]).ok();
    assert_eq!(t.run("hs-config", &["get", "policy"]).ok().stdout, "soonest-reset\n");
    let before = std::fs::read(t.config_dir().join("config.json")).unwrap();
    let r = t.run("hs-config", &["set", "default_cooldown", "soon"]).code(2);
    assert!(r.stderr.contains("invalid duration"), "{}", r.stderr);
    let r = t.run("hs-config", &["set", "colour", "red"]).code(2);
    assert!(r.stderr.contains("unknown setting 'colour'"), "{}", r.stderr);
    t.run("hs-config", &["set", "max_swaps", "many"]).code(2);
    let r = t.run("hs-config", &["set", "resend_prompt_after", "later"]).code(2);
    assert!(r.stderr.contains("config resend_prompt_after: invalid duration \"later\""), "{}", r.stderr);
    assert_eq!(std::fs::read(t.config_dir().join("config.json")).unwrap(), before);
    t.run("hs-config", &["set", "resend_prompt_after", "off"]).ok();
    t.run("hs-config", &["unset", "resend_prompt_after"]).ok();
    t.run("hs-config", &["set", "max_swaps", "3"]).ok();
    assert_eq!(t.run("hs-config", &["show", "--json"]).ok().json(), serde_json::json!({"max_swaps":3,"policy":"soonest-reset"}));
    t.run("hs-config", &["unset", "policy"]).ok();
    t.run("hs-config", &["get", "policy"]).code(1);
}

/// `hs-config codex` and its one line when there is no codex (the JSON without the version
/// fields, which `versions::` checks).
fn which_codex(t: &TestEnv) -> (String, serde_json::Value) {
    let path = t.run("hs-config", &["codex"]).ok().stdout;
    let json = t.run("hs-config", &["codex", "--json"]).ok();
    assert_eq!(json.stdout.lines().count(), 1, "{}", json.stdout);
    let mut json = json.json();
    for key in ["version", "tested", "standing"] {
        json.as_object_mut().unwrap().remove(key).expect(key);
    }
    (path, json)
}

#[test]
fn config_tool_names_the_real_codex_every_tool_runs() {
    let mut t = TestEnv::new();
    // only the shim and a `codex` that is hs-run itself on PATH: none found, exit 1, one line
    let shim = t.put_shim_on_path();
    let links = t.root().join("links");
    std::fs::create_dir_all(&links).unwrap();
    std::os::unix::fs::symlink(crate::support::env::bin("hs-run"), links.join("codex")).unwrap();
    t.path_first(&links);
    for args in [&["codex"][..], &["codex", "--json"]] {
        let r = t.run("hs-config", args).code(1);
        assert_eq!(r.stdout, "", "{args:?}");
        assert_eq!(
            r.stderr,
            "hs-config: codex not found on PATH: install it (npm install -g @openai/codex) or set real_codex in config.json or CODEX_HOTSWAP_REAL_CODEX\n"
        );
    }

    // PATH: the first codex after them, the one hs-run runs too
    let on_path = t.root().join("npm/bin/codex");
    std::fs::create_dir_all(on_path.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(crate::support::env::bin("fake-codex"), &on_path).unwrap();
    let path = format!("{}:{}", t.vars["PATH"].to_str().unwrap(), on_path.parent().unwrap().display());
    t.set("PATH", path);
    let (text, json) = which_codex(&t);
    assert_eq!(text, format!("{}\n", on_path.display()));
    assert_eq!(json, serde_json::json!({"type": "codex", "path": on_path, "from": "path"}));
    assert_eq!(t.run("hs-run", &["--", "--version"]).ok().stdout, "codex-cli 0.169.0 (fake)\n");

    // the config setting wins over PATH, the environment variable over both
    let configured = stand_in(&t.root().join("configured"));
    t.run("hs-config", &["set", "real_codex", configured.to_str().unwrap()]).ok();
    assert_eq!(which_codex(&t).1, serde_json::json!({"type": "codex", "path": configured, "from": "config"}));
    let from_env = stand_in(&t.root().join("from-env"));
    t.set("CODEX_HOTSWAP_REAL_CODEX", &from_env);
    let (text, json) = which_codex(&t);
    assert_eq!(text, format!("{}\n", from_env.display()));
    assert_eq!(json, serde_json::json!({"type": "codex", "path": from_env, "from": "env"}));

    // a setting that names no codex, or the shim, is an error (exit 2) naming the setting
    t.vars.remove("CODEX_HOTSWAP_REAL_CODEX");
    for (value, says) in [
        ("/nowhere/codex", "hs-config: codex not found at /nowhere/codex (from real_codex in config.json): no executable file there\n".to_string()),
        (shim.to_str().unwrap(), format!("hs-config: {} (from real_codex in config.json) is the codex-hotswap shim, not the real codex\n", shim.display())),
    ] {
        t.run("hs-config", &["set", "real_codex", value]).ok();
        let r = t.run("hs-config", &["codex"]).code(2);
        assert_eq!((r.stdout.as_str(), r.stderr), ("", says));
    }
    let help = t.run("hs-config", &["--help"]).ok().stdout;
    assert!(help.contains("hs-config codex") && help.contains("no codex was found (codex)"), "{help}");
}

#[test]
fn setup_and_doctor_ask_hs_config_for_the_real_codex() {
    let mut t = TestEnv::new();
    t.put_shim_on_path();
    // only the shim on PATH: not installed
    let r = hotswap(&t, &["setup"]).ok();
    assert!(r.stderr.contains("warning: codex not found on PATH: install it (npm install -g @openai/codex)"), "{}", r.stderr);
    t.run("hs-config", &["get", "real_codex"]).code(1);
    let r = hotswap(&t, &["doctor"]).code(1);
    assert!(r.stdout.contains("problem  the real codex is not installed"), "{}", r.stdout);

    // a real one after the shim: recorded by setup, checked by doctor
    let real = real_codex(&mut t);
    let r = hotswap(&t, &["setup"]).ok();
    assert!(r.stdout.contains(&format!("real codex: {}\n", real.display())), "{}", r.stdout);
    assert_eq!(t.run("hs-config", &["get", "real_codex"]).ok().stdout, format!("{}\n", real.display()));
    let r = hotswap(&t, &["doctor"]);
    assert!(r.stdout.contains(&format!("ok       real codex: {} (codex-cli 0.169.0)\n", real.display())), "{}", r.stdout);

    // the environment variable wins, as in hs-run
    let from_env = stand_in(&t.root().join("from-env"));
    t.set("CODEX_HOTSWAP_REAL_CODEX", &from_env);
    let r = hotswap(&t, &["doctor"]);
    assert!(r.stdout.contains(&format!("ok       real codex: {} (", from_env.display())), "{}", r.stdout);

    // a setting that names nothing: doctor says which
    t.vars.remove("CODEX_HOTSWAP_REAL_CODEX");
    t.run("hs-config", &["set", "real_codex", "/nowhere/codex"]).ok();
    let r = hotswap(&t, &["doctor"]).code(1);
    assert!(
        r.stdout.contains("problem  real codex: codex not found at /nowhere/codex (from real_codex in config.json): no executable file there\n"),
        "{}",
        r.stdout
    );
}
