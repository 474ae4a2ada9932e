//! Keeps codex's thread index usable after an overlay is gone.
//!
//! codex 0.169.0 records each thread's rollout file in `state_5.sqlite` (`threads.rollout_path`)
//! as `<CODEX_HOME as given>/sessions/…`, not as the real path. A session that ran in an overlay
//! is therefore indexed as `<runtime>/<id>/sessions/…`; once the overlay is removed, `codex resume
//! <id>` in the shared store fails with "no rollout found for thread id" (a missing row would be
//! found again by scanning `sessions/`, a row with a dead path is not). So when an overlay goes,
//! rows that point into it are rewritten to the same file in the shared store, where the file
//! really lives. Only `rollout_path` of those rows is changed, and only when the file exists there.

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `sqlite_home` at the top level of `<home>/config.toml` (a one-line TOML string, absolute),
/// which moves codex's databases like `CODEX_SQLITE_HOME` does.
pub fn sqlite_home_in_config(home: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(home.join("config.toml")).ok()?;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            break; // tables start: no more top-level keys
        }
        let Some(rest) = line.strip_prefix("sqlite_home") else { continue };
        let Some(value) = rest.trim_start().strip_prefix('=').map(str::trim) else { continue };
        let quoted = |q: char| value.strip_prefix(q).and_then(|v| v.split(q).next());
        let path = PathBuf::from(quoted('"').or_else(|| quoted('\''))?);
        return path.is_absolute().then_some(path);
    }
    None
}

