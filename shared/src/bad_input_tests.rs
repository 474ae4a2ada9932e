//! Property tests: every JSON file reader takes any bytes without panicking, refuses bad input
//! with one line naming the file, and a refused update leaves the file exactly as it was.

use crate::config::Config;
use crate::paths::Paths;
use crate::registry::Registry;
use crate::rotate::State;
use proptest::prelude::*;
use std::path::Path;

fn sandbox() -> (tempfile::TempDir, Paths) {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().to_path_buf();
    let paths = Paths::from_vars(|k| (k == "HOME").then(|| home.clone().into_os_string())).unwrap();
    (d, paths)
}

const REGISTRY: &str = r#"{"version":1,"accounts":[{"name":"acc1","vault":"/v/acc1","note":"n"},{"name":"acc2","vault":"/v/acc2"}]}"#;
const STATE: &str = r#"{"version":1,"current":"acc1","accounts":{"acc1":{"exhausted_until":"2026-11-24T20:13:00Z","exhausted_at":"2026-11-24T18:00:00Z","reason":"r","kind":"usage_limit","usage":{"primary_used_percent":42.5,"secondary_used_percent":null,"resets_at":null,"secondary_resets_at":null,"seen_at":"2026-11-24T18:00:00Z"}}}}"#;
const CONFIG: &str = r#"{"version":1,"default_cooldown":"1h","policy":"soonest-reset","max_swaps":3}"#;

/// Valid text, cut short or with bytes replaced, or any bytes at all.
fn damaged(valid: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = valid.len();
    prop_oneof![
        (0..len).prop_map(move |cut| valid.as_bytes()[..cut].to_vec()),
        proptest::collection::vec((0..len, any::<u8>()), 1..4).prop_map(move |edits| {
            let mut b = valid.as_bytes().to_vec();
            for (i, byte) in edits {
                b[i] = byte;
            }
            b
        }),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

fn check_error(e: &anyhow::Error, file: &Path) {
    let msg = format!("{e:#}");
    assert!(msg.contains(&file.display().to_string()), "error does not name {}: {msg}", file.display());
    assert!(!msg.contains('\n'), "error is not one line: {msg}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn registry_reader(bytes in damaged(REGISTRY)) {
        let (_d, paths) = sandbox();
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        std::fs::write(paths.registry(), &bytes).unwrap();
        if let Err(e) = Registry::load(&paths) {
            check_error(&e, &paths.registry());
            let r = Registry::update(&paths, |r| { r.accounts.clear(); Ok(()) });
            prop_assert!(r.is_err());
            prop_assert_eq!(std::fs::read(paths.registry()).unwrap(), bytes);
        }
    }

    #[test]
    fn state_reader(bytes in damaged(STATE)) {
        let (_d, paths) = sandbox();
        std::fs::create_dir_all(&paths.state_dir).unwrap();
        std::fs::write(paths.rotation(), &bytes).unwrap();
        if let Err(e) = State::load(&paths) {
            check_error(&e, &paths.rotation());
            let r = State::update(&paths, |s| { s.current = Some("x".into()); Ok(()) });
            prop_assert!(r.is_err());
            prop_assert_eq!(std::fs::read(paths.rotation()).unwrap(), bytes);
        }
    }

    #[test]
    fn config_reader(bytes in damaged(CONFIG)) {
        let (_d, paths) = sandbox();
        std::fs::create_dir_all(&paths.config_dir).unwrap();
        std::fs::write(paths.config(), &bytes).unwrap();
        if let Err(e) = Config::load(&paths).and_then(|c| c.cooldown().map(|_| c)) {
            let msg = format!("{e:#}");
            prop_assert!(!msg.contains('\n'));
            prop_assert!(msg.contains(&paths.config().display().to_string()) || msg.starts_with("config default_cooldown"), "{}", msg);
        }
    }

    #[test]
    fn auth_reader(bytes in damaged(r#"{"auth_mode":"chatgpt","tokens":{"id_token":"a.eyJlbWFpbCI6ImFAYi5jIn0.s","access_token":"x","refresh_token":"tok-r","account_id":"acct"}}"#)) {
        let (d, _paths) = sandbox();
        let f = d.path().join("auth.json");
        std::fs::write(&f, &bytes).unwrap();
        match crate::auth::inspect(&f) {
            Err(e) => {
                check_error(&e, &f);
                prop_assert!(!format!("{e:#}").contains("tok-r"), "a token leaked into an error");
            }
            Ok(_) => {}
        }
    }

    #[test]
    fn event_lines(bytes in damaged(r#"{"type":"limit","kind":"usage_limit","text":"t","resets_at":null,"source":"screen","account":"a","at":"2026-11-24T18:00:00Z"}"#)) {
        let line = String::from_utf8_lossy(&bytes);
        let _ = crate::events::parse_line(&line);
    }
}
