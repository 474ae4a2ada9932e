//! hs-overlay in a sealed HOME (and, further down, with the real codex against the mock backend).

use crate::support::env::TestEnv;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Child;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// A sealed env with the accounts registered by hs-vault; `logged_in` ones get an auth.json.
fn env_with(accounts: &[(&str, bool)]) -> TestEnv {
    let t = TestEnv::new();
    for (name, logged_in) in accounts {
        if *logged_in {
            t.add_logged_in(name);
        } else {
            t.run("hs-vault", &["add", name]).ok();
        }
    }
    t
}

fn shared(t: &TestEnv) -> PathBuf {
    t.home.join(".codex")
}

fn runtime(t: &TestEnv) -> PathBuf {
    t.state_dir().join("runtime")
}

/// `hs-overlay create`, owned by `owner`; returns the one JSON line.
fn create(t: &TestEnv, account: &str, owner: u32) -> Value {
    let r = t.run("hs-overlay", &["create", "--account", account, "--owner-pid", &owner.to_string()]).ok();
    let lines = r.json_lines();
    assert_eq!(lines.len(), 1, "{}", r.stdout);
    lines.into_iter().next().unwrap()
}

fn path_of(v: &Value) -> PathBuf {
    PathBuf::from(v["path"].as_str().unwrap())
}

fn one_line_error(r: &crate::support::env::Run) -> &str {
    assert_eq!(r.code, 2, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("hs-overlay: "), "{}", r.stderr);
    &r.stderr
}

/// A process that runs until killed, started in the sealed env.
fn sleeper(t: &TestEnv, vars: &[(&str, &Path)]) -> Child {
    use std::io::BufRead;
    let mut c = t.cmd("/bin/sh");
    c.args(["-c", "echo up; exec sleep 600"]).stdout(std::process::Stdio::piped());
    for (k, v) in vars {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    // Once it printed, it runs with its final environment.
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    child
}

fn stop(mut c: Child) {
    c.kill().unwrap();
    c.wait().unwrap();
}

fn meta(overlay: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(overlay.join(".hs-overlay.json")).unwrap()).unwrap()
}

fn set_meta(overlay: &Path, f: impl FnOnce(&mut Value)) {
    let mut m = meta(overlay);
    f(&mut m);
    fs::write(overlay.join(".hs-overlay.json"), m.to_string()).unwrap();
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn create_links_the_shared_store_and_the_vault() {
    let t = env_with(&[("acc1", true)]);
    let sh = shared(&t);
    fs::create_dir_all(&sh).unwrap();
    fs::write(sh.join("config.toml"), "model = \"gpt-5\"\n").unwrap();
    fs::write(sh.join("AGENTS.md"), "be nice\n").unwrap();
    fs::write(sh.join("auth.json"), "{\"the user's own\":1}").unwrap();
    fs::write(sh.join("state_5.sqlite-wal"), "wal").unwrap();
    fs::create_dir(sh.join("tmp")).unwrap();

    let v = create(&t, "acc1", std::process::id());
    assert_eq!(v["type"], "overlay");
    assert_eq!(v["account"], "acc1");
    assert_eq!(v["owner_pid"], std::process::id());
    assert_eq!(PathBuf::from(v["shared"].as_str().unwrap()), sh.canonicalize().unwrap());
    assert_eq!(PathBuf::from(v["vault"].as_str().unwrap()), t.home.join(".codex-acc1"));
    let ov = path_of(&v);
    assert_eq!(ov, runtime(&t).join(v["id"].as_str().unwrap()), "the path is spelled under the runtime root");
    assert_eq!(mode(&runtime(&t)), 0o700);
    assert_eq!(mode(&ov), 0o700);
    assert_eq!(mode(&ov.join(".hs-overlay.json")), 0o600);

    // auth.json: a link to the one real file in the vault
    assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), t.vault_auth("acc1"));
    // shared entries linked, folders pre-created, files codex will create linked before they exist
    let real = sh.canonicalize().unwrap();
    for name in [
        "config.toml",
        "AGENTS.md",
        "sessions",
        "archived_sessions",
        "log",
        "shell_snapshots",
        "skills",
        "thread-writer-locks",
        ".tmp",
    ] {
        assert_eq!(fs::read_link(ov.join(name)).unwrap(), real.join(name), "{name}");
        assert!(ov.join(name).exists(), "{name}");
    }
    for name in ["history.jsonl", "session_index.jsonl", "state_5.sqlite", "logs_2.sqlite", "installation_id"] {
        assert_eq!(fs::read_link(ov.join(name)).unwrap(), real.join(name), "{name}");
        assert!(!real.join(name).exists(), "{name} is not made up");
    }
    // never linked: the shared store's own auth, SQLite sidecars, per-overlay scratch
    for name in ["state_5.sqlite-wal", "tmp", "auth.lock"] {
        assert!(fs::symlink_metadata(ov.join(name)).is_err(), "{name}");
    }
    // writing through a dangling link creates the file in the shared store
    fs::OpenOptions::new().create(true).append(true).open(ov.join("history.jsonl")).unwrap();
    assert!(real.join("history.jsonl").is_file());

    let m = meta(&ov);
    assert_eq!(m["version"], 1);
    assert_eq!(m["state"], "ready");
    assert_eq!(m["account"], "acc1");
    assert_eq!(m["owner"]["pid"], std::process::id());
    assert!(m["owner"]["start_ticks"].is_u64());

    // a second overlay is a different folder
    let v2 = create(&t, "acc1", std::process::id());
    assert_ne!(v2["id"], v["id"]);
}

