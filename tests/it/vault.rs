//! hs-vault in a sealed HOME.

use crate::support::auth::{auth_json, jwt_claims, mint_marker, read_tokens, FakeAccount};
use crate::support::env::TestEnv;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A ChatGPT auth.json for `name@example.com` (tokens minted by the harness, all `tok-…`).
pub fn login_text(name: &str, plan: &str) -> String {
    let acct = FakeAccount::new(name, plan);
    auth_json(&acct, &mint_marker("refresh"))
}

fn write_private(p: &Path, text: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn add_list_show_path_remove() {
    let t = TestEnv::new();
    let r = t.run("hs-vault", &["add", "acc1"]).ok();
    assert!(r.stdout.contains(".codex-acc1"), "{}", r.stdout);
    t.run("hs-vault", &["add", "acc2", "--vault", "vaults/two", "--note", "work"]).ok();
    let v1 = t.home.join(".codex-acc1");
    assert_eq!(mode(&v1), 0o700);
    assert_eq!(mode(&t.home.join("vaults/two")), 0o700);
    assert_eq!(mode(&t.config_dir().join("accounts.json")), 0o600);

    let list = t.run("hs-vault", &["list", "--json"]).ok().json_lines();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "acc1");
    assert_eq!(list[0]["vault"], v1.to_str().unwrap());
    assert_eq!(list[0]["auth"], "none");
    assert_eq!(list[0]["logged_in"], false);
    for k in ["email", "plan", "account_id", "token_expires_at"] {
        assert!(list[0][k].is_null(), "{k}");
    }
    assert_eq!(list[1]["note"], "work");
    assert_eq!(list[1]["vault"], t.home.join("vaults/two").to_str().unwrap());

    let human = t.run("hs-vault", &["list"]).ok().stdout;
    assert!(human.starts_with("NAME "), "{human}");
    assert_eq!(human.lines().count(), 3);

    let show = t.run("hs-vault", &["show", "acc2", "--json"]).ok().json();
    assert_eq!(show["name"], "acc2");
    assert_eq!(t.run("hs-vault", &["path", "acc1"]).ok().stdout.trim(), v1.to_str().unwrap());

    // duplicates and unknown names are refused, registry untouched
    let before = std::fs::read(t.config_dir().join("accounts.json")).unwrap();
    let r = t.run("hs-vault", &["add", "acc1"]).code(2);
    assert!(r.stderr.starts_with("hs-vault: account 'acc1' already exists"), "{}", r.stderr);
    let r = t.run("hs-vault", &["show", "nope"]).code(2);
    assert_eq!(r.stderr.trim(), "hs-vault: unknown account 'nope' (known: acc1, acc2)");
    let r = t.run("hs-vault", &["add", "a/b"]).code(2);
    assert!(r.stderr.contains("invalid account name"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    assert_eq!(std::fs::read(t.config_dir().join("accounts.json")).unwrap(), before);

    t.run("hs-vault", &["remove", "acc1"]).ok();
    assert!(v1.is_dir(), "vault kept without --purge");
    t.run("hs-vault", &["remove", "acc2", "--purge"]).ok();
    assert!(!t.home.join("vaults/two").exists());
    assert!(t.run("hs-vault", &["list", "--json"]).ok().stdout.is_empty());
}

#[test]
fn import_moves_the_login_and_links_back() {
    let t = TestEnv::new();
    let shared = t.home.join(".codex");
    let text = login_text("me", "plus");
    let exp = jwt_claims(&read_tokens(&text).unwrap().access_token).unwrap()["exp"].as_i64().unwrap();
    write_private(&shared.join("auth.json"), &text);
    let r = t.run("hs-vault", &["import", "main"]).ok();
    assert!(r.stdout.contains("me@example.com"), "{}", r.stdout);
    let vault_file = t.home.join(".codex-main/auth.json");
    assert_eq!(std::fs::read_to_string(&vault_file).unwrap(), text);
    assert_eq!(mode(&vault_file), 0o600);
    assert_eq!(mode(&t.home.join(".codex-main")), 0o700);
    let link = shared.join("auth.json");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(&link).unwrap(), vault_file);

    let list = t.run("hs-vault", &["list", "--json"]).ok();
    let v = &list.json_lines()[0];
    assert_eq!(v["auth"], "chatgpt");
    assert_eq!(v["email"], "me@example.com");
    assert_eq!(v["plan"], "plus");
    assert_eq!(v["account_id"], "acct-me");
    let want = chrono::DateTime::from_timestamp(exp, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(v["token_expires_at"], want.as_str());
    assert_eq!(v["logged_in"], true);
    let human = t.run("hs-vault", &["show", "main"]).ok();
    for out in [&list.stdout, &human.stdout, &list.stderr, &human.stderr] {
        assert!(!out.contains("tok-"), "a token was printed: {out}");
    }

    // a second import from the same place is refused: it is a link now
    let r = t.run("hs-vault", &["import", "other"]).code(2);
    assert!(r.stderr.contains("is already a link to"), "{}", r.stderr);
}

#[test]
fn import_refuses_corrupt_login_and_leaves_it() {
    let t = TestEnv::new();
    let src = t.home.join("old/auth.json");
    write_private(&src, "{\"tokens\": {\n  \"id_token\": ");
    let from = t.home.join("old");
    let r = t.run("hs-vault", &["import", "x", "--from", from.to_str().unwrap()]).code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("{}:2:14: truncated JSON", src.display())), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&src).unwrap(), "{\"tokens\": {\n  \"id_token\": ");
    assert!(!t.home.join(".codex-x/auth.json").exists());
    // nothing to import
    let r = t.run("hs-vault", &["import", "y"]).code(2);
    assert!(r.stderr.contains("no login to import"), "{}", r.stderr);
    // vault already holding a login
    t.run("hs-vault", &["add", "z"]).ok();
    write_private(&t.home.join(".codex-z/auth.json"), &login_text("z", "pro"));
    write_private(&src, &login_text("a", "pro"));
    let r = t.run("hs-vault", &["import", "z", "--from", from.to_str().unwrap()]).code(2);
    assert!(r.stderr.contains("already has"), "{}", r.stderr);
    assert!(std::fs::symlink_metadata(&src).unwrap().is_file());
}

