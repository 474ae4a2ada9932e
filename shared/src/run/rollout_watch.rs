//! Following the session's rollout file while codex runs: which file it is, the session id in
//! its `session_meta` line, and the limit and rate-limit records appended after this run started.
//!
//! Records written before this run's launch are never reported: a resumed session appends to
//! the file that already holds the old limit, and that old limit must not count again.

use crate::events::{Event, LimitEvent, RateLimitsEvent};
use super::recover::{self, Trouble};
use crate::rollout::{FollowOptions, Follower};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// True for a file named like codex's session rollouts (`rollout-<time>-<uuid>.jsonl`).
pub fn is_rollout_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
}

pub use crate::rollout::{read_session_meta, SessionMeta};

/// The newest rollout under `sessions` whose `session_meta` names `cwd` and that started at or
/// after `since` (for when codex's open files cannot be read).
pub fn newest_rollout_for(sessions: &Path, cwd: &Path, since: DateTime<Utc>) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    // File times are coarser than the clock (a kernel tick): a second of slack for this
    // pre-filter; the `session_meta` time below is the exact test.
    let since_sys: std::time::SystemTime = (since - chrono::Duration::seconds(1)).into();
    let mut stack = vec![sessions.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::metadata(&p) else { continue };
            if meta.is_dir() {
                stack.push(p);
            } else if is_rollout_name(&p) && meta.modified().is_ok_and(|m| m >= since_sys) {
                found.push((meta.modified().unwrap_or(since_sys), p));
            }
        }
    }
    found.sort();
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    found.into_iter().rev().map(|(_, p)| p).find(|p| {
        read_session_meta(p).is_ok_and(|m| {
            // session_meta times are read in whole seconds
            m.cwd.as_deref().is_some_and(|c| canon(c) == canon(cwd)) && m.timestamp.is_none_or(|t| t.timestamp() >= since.timestamp())
        })
    })
}

/// The session id in a line codex printed: `session id: <id>` (exec's header on stderr),
/// `"thread_id":"<id>"` (`exec --json`'s `thread.started`), `codex resume <id>` (the TUI's
/// goodbye). Colours and other escape sequences around it do not matter.
pub fn session_id_in_line(line: &str) -> Option<String> {
    for marker in ["session id: ", "\"thread_id\":\"", "codex resume "] {
        let Some(at) = line.find(marker) else { continue };
        let rest = &line[at + marker.len()..];
        // skip an escape sequence (`\x1b[36m`) right before the id
        let rest = match rest.strip_prefix('\x1b') {
            Some(r) => r.trim_start_matches(|c: char| !c.is_ascii_alphabetic()).get(1..).unwrap_or(""),
            None => rest,
        };
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
        if id.len() == 36 && id.matches('-').count() == 4 {
            return Some(id);
        }
    }
    None
}

/// The rollout of session `id` under `sessions` (its file name ends in the id).
pub fn find_session(sessions: &Path, id: &str) -> Option<PathBuf> {
    let suffix = format!("-{id}.jsonl");
    let mut stack = vec![sessions.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_rollout_name(&p) && p.to_string_lossy().ends_with(&suffix) {
                return Some(p);
            }
        }
    }
    None
}

/// The limits already recorded in a rollout (a resumed or forked session redraws them).
pub fn recorded_limits(path: &Path) -> Vec<LimitEvent> {
    let mut tail = RolloutTail::new(path.to_path_buf(), DateTime::<Utc>::MIN_UTC);
    tail.poll().into_iter().filter_map(|e| if let Event::Limit(l) = e { Some(l) } else { None }).collect()
}

/// Tails one rollout file with [`crate::rollout::Follower`], keeping what hs-run needs on top:
/// only records stamped at or after this run's launch, the session id, and the exact reset time
/// of a limit (from the `token_count` record at 100% that comes with it; the message only says
/// "8:13 PM").
pub struct RolloutTail {
    pub path: PathBuf,
    pub meta: Option<SessionMeta>,
    follower: Option<Follower>,
    /// Whole seconds, like the records' times as the follower reads them.
    since: DateTime<Utc>,
    last_limits: Option<RateLimitsEvent>,
}

impl RolloutTail {
    /// Follows `path` from its start, reporting only records stamped at or after `since`.
    pub fn new(path: PathBuf, since: DateTime<Utc>) -> RolloutTail {
        RolloutTail::open(path, since, false)
    }