#[test]
fn create_refuses_bad_accounts_and_registries() {
    let t = env_with(&[("acc1", true), ("acc2", false)]);
    let me = std::process::id().to_string();
    let r = t.run("hs-overlay", &["create", "--account", "nope", "--owner-pid", &me]);
    let e = one_line_error(&r);
    assert!(e.contains("unknown account 'nope'") && e.contains("acc1, acc2"), "{e}");

    let r = t.run("hs-overlay", &["create", "--account", "acc2", "--owner-pid", &me]);
    let e = one_line_error(&r);
    assert!(e.contains("'acc2'") && e.contains("hs-vault login acc2"), "{e}");

    // a dangling auth.json link in the vault is no login either
    std::os::unix::fs::symlink(t.home.join("gone.json"), t.vault_auth("acc2")).unwrap();
    let e = one_line_error(&t.run("hs-overlay", &["create", "--account", "acc2", "--owner-pid", &me])).to_string();
    assert!(e.contains("hs-vault login acc2"), "{e}");

    let r = t.run("hs-overlay", &["create", "--account", "acc1", "--owner-pid", "999999999"]);
    assert!(one_line_error(&r).contains("not running"));

    let reg = t.config_dir().join("accounts.json");
    let good = fs::read_to_string(&reg).unwrap();
    fs::write(&reg, "{\"version\":1,\n\"accounts\":[\n").unwrap();
    let r = t.run("hs-overlay", &["create", "--account", "acc1", "--owner-pid", &me]);
    let e = one_line_error(&r);
    assert!(e.contains(&format!("{}:3:", reg.display())), "{e}");
    fs::write(&reg, &good).unwrap();

    // nothing was created by the failures
    assert!(names_in(&runtime(&t)).is_empty(), "{:?}", names_in(&runtime(&t)));
    // and the config's shared store is used when set
    fs::write(
        t.config_dir().join("config.json"),
        format!("{{\"version\":1,\"shared_home\":\"{}\"}}", t.home.join("store").display()),
    )
    .unwrap();
    let v = create(&t, "acc1", std::process::id());
    assert_eq!(PathBuf::from(v["shared"].as_str().unwrap()), t.home.join("store").canonicalize().unwrap());
    assert!(t.home.join("store/sessions").is_dir());
}

#[test]
fn swap_replaces_the_link_atomically() {
    let t = env_with(&[("acc1", true), ("acc2", true), ("acc3", false)]);
    let vaults = ["acc1", "acc2"].map(|a| fs::read(t.vault_auth(a)).unwrap());
    let v = create(&t, "acc1", std::process::id());
    let ov = path_of(&v);
    let r = t.run("hs-overlay", &["swap", ov.to_str().unwrap(), "--account", "acc2"]).ok();
    let s = &r.json_lines()[0];
    assert_eq!(s["type"], "overlay");
    assert_eq!(s["id"], v["id"]);
    assert_eq!(s["account"], "acc2");
    assert_eq!(s["previous_account"], "acc1");
    assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), t.vault_auth("acc2"));
    assert_eq!(meta(&ov)["account"], "acc2");
    assert!(names_in(&ov).iter().all(|n| !n.contains("auth-link")), "no temp link left");

    // by id; an account without login is refused and the link stays
    let id = v["id"].as_str().unwrap();
    let e = one_line_error(&t.run("hs-overlay", &["swap", id, "--account", "acc3"])).to_string();
    assert!(e.contains("hs-vault login acc3"), "{e}");
    assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), t.vault_auth("acc2"));
    let e = one_line_error(&t.run("hs-overlay", &["swap", "no-such-id", "--account", "acc1"])).to_string();
    assert!(e.contains("no overlay no-such-id"), "{e}");
    t.run("hs-overlay", &["swap", id, "--account", "acc1"]).ok();
    assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), t.vault_auth("acc1"));
    // every vault file is as it was
    assert_eq!(vaults, ["acc1", "acc2"].map(|a| fs::read(t.vault_auth(a)).unwrap()));
}

#[test]
fn destroy_moves_what_codex_made_and_keeps_conflicts() {
    let t = env_with(&[("acc1", true)]);
    let sh = shared(&t);
    fs::create_dir_all(&sh).unwrap();
    fs::write(sh.join("config.toml"), "shared = 1\n").unwrap();
    let vault_before = fs::read(t.vault_auth("acc1")).unwrap();
    let v = create(&t, "acc1", std::process::id());
    let ov = path_of(&v);
    let id = v["id"].as_str().unwrap().to_string();

    // what a session leaves behind: files through links, new entries, per-overlay scratch,
    // and a config.toml that replaced its link (an atomic rewrite)
    fs::create_dir_all(ov.join("sessions/2026/11/24")).unwrap();
    fs::write(ov.join("sessions/2026/11/24/rollout-x.jsonl"), "{}\n").unwrap();
    fs::write(ov.join("new_cache.json"), "{}").unwrap();
    fs::create_dir_all(ov.join("plugins/p1")).unwrap();
    fs::write(ov.join("plugins/p1/x"), "x").unwrap();
    fs::create_dir_all(ov.join("tmp/arg0-linux")).unwrap();
    fs::write(ov.join("auth.lock"), "").unwrap();
    fs::remove_file(ov.join("config.toml")).unwrap();
    fs::write(ov.join("config.toml"), "overlay = 1\n").unwrap();

    let r = t.run("hs-overlay", &["destroy", &id]).ok();
    let d = &r.json_lines()[0];
    assert_eq!(d["type"], "overlay_destroyed");
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["account"], "acc1");
    assert_eq!(d["moved"], serde_json::json!(["new_cache.json", "plugins"]));
    assert_eq!(d["removed"], serde_json::json!(["auth.lock", "tmp"]));
    let left = &d["leftovers"];
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["entry"], "config.toml");
    let kept_at = PathBuf::from(left[0]["kept_at"].as_str().unwrap());
    assert_eq!(kept_at, t.state_dir().join("leftovers").join(&id).join("config.toml"));
    assert_eq!(fs::read_to_string(&kept_at).unwrap(), "overlay = 1\n");
    assert_eq!(d["kept_overlay"], false);
    assert!(d["links_removed"].as_u64().unwrap() > 10);

    assert!(fs::symlink_metadata(&ov).is_err(), "overlay removed");
    assert_eq!(fs::read_to_string(sh.join("config.toml")).unwrap(), "shared = 1\n", "shared store not overwritten");
    assert!(sh.join("sessions/2026/11/24/rollout-x.jsonl").is_file());
    assert!(sh.join("new_cache.json").is_file() && sh.join("plugins/p1/x").is_file());
    assert!(!sh.join("tmp").exists() && !sh.join("auth.lock").exists());
    assert_eq!(fs::read(t.vault_auth("acc1")).unwrap(), vault_before, "vault untouched");

    // gone means gone
    let e = one_line_error(&t.run("hs-overlay", &["destroy", &id])).to_string();
    assert!(e.contains("no overlay"), "{e}");
    // doctor points at the leftovers
    let r = t.run("hs-overlay", &["doctor", "--json"]).code(1);
    let lines = r.json_lines();
    let l = lines.iter().find(|c| c["name"] == "leftovers").unwrap();
    assert_eq!(l["ok"], false);
}