#[test]
fn corrupt_or_unknown_registry_is_refused_and_kept() {
    let t = TestEnv::new();
    let reg = t.config_dir().join("accounts.json");
    for (text, want) in [
        ("{\"version\":1,\"accounts\":[{\"name\":\"a\",", ":1:37: truncated JSON"),
        ("{\"version\":9,\"accounts\":[]}", ": unsupported version 9"),
        ("{\"version\":1,\"accounts\":[{\"name\":\"a b\",\"vault\":\"/v\"}]}", "invalid account name"),
    ] {
        write_private(&reg, text);
        for args in [&["list"][..], &["add", "new"], &["show", "a"]] {
            let r = t.run("hs-vault", args).code(2);
            assert!(r.stderr.starts_with(&format!("hs-vault: {}", reg.display())), "{args:?}: {}", r.stderr);
            assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
            assert_eq!(r.stderr.lines().count(), 1);
            assert_eq!(std::fs::read_to_string(&reg).unwrap(), text);
        }
    }
}

#[test]
fn list_flags_a_corrupt_vault_login() {
    let t = TestEnv::new();
    t.run("hs-vault", &["add", "good"]).ok();
    t.run("hs-vault", &["add", "bad"]).ok();
    write_private(&t.home.join(".codex-bad/auth.json"), "not json");
    let r = t.run("hs-vault", &["list", "--json"]).code(2);
    let lines = r.json_lines();
    assert_eq!(lines[0]["auth"], "none");
    assert_eq!(lines[1]["auth"], "invalid");
    assert!(r.stderr.contains(".codex-bad/auth.json:1:2: invalid JSON"), "{}", r.stderr);
}