    /// Follows `path` from its current end: everything already in it is old.
    pub fn at_end(path: PathBuf, since: DateTime<Utc>) -> RolloutTail {
        RolloutTail::open(path, since, true)
    }

    fn open(path: PathBuf, since: DateTime<Utc>, from_end: bool) -> RolloutTail {
        let follower = Follower::open(&path, FollowOptions { from_end, ..Default::default() }).ok();
        let since = DateTime::from_timestamp(since.timestamp(), 0).unwrap_or(since);
        RolloutTail { meta: read_session_meta(&path).ok(), path, follower, since, last_limits: None }
    }

    /// A turn began at or after `since` (in what was read so far).
    pub fn turn_started(&self) -> bool {
        self.follower.as_ref().and_then(Follower::turn_started).is_some_and(|t| t >= self.since)
    }

    /// The errors of turns read so far (stamped at or after `since`) that tell of a dead login or
    /// a refused thread ([`super::recover`]); each is given once.
    pub fn take_troubles(&mut self) -> Vec<Trouble> {
        let since = self.since;
        let errors = self.follower.as_mut().map(Follower::take_errors).unwrap_or_default();
        errors
            .into_iter()
            .filter(|e| e.at >= since)
            .filter_map(|e| recover::classify(&e.message, e.info.as_deref()).map(|kind| Trouble { kind, text: e.message }))
            .collect()
    }

    /// The turns read so far that began or ended at or after `since` (none for an old file's
    /// records: a resumed session's earlier turns are not this run's).
    pub fn turns(&self) -> crate::rollout::Turns {
        let t = self.follower.as_ref().map(Follower::turns).unwrap_or_default();
        let new = |x: Option<DateTime<Utc>>| x.is_some_and(|x| x >= self.since);
        if new(t.started) || new(t.ended) {
            t
        } else {
            Default::default()
        }
    }

    /// Reads what was appended since the last call; returns the new events (without account).
    pub fn poll(&mut self) -> Vec<Event> {
        if self.meta.is_none() {
            self.meta = read_session_meta(&self.path).ok();
        }
        if self.follower.is_none() {
            self.follower = Follower::open(&self.path, FollowOptions::default()).ok();
        }
        let evs = self.follower.as_mut().and_then(|f| f.poll().ok()).unwrap_or_default();
        let mut out = Vec::new();
        for ev in evs {
            match ev {
                Event::RateLimits(r) => {
                    self.last_limits = Some(r.clone());
                    if r.at >= self.since {
                        out.push(Event::RateLimits(r));
                    }
                }
                Event::Limit(mut l) if l.at >= self.since => {
                    if let Some(exact) = self.last_limits.as_ref().and_then(full_window_reset) {
                        l.resets_at = Some(exact);
                    }
                    if l.session_id.is_none() {
                        l.session_id = self.meta.as_ref().map(|m| m.id.clone());
                    }
                    out.push(Event::Limit(l));
                }
                _ => {}
            }
        }
        out
    }
}