#[test]
fn destroy_refuses_paths_outside_the_runtime_root() {
    let t = env_with(&[("acc1", true)]);
    let v = create(&t, "acc1", std::process::id());
    let sh = shared(&t);
    let outside = [
        sh.to_str().unwrap().to_string(),
        t.home.join(".codex-acc1").to_str().unwrap().to_string(),
        format!("{}/../..", runtime(&t).display()),
        format!("{}/sessions", path_of(&v).display()),
        "..".to_string(),
        ".hs".to_string(),
    ];
    for target in &outside {
        let r = t.run("hs-overlay", &["destroy", target]);
        let e = one_line_error(&r);
        assert!(e.contains("refusing") || e.contains("no overlay"), "{target}: {e}");
    }
    assert!(sh.join("sessions").is_dir() && t.vault_auth("acc1").is_file() && path_of(&v).is_dir());
    // a relative path inside the root works (resolved against the current folder = HOME)
    let rel = path_of(&v).strip_prefix(&t.home).unwrap().to_str().unwrap().to_string();
    t.run("hs-overlay", &["destroy", &rel]).ok();
    assert!(!path_of(&v).exists());
}

#[test]
fn links_into_a_vault_are_removed_as_links() {
    let t = env_with(&[("acc1", true)]);
    let vault_before = fs::read(t.vault_auth("acc1")).unwrap();
    let v = create(&t, "acc1", std::process::id());
    let root = runtime(&t);
    // a link in the runtime root pointing at the vault, and one at the vault's auth file
    std::os::unix::fs::symlink(t.home.join(".codex-acc1"), root.join("evil")).unwrap();
    std::os::unix::fs::symlink(t.vault_auth("acc1"), root.join("evil2")).unwrap();
    // and inside an overlay, a folder link into the vault next to the auth link
    std::os::unix::fs::symlink(t.home.join(".codex-acc1"), path_of(&v).join("vault-link")).unwrap();

    let r = t.run("hs-overlay", &["destroy", "evil"]).ok();
    assert_eq!(r.json_lines()[0]["removed"], serde_json::json!(["evil"]));
    assert!(fs::symlink_metadata(root.join("evil")).is_err());
    t.run("hs-overlay", &["destroy", v["id"].as_str().unwrap()]).ok();
    let r = t.run("hs-overlay", &["gc", "--json"]).ok();
    let summary = r.json_lines().pop().unwrap();
    assert_eq!(summary["type"], "gc");
    assert_eq!(summary["links_removed"], 1);
    assert!(names_in(&root).is_empty(), "{:?}", names_in(&root));
    assert_eq!(fs::read(t.vault_auth("acc1")).unwrap(), vault_before);
    assert_eq!(names_in(&t.home.join(".codex-acc1")), vec!["auth.json"]);
}

#[test]
fn gc_follows_the_owner_pid_and_its_start_time() {
    let t = env_with(&[("acc1", true)]);
    let alive = sleeper(&t, &[]);
    let dead = sleeper(&t, &[]);
    let reused = sleeper(&t, &[]);
    let keep = create(&t, "acc1", alive.id());
    let gone = create(&t, "acc1", dead.id());
    let fake = create(&t, "acc1", reused.id());
    stop(dead);
    // the pid still runs, but it is not the process the overlay was made for
    set_meta(&path_of(&fake), |m| {
        let t = m["owner"]["start_ticks"].as_u64().unwrap();
        m["owner"]["start_ticks"] = (t + 7).into();
    });
    // a creator that died half-way (state creating), and a folder without metadata
    let half = create(&t, "acc1", alive.id());
    set_meta(&path_of(&half), |m| m["state"] = "creating".into());
    let bare = runtime(&t).join("20260101-000000-crash1");
    fs::create_dir(&bare).unwrap();
    std::os::unix::fs::symlink(shared(&t).join("sessions"), bare.join("sessions")).unwrap();
    fs::write(bare.join("stray.txt"), "not known to be codex's").unwrap();

    let list = t.run("hs-overlay", &["list", "--json"]).ok().json_lines();
    let by_id = |v: &Value| list.iter().find(|i| i["id"] == v["id"]).unwrap().clone();
    assert_eq!(by_id(&keep)["alive"], true);
    assert_eq!(by_id(&gone)["alive"], false);
    assert_eq!(by_id(&fake)["alive"], false);
    assert_eq!(by_id(&fake)["owner_pid"], reused.id());
    assert_eq!(list.iter().find(|i| i["id"] == "20260101-000000-crash1").unwrap()["state"], "broken");
    let text = t.run("hs-overlay", &["list"]).ok().stdout;
    assert!(text.starts_with("ID ") && text.contains("acc1") && text.lines().count() == 6, "{text}");

    let r = t.run("hs-overlay", &["gc", "--json"]).ok();
    let lines = r.json_lines();
    let (summary, destroyed) = lines.split_last().unwrap();
    assert_eq!(summary["type"], "gc");
    assert_eq!(summary["collected"], 4);
    assert_eq!(summary["kept"], 1);
    let mut ids: Vec<&str> = destroyed.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![
        gone["id"].as_str().unwrap(),
        fake["id"].as_str().unwrap(),
        half["id"].as_str().unwrap(),
        "20260101-000000-crash1",
    ];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(names_in(&runtime(&t)), vec![keep["id"].as_str().unwrap().to_string()]);
    // what a folder without metadata held is kept aside, not put into the shared store
    let bare_report = destroyed.iter().find(|d| d["id"] == "20260101-000000-crash1").unwrap();
    assert_eq!(bare_report["leftovers"][0]["entry"], "stray.txt");
    assert!(!shared(&t).join("stray.txt").exists());
    assert!(t.state_dir().join("leftovers/20260101-000000-crash1/stray.txt").is_file());
    assert!(t.vault_auth("acc1").is_file());
    stop(alive);
    stop(reused);
    let r = t.run("hs-overlay", &["gc"]).ok();
    assert!(r.stdout.contains("1 removed, 0 kept"), "{}", r.stdout);
}