/// The thread-index databases in `dir`: `state_<n>.sqlite` (several after a codex upgrade).
pub fn state_dbs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("state_"))
                .and_then(|n| n.strip_suffix(".sqlite"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn open(db: &Path, write: bool) -> Result<Connection> {
    let flags = if write { OpenFlags::SQLITE_OPEN_READ_WRITE } else { OpenFlags::SQLITE_OPEN_READ_ONLY };
    let conn = Connection::open_with_flags(db, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .with_context(|| format!("cannot open {}", db.display()))?;
    conn.busy_timeout(Duration::from_secs(10)).with_context(|| format!("cannot configure {}", db.display()))?;
    Ok(conn)
}

fn has_rollout_paths(conn: &Connection, db: &Path) -> Result<bool> {
    conn.query_row("SELECT 1 FROM pragma_table_info('threads') WHERE name = 'rollout_path'", [], |_| Ok(()))
        .optional()
        .map(|o| o.is_some())
        .with_context(|| format!("cannot read the schema of {}", db.display()))
}

/// `(thread id, rollout_path)` of the rows whose path starts with `prefix/`.
fn rows_under(conn: &Connection, db: &Path, prefix: &str) -> Result<Vec<(String, String)>> {
    let like = format!("{prefix}/");
    let mut stmt = conn
        .prepare("SELECT id, rollout_path FROM threads WHERE substr(rollout_path, 1, length(?1)) = ?1")
        .with_context(|| format!("cannot query {}", db.display()))?;
    let rows = stmt
        .query_map([&like], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .with_context(|| format!("cannot query {}", db.display()))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().with_context(|| format!("cannot read {}", db.display()))
}

/// What a repair did to one database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Repair {
    /// Rows now pointing at the shared store.
    pub repaired: usize,
    /// Rows pointing into a removed overlay whose file is not in the shared store either.
    pub unresolved: usize,
}

/// Rewrites, in every thread index in `db_dir`, the rows whose rollout path lies under one of
/// `prefixes` (`<prefix>/<id>/<rest>` when `by_id`, else `<prefix>/<rest>`) to
/// `<shared>/<rest>`, when that file exists. With `by_id`, rows whose overlay folder still exists
/// are left alone (a live overlay's paths still work).
pub fn repair(db_dir: &Path, prefixes: &[PathBuf], by_id: bool, shared: &Path) -> Result<Repair> {
    let mut total = Repair::default();
    for db in state_dbs(db_dir) {
        let mut conn = open(&db, true)?;
        if !has_rollout_paths(&conn, &db)? {
            continue;
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .with_context(|| format!("cannot lock {}", db.display()))?;
        for prefix in prefixes {
            let Some(prefix_str) = prefix.to_str() else { continue };
            for (id, old) in rows_under(&tx, &db, prefix_str)? {
                let rest = &old[prefix_str.len() + 1..];
                let rest = if by_id {
                    let Some((overlay_id, rest)) = rest.split_once('/') else { continue };
                    if prefix.join(overlay_id).symlink_metadata().is_ok() {
                        continue;
                    }
                    rest
                } else {
                    rest
                };
                let new = shared.join(rest);
                match new.to_str() {
                    Some(new) if Path::new(new).is_file() => {
                        tx.execute("UPDATE threads SET rollout_path = ?1 WHERE id = ?2", [new, id.as_str()])
                            .with_context(|| format!("cannot update {}", db.display()))?;
                        total.repaired += 1;
                    }
                    _ => total.unresolved += 1,
                }
            }
        }
        tx.commit().with_context(|| format!("cannot commit {}", db.display()))?;
    }
    Ok(total)
}

/// Rows of the thread indexes in `db_dir` that point under `root` at a file that is not there.
pub fn dangling_under(db_dir: &Path, roots: &[PathBuf]) -> Result<usize> {
    let mut n = 0;
    for db in state_dbs(db_dir) {
        let conn = open(&db, false)?;
        if !has_rollout_paths(&conn, &db)? {
            continue;
        }
        for root in roots {
            let Some(root) = root.to_str() else { continue };
            n += rows_under(&conn, &db, root)?.iter().filter(|(_, p)| !Path::new(p).exists()).count();
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(dir: &Path, rows: &[(&str, &str)]) -> PathBuf {
        let db = dir.join("state_5.sqlite");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE threads (id TEXT PRIMARY KEY, rollout_path TEXT NOT NULL, title TEXT);")
            .unwrap();
        for (id, p) in rows {
            c.execute("INSERT INTO threads (id, rollout_path, title) VALUES (?1, ?2, 't')", [id, p]).unwrap();
        }
        db
    }

    fn path_of(db: &Path, id: &str) -> String {
        Connection::open(db)
            .unwrap()
            .query_row("SELECT rollout_path FROM threads WHERE id = ?1", [id], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn rewrites_rows_of_a_removed_overlay_only() {
        let d = tempfile::tempdir().unwrap();
        let (shared, root) = (d.path().join("shared"), d.path().join("runtime"));
        std::fs::create_dir_all(shared.join("sessions/2026")).unwrap();
        std::fs::create_dir_all(root.join("live")).unwrap();
        std::fs::write(shared.join("sessions/2026/a.jsonl"), "{}").unwrap();
        std::fs::write(shared.join("sessions/2026/b.jsonl"), "{}").unwrap();
        let p = |s: &str| format!("{}/{s}", root.display());
        let db = db_with(
            &shared,
            &[
                ("a", &p("gone/sessions/2026/a.jsonl")),
                ("b", &p("live/sessions/2026/b.jsonl")),
                ("c", &p("gone/sessions/2026/missing.jsonl")),
                ("d", "/elsewhere/sessions/2026/a.jsonl"),
            ],
        );
        assert_eq!(dangling_under(&shared, std::slice::from_ref(&root)).unwrap(), 3);
        let r = repair(&shared, std::slice::from_ref(&root), true, &shared).unwrap();
        assert_eq!(r, Repair { repaired: 1, unresolved: 1 });
        assert_eq!(path_of(&db, "a"), shared.join("sessions/2026/a.jsonl").to_str().unwrap());
        assert_eq!(path_of(&db, "b"), p("live/sessions/2026/b.jsonl"));
        assert_eq!(path_of(&db, "d"), "/elsewhere/sessions/2026/a.jsonl");
        // one overlay by its own path, live or not
        let r = repair(&shared, &[root.join("live")], false, &shared).unwrap();
        assert_eq!(r, Repair { repaired: 1, unresolved: 0 });
        assert_eq!(path_of(&db, "b"), shared.join("sessions/2026/b.jsonl").to_str().unwrap());
    }

    #[test]
    fn sqlite_home_from_config_toml() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            ("model = \"x\"\nsqlite_home = \"/data/db\" # moved\n", Some("/data/db")),
            ("sqlite_home='/lit/eral'\n", Some("/lit/eral")),
            ("sqlite_home = \"relative\"\n", None),
            ("[projects.\"/x\"]\nsqlite_home = \"/in/a/table\"\n", None),
            ("sqlite_homes = \"/other/key\"\n", None),
        ];
        for (text, want) in cases {
            std::fs::write(d.path().join("config.toml"), text).unwrap();
            assert_eq!(sqlite_home_in_config(d.path()), want.map(PathBuf::from), "{text}");
        }
        std::fs::remove_file(d.path().join("config.toml")).unwrap();
        assert_eq!(sqlite_home_in_config(d.path()), None);
    }

    #[test]
    fn other_schemas_and_names_are_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let c = Connection::open(d.path().join("state_9.sqlite")).unwrap();
        c.execute_batch("CREATE TABLE threads (id TEXT, path TEXT);").unwrap();
        std::fs::write(d.path().join("state_x.sqlite"), "not a db").unwrap();
        assert_eq!(state_dbs(d.path()), vec![d.path().join("state_9.sqlite")]);
        assert_eq!(repair(d.path(), &[d.path().join("r")], true, d.path()).unwrap(), Repair::default());
    }
}