/// The latest reset among the windows at 100%.
fn full_window_reset(r: &RateLimitsEvent) -> Option<DateTime<Utc>> {
    [&r.primary, &r.secondary]
        .into_iter()
        .flatten()
        .filter(|w| w.used_percent.is_some_and(|u| u >= 100.0))
        .filter_map(|w| w.resets_at)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Source;
    use std::io::Write;

    #[test]
    fn tail_reports_new_records_only() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rollout-2026-11-24T18-00-00-abc.jsonl");
        let mut f = std::fs::File::create(&p).unwrap();
        writeln!(f, r#"{{"timestamp":"2026-11-24T18:00:00Z","type":"session_meta","payload":{{"id":"abc","cwd":"/w","timestamp":"2026-11-24T18:00:00Z"}}}}"#).unwrap();
        writeln!(f, r#"{{"timestamp":"2026-11-24T18:00:01Z","type":"event_msg","payload":{{"type":"task_complete","error":{{"message":"old","codex_error_info":"usage_limit_exceeded"}}}}}}"#).unwrap();
        let mut t = RolloutTail::new(p.clone(), "2026-11-24T18:05:00Z".parse().unwrap());
        assert!(t.poll().is_empty());
        assert_eq!(t.meta.as_ref().unwrap().id, "abc");
        writeln!(f, r#"{{"timestamp":"2026-11-24T18:06:00Z","type":"event_msg","payload":{{"type":"token_count","info":null,"rate_limits":{{"primary":{{"used_percent":100.0,"window_minutes":300,"resets_at":1795546357}},"secondary":null}}}}}}"#).unwrap();
        write!(f, r#"{{"timestamp":"2026-11-24T18:06:01Z","type":"event_msg","payload":{{"type":"task_complete","error":{{"message":"You’ve hit your usage limit.","codex_error_info":"usage_limit_exceeded"}}}}}}"#).unwrap();
        f.flush().unwrap();
        let evs = t.poll();
        assert_eq!(evs.len(), 1, "{evs:?}"); // the limit line is not complete yet
        writeln!(f).unwrap();
        let mut at_end = RolloutTail::at_end(p.clone(), DateTime::<Utc>::MIN_UTC);
        let evs = t.poll();
        match &evs[..] {
            [Event::Limit(l)] => {
                assert_eq!(l.text, "You’ve hit your usage limit.");
                assert_eq!(l.resets_at, DateTime::from_timestamp(1795546357, 0));
                assert_eq!(l.session_id.as_deref(), Some("abc"));
                assert_eq!(l.source, Source::Rollout);
            }
            other => panic!("{other:?}"),
        }
        // from the end: nothing old, only what comes later
        assert!(at_end.poll().is_empty());
        writeln!(f, r#"{{"timestamp":"2020-01-01T00:00:00Z","type":"event_msg","payload":{{"type":"error","message":"new","codex_error_info":"usage_limit_exceeded"}}}}"#).unwrap();
        assert!(matches!(&at_end.poll()[..], [Event::Limit(l)] if l.text == "new"));
        // a refused login after the launch is a trouble, once; one before it is not
        writeln!(f, r#"{{"timestamp":"2026-11-24T18:04:00Z","type":"event_msg","payload":{{"type":"task_complete","error":{{"message":"old refusal","codex_error_info":"unauthorized"}}}}}}"#).unwrap();
        writeln!(f, r#"{{"timestamp":"2026-11-24T18:07:00Z","type":"event_msg","payload":{{"type":"task_complete","error":{{"message":"Please log out and sign in again.","codex_error_info":"unauthorized"}}}}}}"#).unwrap();
        assert!(t.poll().is_empty());
        let troubles = t.take_troubles();
        assert_eq!(troubles.iter().map(|t| (t.kind, t.text.as_str())).collect::<Vec<_>>(), [(recover::TroubleKind::DeadLogin, "Please log out and sign in again.")]);
        assert!(t.take_troubles().is_empty());
        assert_eq!(find_session(d.path(), "abc"), Some(p.clone()));
        let id = "019a1f2e-3b4c-7d5e-8f60-718293a4b5c6";
        for line in [
            format!("session id: {id}"),
            format!(r#"{{"type":"thread.started","thread_id":"{id}"}}"#),
            format!("  \x1b[36mcodex resume {id}\x1b[39m"),
        ] {
            assert_eq!(session_id_in_line(&line).as_deref(), Some(id), "{line:?}");
        }
        assert_eq!(session_id_in_line("codex resume --last"), None);
        assert_eq!(session_id_in_line("session id: 12345"), None);
        assert_eq!(find_session(d.path(), "bc"), None);
        let old = recorded_limits(&p);
        assert_eq!(old.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["old", "You’ve hit your usage limit.", "new"]);
        let found = newest_rollout_for(d.path(), Path::new("/w"), "2026-11-24T17:00:00Z".parse().unwrap());
        assert_eq!(found.as_deref(), Some(p.as_path()));
        assert_eq!(newest_rollout_for(d.path(), Path::new("/other"), "2026-11-24T17:00:00Z".parse().unwrap()), None);
        // a session that started in the launch's second (meta times are whole seconds)
        let same_second = newest_rollout_for(d.path(), Path::new("/w"), "2026-11-24T18:00:00.700Z".parse().unwrap());
        assert_eq!(same_second.as_deref(), Some(p.as_path()));
        assert_eq!(newest_rollout_for(d.path(), Path::new("/w"), "2026-11-24T18:00:01Z".parse().unwrap()), None);
    }
}