#[test]
fn an_overlay_in_use_is_kept_and_destroy_needs_force() {
    let t = env_with(&[("acc1", true)]);
    let owner = sleeper(&t, &[]);
    let v = create(&t, "acc1", owner.id());
    stop(owner);
    let ov = path_of(&v);
    let codex = sleeper(&t, &[("CODEX_HOME", &ov)]);
    let list = t.run("hs-overlay", &["list", "--json"]).ok().json_lines();
    assert_eq!(list[0]["in_use_by"], serde_json::json!([codex.id()]));
    let r = t.run("hs-overlay", &["gc", "--json"]).ok();
    assert_eq!(r.json_lines().pop().unwrap()["kept"], 1);
    let e = one_line_error(&t.run("hs-overlay", &["destroy", v["id"].as_str().unwrap()])).to_string();
    assert!(e.contains(&format!("in use by pid {}", codex.id())) && e.contains("--force"), "{e}");
    assert!(ov.join("auth.json").exists());
    stop(codex);
    let r = t.run("hs-overlay", &["gc", "--json"]).ok();
    assert_eq!(r.json_lines().pop().unwrap()["collected"], 1);
    // --force does not ask
    let v = create(&t, "acc1", std::process::id());
    let codex = sleeper(&t, &[("CODEX_HOME", &path_of(&v))]);
    t.run("hs-overlay", &["destroy", "--force", v["id"].as_str().unwrap()]).ok();
    stop(codex);
    assert!(!path_of(&v).exists());
}

#[test]
fn a_destroy_cut_short_is_finished_by_gc() {
    let t = env_with(&[("acc1", true)]);
    let vault_before = fs::read(t.vault_auth("acc1")).unwrap();
    let v = create(&t, "acc1", std::process::id());
    let ov = path_of(&v);
    // as if killed half-way through destroy: state destroying, some links already gone
    set_meta(&ov, |m| m["state"] = "destroying".into());
    for n in ["sessions", "config.toml", "auth.json"] {
        let _ = fs::remove_file(ov.join(n));
    }
    fs::write(ov.join("made_by_codex"), "1").unwrap();
    let lines = t.run("hs-overlay", &["gc", "--json"]).ok().json_lines();
    assert_eq!(lines[0]["id"], v["id"]);
    assert_eq!(lines[0]["moved"], serde_json::json!(["made_by_codex"]));
    assert!(!ov.exists());
    assert_eq!(fs::read(t.vault_auth("acc1")).unwrap(), vault_before);
    // a half-made overlay cannot be swapped
    let v = create(&t, "acc1", std::process::id());
    set_meta(&path_of(&v), |m| m["state"] = "creating".into());
    let e = one_line_error(&t.run("hs-overlay", &["swap", v["id"].as_str().unwrap(), "--account", "acc1"])).to_string();
    assert!(e.contains("is creating") && e.contains("gc"), "{e}");
}

/// Starts `hs-overlay args…` and SIGKILLs it after `delay` (it may have finished by then).
fn killed_after(t: &TestEnv, args: &[&str], delay: std::time::Duration) {
    let mut child = t
        .cmd("hs-overlay")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap();
}

#[test]
fn kill_9_at_any_moment_leaves_the_vault_intact_and_gc_finishes_the_job() {
    let t = env_with(&[("acc1", true)]);
    let vault_before = fs::read(t.vault_auth("acc1")).unwrap();
    let me = std::process::id().to_string();
    let root = runtime(&t);
    // Whenever the kill lands (before, during or after the work), the same must hold afterwards.
    for i in 0..24u64 {
        let delay = std::time::Duration::from_micros(i * 400);
        killed_after(&t, &["create", "--account", "acc1", "--owner-pid", &me], delay);
        // something codex made in every overlay there is, then a destroy that may be cut short
        for id in names_in(&root) {
            let marker = root.join(&id).join(format!("made-in-{id}"));
            if root.join(&id).join(".hs-overlay.json").exists() && !marker.exists() {
                fs::write(&marker, "x").unwrap();
            }
        }
        if let Some(id) = names_in(&root).first() {
            killed_after(&t, &["destroy", id], delay);
        }
    }
    t.run("hs-overlay", &["gc", "--json"]).ok();
    // what is left is complete, and destroys cleanly
    for i in t.run("hs-overlay", &["list", "--json"]).ok().json_lines() {
        assert_eq!(i["state"], "ready", "{i}");
        let ov = PathBuf::from(i["path"].as_str().unwrap());
        assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), t.vault_auth("acc1"));
        t.run("hs-overlay", &["destroy", i["id"].as_str().unwrap()]).ok();
    }
    assert!(names_in(&root).is_empty(), "{:?}", names_in(&root));
    assert_eq!(fs::read(t.vault_auth("acc1")).unwrap(), vault_before);
    assert_eq!(names_in(&t.home.join(".codex-acc1")), vec!["auth.json"]);
    assert!(!t.state_dir().join("leftovers").exists(), "{:?}", names_in(&t.state_dir().join("leftovers")));
    // every file codex made reached the shared store exactly once
    let made: Vec<String> = names_in(&shared(&t)).into_iter().filter(|n| n.starts_with("made-in-")).collect();
    assert!(!made.is_empty());
}