/// A stand-in for `codex login` that records its arguments and writes a login.
fn fake_login_codex(t: &TestEnv) -> std::path::PathBuf {
    let dir = t.root().join("fixture-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("codex");
    let auth = login_text("new", "pro").replace('\'', "");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\necho \"$@\" >> \"{log}\"\numask 022\nprintf '%s' '{auth}' > \"$CODEX_HOME/auth.json\"\n",
            log = t.root().join("codex-args.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn login_runs_real_codex_in_the_vault() {
    let mut t = TestEnv::new();
    let codex = fake_login_codex(&t);
    // not installed at all: a clear error
    let r = t.run("hs-vault", &["login", "acc1"]).code(2);
    assert!(r.stderr.starts_with("hs-vault: codex not found"), "{}", r.stderr);
    assert!(!t.config_dir().join("accounts.json").exists(), "nothing registered on failure");

    let path = format!("{}:{}", codex.parent().unwrap().display(), t.vars["PATH"].to_str().unwrap());
    t.set("PATH", path);
    let r = t.run("hs-vault", &["login", "acc1", "--device-auth"]).ok();
    assert!(r.stdout.contains("acc1 logged in (new@example.com)"), "{}", r.stdout);
    let log = t.root().join("codex-args.log");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "-c cli_auth_credentials_store=\"file\" login --device-auth\n");
    let f = t.home.join(".codex-acc1/auth.json");
    assert_eq!(mode(&f), 0o600, "tightened from the 0644 the fake wrote");

    // already logged in: nothing runs
    let r = t.run("hs-vault", &["login", "acc1"]).ok();
    assert!(r.stdout.contains("already logged in"), "{}", r.stdout);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    t.run("hs-vault", &["login", "acc1", "--relogin"]).ok();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "-c cli_auth_credentials_store=\"file\" login --device-auth\n-c cli_auth_credentials_store=\"file\" login\n");
}

#[test]
fn leak_scan_finds_a_planted_token() {
    let t = TestEnv::new();
    let f = t.home.join(".local/state/codex-hotswap/events.jsonl");
    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
    std::fs::write(&f, "{\"oops\":\"tok-refresh-1\"}\n").unwrap();
    assert_eq!(crate::support::env::files_with_tokens(t.root()), vec![f.clone()]);
    std::fs::write(t.home.join("auth.json"), "tok-allowed").unwrap();
    std::fs::remove_file(&f).unwrap();
    assert!(crate::support::env::files_with_tokens(t.root()).is_empty());
}

/// With the real codex.
mod real {
    use super::*;

    /// A config that asks for the keyring (here in the vault, as a system or managed config layer
    /// would) must not keep `hs-vault login` out of the vault's auth.json: on this machine no keyring
    /// answers, and codex 0.169.0 alone fails with "failed to write OAuth tokens to keyring".
    #[test]
    fn login_keeps_the_login_in_the_vault_file_whatever_the_config_asks() {
        let mut t = TestEnv::new();
        crate::support::tui::put_real_codex_on_path(&mut t);
        t.run("hs-vault", &["add", "k1"]).ok();
        let vault = t.home.join(".codex-k1");
        std::fs::write(vault.join("config.toml"), "cli_auth_credentials_store = \"keyring\"\n").unwrap();
        let r = t.run_stdin("hs-vault", &["login", "k1", "--with-api-key"], b"sk-test-keyring-0123\n").ok();
        assert!(r.stdout.contains("k1 logged in (apikey)"), "{}\n{}", r.stdout, r.stderr);
        assert!(!r.stdout.contains("sk-test-keyring") && !r.stderr.contains("sk-test-keyring-0123"), "the key was printed");
        let f = vault.join("auth.json");
        assert_eq!(mode(&f), 0o600);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["OPENAI_API_KEY"], "sk-test-keyring-0123");
        let show = t.run("hs-vault", &["show", "k1", "--json"]).ok();
        assert!(show.stdout.contains("\"auth\":\"apikey\""), "{}", show.stdout);
    }
}