#[test]
fn parallel_creates_and_gc_do_not_collide() {
    let t = std::sync::Arc::new(env_with(&[("acc1", true), ("acc2", true)]));
    let me = std::process::id();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                if i % 3 == 2 {
                    t.run("hs-overlay", &["gc", "--json"]).ok();
                    None
                } else {
                    Some(create(&t, if i % 2 == 0 { "acc1" } else { "acc2" }, me))
                }
            })
        })
        .collect();
    let made: Vec<Value> = handles.into_iter().filter_map(|h| h.join().unwrap()).collect();
    assert_eq!(made.len(), 4);
    let list = t.run("hs-overlay", &["list", "--json"]).ok().json_lines();
    assert_eq!(list.len(), 4);
    assert!(list.iter().all(|i| i["state"] == "ready" && i["alive"] == true));
}

#[test]
fn doctor_checks_modes_links_and_stale_overlays() {
    let t = env_with(&[("acc1", true)]);
    let r = t.run("hs-overlay", &["doctor"]).ok();
    assert!(r.stdout.contains("does not exist yet"), "{}", r.stdout);
    let owner = sleeper(&t, &[]);
    let v = create(&t, "acc1", owner.id());
    let r = t.run("hs-overlay", &["doctor", "--json"]).ok();
    assert!(r.json_lines().iter().all(|c| c["type"] == "check" && c["ok"] == true), "{}", r.stdout);

    fs::set_permissions(runtime(&t), fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(t.home.join("nowhere"), shared(&t).join("broken-link")).unwrap();
    stop(owner);
    let r = t.run("hs-overlay", &["doctor", "--json"]).code(1);
    let bad: Vec<String> =
        r.json_lines().iter().filter(|c| c["ok"] == false).map(|c| c["name"].as_str().unwrap().to_string()).collect();
    let id = v["id"].as_str().unwrap();
    assert_eq!(bad, vec!["shared_links".to_string(), "runtime_root_mode".into(), format!("overlay {id}")]);
    let text = t.run("hs-overlay", &["doctor"]).code(1).stdout;
    assert!(text.contains("PROBLEM  runtime_root_mode") && text.contains("hs-overlay gc"), "{text}");

    // create tightens the runtime root again
    create(&t, "acc1", std::process::id());
    assert_eq!(mode(&runtime(&t)), 0o700);
}

#[test]
fn the_codex_version_is_read_from_an_npm_install_or_given() {
    let mut t = env_with(&[("acc1", true)]);
    let me = std::process::id().to_string();
    let create = |t: &TestEnv, extra: &[&str]| -> Value {
        let mut args = vec!["create", "--account", "acc1", "--owner-pid", &me];
        args.extend_from_slice(extra);
        t.run("hs-overlay", &args).ok().json()
    };
    assert_eq!(create(&t, &[])["codex_version"], Value::Null, "no codex anywhere");
    // an npm install: node_modules/.bin/codex -> ../@openai/codex/bin/codex.js
    let pkg = t.home.join("npm/node_modules/@openai/codex");
    fs::create_dir_all(pkg.join("bin")).unwrap();
    fs::write(pkg.join("package.json"), r#"{"name":"@openai/codex","version":"0.169.0"}"#).unwrap();
    fs::write(pkg.join("bin/codex.js"), "").unwrap();
    let bin = t.home.join("npm/node_modules/.bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("../@openai/codex/bin/codex.js", bin.join("codex")).unwrap();
    let path = format!("{}:{}", bin.display(), t.vars["PATH"].to_str().unwrap());
    t.set("PATH", path);
    let v = create(&t, &[]);
    assert_eq!(v["codex_version"], "0.169.0");
    assert_eq!(meta(&path_of(&v))["codex_version"], "0.169.0");
    assert_eq!(create(&t, &["--codex-version", "0.170.1"])["codex_version"], "0.170.1");
}

#[test]
fn a_runtime_root_that_is_a_link_is_refused() {
    let t = env_with(&[("acc1", true)]);
    let elsewhere = t.home.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(t.state_dir()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, runtime(&t)).unwrap();
    let me = std::process::id().to_string();
    for args in
        [vec!["create", "--account", "acc1", "--owner-pid", &me], vec!["gc"], vec!["list"], vec!["destroy", "x"]]
    {
        let e = one_line_error(&t.run("hs-overlay", &args)).to_string();
        assert!(e.contains("is not a folder (a link?)"), "{args:?}: {e}");
    }
    assert!(names_in(&elsewhere).is_empty());
    assert_eq!(mode(&elsewhere), 0o755, "no mode changed through the link");
    assert_eq!(
        t.run("hs-overlay", &["doctor", "--json"]).code(1).json_lines().iter().filter(|c| c["ok"] == false).count(),
        1
    );
}

#[test]
fn help_describes_every_command() {
    let t = TestEnv::new();
    let r = t.run("hs-overlay", &["--help"]).ok();
    for word in ["create", "swap", "destroy", "list", "gc", "doctor", "auth.json", "--no-daemon"] {
        assert!(r.stdout.contains(word), "{word}: {}", r.stdout);
    }
    let r = t.run("hs-overlay", &["create", "--help"]).ok();
    assert!(r.stdout.contains("--owner-pid") && r.stdout.contains("--codex-version"), "{}", r.stdout);
    t.run("hs-overlay", &["create"]).code(2);
}

/// With the real codex 0.169.0 against the mock backend (the issue's "done when" 1–3).
mod real_codex {
    use super::names_in;
    use crate::support::auth::FakeAccount;
    use crate::support::env::Run;
    use crate::support::mock::RequestRecord;
    use crate::support::real::{name, RealWorld};
    use crate::support::tui::{codex_command, Tui};
    use serde_json::Value;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(60);
    /// The composer placeholder: the TUI is ready for a prompt.
    const READY: &str = "Ask Codex to do anything";

    /// Overlays in the real-codex world.
    impl RealWorld {
        /// `hs-overlay create` for `a`, owned by the test process: `(id, path)`.
        fn overlay(&self, a: &FakeAccount) -> (String, PathBuf) {
            let me = std::process::id().to_string();
            let v: Value =
                self.env.run("hs-overlay", &["create", "--account", name(a), "--owner-pid", &me]).ok().json();
            (v["id"].as_str().unwrap().to_string(), PathBuf::from(v["path"].as_str().unwrap()))
        }

        /// `hs-overlay destroy`, once no process runs in the overlay any more.
        fn destroy(&self, id: &str) -> Value {
            let deadline = Instant::now() + WAIT;
            loop {
                let list = self.env.run("hs-overlay", &["list", "--json"]).ok().json_lines();
                let busy = list.iter().any(|i| i["id"] == id && i["in_use_by"] != serde_json::json!([]));
                if !busy || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let d = self.env.run("hs-overlay", &["destroy", id]).ok().json();
            // codex wrote everything straight into the shared store, through the links, except
            // `.sandbox_migration` (linked only when the shared store has it already)
            assert_eq!(d["leftovers"], serde_json::json!([]), "{d}");
            let moved: Vec<&Value> =
                d["moved"].as_array().unwrap().iter().filter(|m| *m != ".sandbox_migration").collect();
            assert!(moved.is_empty(), "codex made these inside the overlay: {d}");
            d
        }

        /// The turn that carries `prompt` (waiting for it); the screens of `tuis` if none comes.
        fn turn_with(&self, prompt: &str, tuis: &[&Tui]) -> RequestRecord {
            self.mock.wait_for(|r| r.is_turn() && r.body.contains(prompt), WAIT).unwrap_or_else(|| {
                let screens: Vec<String> = tuis.iter().map(|t| t.screen()).collect();
                panic!("no turn for {prompt:?}\n{}", screens.join("\n"))
            })
        }
    }

    /// The `session id: <uuid>` that `codex exec` prints on stderr.
    fn session_id(r: &Run) -> String {
        r.stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("session id: "))
            .unwrap_or_else(|| panic!("no session id in {r:?}"))
            .trim()
            .to_string()
    }

    /// Regular files under `dir` (links not followed, the mock's own folder skipped) that contain
    /// `needle`.
    fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let (p, ft) = (e.path(), e.file_type().unwrap());
                if ft.is_dir() && e.file_name() != "mock" {
                    stack.push(p);
                } else if ft.is_file() && fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(p);
                }
            }
        }
        found.sort();
        found
    }

    /// Waits (bounded) until `path` contains `text`.
    fn wait_for_file_text(path: &Path, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = fs::read_to_string(path).unwrap_or_default();
            if now.contains(text) || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[test]
    fn a_refresh_in_an_overlay_lands_in_the_vault_only() {
        let acct = FakeAccount::new("soon", "plus").expiring_in(60);
        let w = RealWorld::new(&[&acct]);
        let before = w.tokens(&acct);
        let (id, ov) = w.overlay(&acct);

        let r = w.exec(&ov, &["refresh please"]).ok();
        assert!(r.stdout.contains("mock answer"), "{r:?}");
        let refreshes: Vec<RequestRecord> = w.mock.requests().into_iter().filter(RequestRecord::is_refresh).collect();
        assert_eq!(refreshes.len(), 1, "{refreshes:?}");
        assert_eq!(refreshes[0].json()["refresh_token"], before.refresh_token.as_str());
        assert_eq!(refreshes[0].status, 200);

        // the new tokens are in the vault, the overlay's auth.json is still the link to it
        let after = w.tokens(&acct);
        assert_ne!(after.refresh_token, before.refresh_token);
        assert_eq!(Some(after.refresh_token.clone()), w.mock.current_refresh_token(&acct.account_id));
        assert_eq!(fs::read_link(ov.join("auth.json")).unwrap(), w.vault_auth(&acct));
        assert_eq!(w.mock.turns().pop().unwrap().bearer, Some(after.access_token.clone()));
        // and nowhere else: not in the overlay, the shared store, or a temp file beside the vault
        let vault_file = w.vault_auth(&acct).canonicalize().unwrap();
        let root = w.env.root().canonicalize().unwrap();
        for token in [&after.refresh_token, &after.access_token] {
            assert_eq!(files_containing(&root, token), vec![vault_file.clone()]);
        }
        assert_eq!(names_in(w.vault_auth(&acct).parent().unwrap()), vec!["auth.json", "auth.json.lock"]);

        // a second session of the account, in another overlay, goes on from the new tokens
        let (id2, ov2) = w.overlay(&acct);
        w.exec(&ov2, &["second session"]).ok();
        assert!(w.mock.requests().iter().filter(|r| r.is_refresh()).all(|r| r.status == 200));
        assert_eq!(w.mock.turns().pop().unwrap().bearer, Some(w.tokens(&acct).access_token));

        for id in [id, id2] {
            w.destroy(&id);
        }
        assert_eq!(w.tokens(&acct).refresh_token, w.mock.current_refresh_token(&acct.account_id).unwrap());
        assert!(names_in(&w.env.state_dir().join("runtime")).is_empty());
    }

    /// The refresh requests so far: `(refresh token sent, status)`.
    fn refreshes(w: &RealWorld) -> Vec<(String, u16)> {
        w.mock
            .requests()
            .iter()
            .filter(|r| r.is_refresh())
            .map(|r| (r.json()["refresh_token"].as_str().unwrap_or("").to_string(), r.status))
            .collect()
    }

    /// Two running sessions of one account share one token chain through the vault. A codex fact
    /// (0.169.0) that overlays cannot change: a running codex keeps its tokens in memory, and when
    /// another session has rotated them it usually (always when run alone here) first sends the
    /// consumed refresh token (401 `refresh_token_reused`), then reloads auth.json, which through
    /// the overlay's link is the vault's current one, and goes on with those tokens. Two plain
    /// sessions in one CODEX_HOME do the same; with a copy of auth.json it could not recover.
    #[test]
    fn a_running_session_recovers_the_tokens_another_session_refreshed() {
        let acct = FakeAccount::new("shared", "plus").expiring_in(60);
        let w = RealWorld::new(&[&acct]);
        let before = w.tokens(&acct);
        let (_, ov1) = w.overlay(&acct);
        let (_, ov2) = w.overlay(&acct);
        let (tui1, tui2) = (w.tui(&ov1), w.tui(&ov2));
        for t in [&tui1, &tui2] {
            t.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        }
        // both loaded the same tokens; the first to send refreshes them
        tui1.submit("first of the account");
        w.turn_with("first of the account", &[&tui1]);
        tui1.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        let rotated = w.tokens(&acct);

        tui2.submit("second of the account");
        let turn = w.turn_with("second of the account", &[&tui2]);
        tui2.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // (the idle second TUI may already have tried while the first one was answering)
        let seen = refreshes(&w);
        assert_eq!(seen.iter().filter(|(_, s)| *s == 200).count(), 1, "one rotation: {seen:?}");
        assert!(seen.iter().all(|(t, _)| *t == before.refresh_token), "only the first token was ever sent: {seen:?}");
        assert_eq!(turn.bearer, Some(rotated.access_token), "the second session went on with the vault's tokens");
        assert_eq!(turn.status, 200);
        assert_eq!(w.tokens(&acct).refresh_token, rotated.refresh_token);
        assert_eq!(Some(rotated.refresh_token), w.mock.current_refresh_token(&acct.account_id));
    }

    /// The same fact when two sessions of one account start together with an expiring token:
    /// both refresh with the same token, one wins, the other is refused and recovers from the
    /// vault; both answer and the vault holds the live chain.
    #[test]
    fn two_sessions_of_one_account_starting_together_keep_one_token_chain() {
        let acct = FakeAccount::new("shared", "plus").expiring_in(60);
        let w = RealWorld::new(&[&acct]);
        let before = w.tokens(&acct);
        let (_, ov1) = w.overlay(&acct);
        let (_, ov2) = w.overlay(&acct);
        let spawn = |ov: &Path, prompt: &str| {
            let mut cmd = codex_command(&w.env, &w.mock, ov, &w.work);
            cmd.args(["exec", "--skip-git-repo-check", prompt]);
            cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        };
        let (a, b) = (spawn(&ov1, "same account, session a"), spawn(&ov2, "same account, session b"));
        for child in [a, b] {
            let r = Run::from(child.wait_with_output().unwrap()).ok();
            assert!(r.stdout.contains("mock answer"), "{r:?}");
        }
        let seen = refreshes(&w);
        assert_eq!(seen.iter().filter(|(_, s)| *s == 200).count(), 1, "one rotation: {seen:?}");
        assert!(seen.iter().all(|(t, _)| *t == before.refresh_token), "only the first token was ever sent: {seen:?}");
        assert!(w.mock.turns().iter().all(|t| t.status == 200));
        assert_eq!(Some(w.tokens(&acct).refresh_token), w.mock.current_refresh_token(&acct.account_id));
    }

    #[test]
    fn two_overlays_on_two_accounts_at_once() {
        let (one, two) = (FakeAccount::new("one", "plus"), FakeAccount::new("two", "pro"));
        let w = RealWorld::new(&[&one, &two]);
        let (id1, ov1) = w.overlay(&one);
        let (id2, ov2) = w.overlay(&two);
        let (tui1, tui2) = (w.tui(&ov1), w.tui(&ov2));
        for t in [&tui1, &tui2] {
            t.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        }
        // both sessions run while each sends a turn
        tui1.submit("question from overlay one");
        tui2.submit("question from overlay two");
        for (prompt, acct) in [("question from overlay one", &one), ("question from overlay two", &two)] {
            let turn = w.turn_with(prompt, &[&tui1, &tui2]);
            assert_eq!(turn.account_id.as_deref(), Some(acct.account_id.as_str()), "{prompt}");
            assert_eq!(turn.bearer, Some(w.tokens(acct).access_token), "{prompt}");
            assert_eq!(turn.status, 200);
        }
        tui1.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui2.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        // every request (turns, titles, account checks) carried the account of its overlay
        for r in w.mock.requests().iter().filter(|r| r.bearer.is_some()) {
            let acct = if r.account_id.as_deref() == Some("acct-one") { &one } else { &two };
            assert_eq!(r.bearer, Some(w.tokens(acct).access_token), "{r:?}");
        }
        // the TUI prompts went to the one shared history
        let history = wait_for_file_text(&w.shared().join("history.jsonl"), "question from overlay two");
        assert!(
            history.contains("question from overlay one") && history.contains("question from overlay two"),
            "{history}"
        );
        drop((tui1, tui2));
        for (id, ov) in [(id1, ov1), (id2, ov2)] {
            assert!(fs::symlink_metadata(ov.join("history.jsonl")).unwrap().file_type().is_symlink());
            w.destroy(&id);
        }
    }

    #[test]
    fn sessions_resume_across_overlays_and_the_plain_home() {
        let (one, two, plain) =
            (FakeAccount::new("one", "plus"), FakeAccount::new("two", "plus"), FakeAccount::new("plain", "plus"));
        let w = RealWorld::new(&[&one, &two]);
        // the plain ~/.codex has its own login
        w.mock.login(&w.shared(), &plain);

        // an overlay session, then the overlay is gone (as after hs-run): resumed in ~/.codex
        let (id1, ov1) = w.overlay(&one);
        let first = w.exec(&ov1, &["started in an overlay"]).ok();
        let sid = session_id(&first);
        let d = w.destroy(&id1);
        assert!(d["threads_repaired"].as_u64().unwrap() >= 1, "{d}");
        let r = w.exec(&w.shared(), &["resume", &sid, "continued in the plain home"]).ok();
        assert_eq!(session_id(&r), sid);
        let turn = w.mock.turns().pop().unwrap();
        assert!(turn.body.contains("continued in the plain home") && turn.body.contains("started in an overlay"));
        assert_eq!(turn.account_id.as_deref(), Some("acct-plain"));
        assert_eq!(turn.session_id.as_deref(), Some(sid.as_str()));

        // the reverse: a plain-home session resumed in an overlay of another account
        let second = w.exec(&w.shared(), &["started in the plain home"]).ok();
        let sid2 = session_id(&second);
        let (id2, ov2) = w.overlay(&two);
        let r = w.exec(&ov2, &["resume", &sid2, "continued in an overlay"]).ok();
        assert_eq!(session_id(&r), sid2);
        let turn = w.mock.turns().pop().unwrap();
        assert!(turn.body.contains("continued in an overlay") && turn.body.contains("started in the plain home"));
        assert_eq!(turn.account_id.as_deref(), Some("acct-two"));
        // whatever path codex recorded for the thread meanwhile, it still resumes at home
        w.destroy(&id2);
        let r = w.exec(&w.shared(), &["resume", &sid2, "back in the plain home"]).ok();
        assert_eq!(session_id(&r), sid2);

        // one session store: both rollouts live in the shared store, nothing left to repair
        let rollouts = files_named_with(&w.shared().join("sessions"), &[&sid, &sid2]);
        assert_eq!(rollouts, 2);
        let doctor = w.env.run("hs-overlay", &["doctor", "--json"]).ok().json_lines();
        assert!(doctor.iter().all(|c| c["ok"] == true), "{doctor:?}");
    }

    #[test]
    fn databases_elsewhere_are_repaired_where_they_are() {
        let one = FakeAccount::new("one", "plus");
        let plain = FakeAccount::new("plain", "plus");
        for how in ["env", "config"] {
            let mut w = RealWorld::new(&[&one]);
            w.mock.login(&w.shared(), &plain);
            let db_dir = w.env.root().join(format!("db-{how}"));
            fs::create_dir_all(&db_dir).unwrap();
            if how == "env" {
                w.env.set("CODEX_SQLITE_HOME", &db_dir);
            } else {
                let config = w.shared().join("config.toml");
                let text = fs::read_to_string(&config).unwrap();
                fs::write(&config, format!("sqlite_home = \"{}\"\n{text}", db_dir.display())).unwrap();
            }
            let (id, ov) = w.overlay(&one);
            let sid = session_id(&w.exec(&ov, &["databases elsewhere"]).ok());
            assert!(db_dir.join("state_5.sqlite").is_file(), "{how}: codex used {}", db_dir.display());
            assert!(!w.shared().join("state_5.sqlite").exists(), "{how}");
            let d = w.destroy(&id);
            assert_eq!(d["threads_repaired"], 1, "{how}: {d}");
            let r = w.exec(&w.shared(), &["resume", &sid, "resumed at home"]).ok();
            assert_eq!(session_id(&r), sid, "{how}");
        }
    }

    /// Runs a TUI session in `home`, sends `prompt`, waits for the answer; returns the session id.
    fn tui_session(w: &RealWorld, home: &Path, prompt: &str) -> String {
        let tui = w.tui(home);
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}"));
        tui.submit(prompt);
        let turn = w.turn_with(prompt, &[&tui]);
        tui.wait_for_text("mock answer", WAIT).unwrap_or_else(|e| panic!("{e}"));
        turn.session_id.expect("a session-id header")
    }

    /// Opens the `codex resume` picker in `home`, waits for `preview` in the list, picks it and
    /// sends `prompt`: the turn must continue `session`.
    fn resume_with_picker(w: &RealWorld, home: &Path, preview: &str, session: &str, prompt: &str) {
        let mut cmd = codex_command(&w.env, &w.mock, home, &w.work);
        cmd.args(["--no-daemon", "resume"]);
        let tui = Tui::spawn(cmd, 30, 120);
        tui.wait_for_text(preview, WAIT).unwrap_or_else(|e| panic!("{e}\n{}", tui.screen()));
        tui.send(b"\r");
        tui.wait_for_text(READY, WAIT).unwrap_or_else(|e| panic!("{e}\n{}", tui.screen()));
        tui.submit(prompt);
        let turn = w.turn_with(prompt, &[&tui]);
        assert_eq!(turn.session_id.as_deref(), Some(session), "the picked session continues");
        assert!(turn.body.contains(preview), "the old conversation is part of the turn");
    }

    #[test]
    fn the_resume_picker_sees_sessions_of_overlays_and_of_the_plain_home() {
        let one = FakeAccount::new("one", "plus");
        let w = RealWorld::new(&[&one]);
        // the plain ~/.codex uses the same account, through a link to its vault (hs-vault import)
        std::os::unix::fs::symlink(w.vault_auth(&one), w.shared().join("auth.json")).unwrap();

        let (id, ov) = w.overlay(&one);
        let sid = tui_session(&w, &ov, "typed in the overlay tui");
        w.destroy(&id);
        resume_with_picker(&w, &w.shared(), "typed in the overlay tui", &sid, "picked at home");

        let sid2 = tui_session(&w, &w.shared(), "typed in the plain tui");
        let (id2, ov2) = w.overlay(&one);
        resume_with_picker(&w, &ov2, "typed in the plain tui", &sid2, "picked in an overlay");
        w.destroy(&id2);
    }

    /// How many of `ids` have a rollout file under `dir`.
    fn files_named_with(dir: &Path, ids: &[&str]) -> usize {
        let mut names = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        ids.iter().filter(|id| names.iter().any(|n| n.contains(**id))).count()
    }
}
