//! Following the session's rollout file while codex runs: which file it is, the session id in
//! its `session_meta` line, and the limit and rate-limit records appended after this run started.
//!
//! Records written before this run's launch are never reported: a resumed session appends to
//! the file that already holds the old limit, and that old limit must not count again.

use crate::events::{Event, LimitEvent, LimitKind, RateLimitsEvent, RateWindow, Source};
use chrono::{DateTime, Utc};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// True for a file named like codex's session rollouts (`rollout-<time>-<uuid>.jsonl`).
pub fn is_rollout_name(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
}

/// The `session_meta` payload fields hs-run uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionMeta {
    pub id: String,
    pub cwd: Option<PathBuf>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// Reads the first line of a rollout; `None` when it is not (yet) a `session_meta` record.
pub fn read_session_meta(path: &Path) -> Option<SessionMeta> {
    let mut first = String::new();
    let f = std::fs::File::open(path).ok()?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut first).ok()?;
    let v: serde_json::Value = serde_json::from_str(first.trim()).ok()?;
    if v.get("type")?.as_str()? != "session_meta" {
        return None;
    }
    let p = v.get("payload")?;
    let id = p.get("id").or_else(|| p.get("session_id"))?.as_str()?.to_string();
    let ts = |x: Option<&serde_json::Value>| x.and_then(|t| t.as_str()).and_then(|t| t.parse().ok());
    Some(SessionMeta {
        id,
        cwd: p.get("cwd").and_then(|c| c.as_str()).map(PathBuf::from),
        timestamp: ts(p.get("timestamp")).or_else(|| ts(v.get("timestamp"))),
    })
}

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
        read_session_meta(p).is_some_and(|m| {
            m.cwd.as_deref().is_some_and(|c| canon(c) == canon(cwd)) && m.timestamp.is_none_or(|t| t >= since)
        })
    })
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

/// Tails one rollout file.
pub struct RolloutTail {
    pub path: PathBuf,
    pub meta: Option<SessionMeta>,
    offset: u64,
    partial: Vec<u8>,
    since: DateTime<Utc>,
    /// The latest rate-limit windows seen (for the reset time of a limit record).
    last_limits: Option<RateLimitsEvent>,
}

impl RolloutTail {
    /// Follows `path`, reporting only records stamped at or after `since`.
    pub fn new(path: PathBuf, since: DateTime<Utc>) -> RolloutTail {
        let meta = read_session_meta(&path);
        RolloutTail { path, meta, offset: 0, partial: Vec::new(), since, last_limits: None }
    }

    /// Follows `path` from its current end (a partial last line counts as old).
    pub fn at_end(path: PathBuf, since: DateTime<Utc>) -> RolloutTail {
        let mut t = RolloutTail::new(path, since);
        let text = std::fs::read(&t.path).unwrap_or_default();
        // Up to the last newline is old; a partial line after it is old too, but its end is not
        // known yet: skip it by keeping it as the start of the next line, marked unreadable.
        t.offset = text.len() as u64;
        if text.last().is_some_and(|b| *b != b'\n') {
            t.partial = b"\x00".to_vec();
        }
        t
    }

    /// Reads what was appended since the last call; returns the new events (without account).
    pub fn poll(&mut self) -> Vec<Event> {
        if self.meta.is_none() {
            self.meta = read_session_meta(&self.path);
        }
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.offset)).is_ok() {
                let _ = f.read_to_end(&mut buf);
            }
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut out = Vec::new();
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            if let Some(ev) = self.record(&String::from_utf8_lossy(&line)) {
                out.push(ev);
            }
        }
        out
    }

    fn record(&mut self, line: &str) -> Option<Event> {
        let v: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
        let at: DateTime<Utc> = v.get("timestamp")?.as_str()?.parse().ok()?;
        let p = v.get("payload")?;
        let session_id = self.meta.as_ref().map(|m| m.id.clone());
        if let Some(rl) = p.get("rate_limits").filter(|r| r.is_object()) {
            let window = |k: &str| {
                let w = rl.get(k).filter(|w| w.is_object())?;
                Some(RateWindow {
                    used_percent: w.get("used_percent").and_then(|x| x.as_f64()),
                    window_minutes: w.get("window_minutes").and_then(|x| x.as_u64()),
                    resets_at: w
                        .get("resets_at")
                        .and_then(|x| x.as_i64())
                        .and_then(|s| DateTime::from_timestamp(s, 0))
                        .or_else(|| {
                            let secs = w.get("resets_in_seconds")?.as_i64()?;
                            Some(at + chrono::Duration::seconds(secs))
                        }),
                })
            };
            let ev = RateLimitsEvent {
                primary: window("primary"),
                secondary: window("secondary"),
                limit_id: rl.get("limit_id").and_then(|x| x.as_str()).map(String::from),
                plan_type: rl.get("plan_type").and_then(|x| x.as_str()).map(String::from),
                account: None,
                at,
                session_id: session_id.clone(),
            };
            self.last_limits = Some(ev.clone());
            return (at >= self.since).then_some(Event::RateLimits(ev));
        }
        if !line.contains("usage_limit_exceeded") || at < self.since {
            return None;
        }
        let err = p.get("error").unwrap_or(p);
        let text = err.get("message").and_then(|m| m.as_str()).unwrap_or("usage limit reached").to_string();
        let resets_at = self.last_limits.as_ref().and_then(|l| {
            [&l.primary, &l.secondary]
                .into_iter()
                .flatten()
                .filter(|w| w.used_percent.is_some_and(|u| u >= 100.0))
                .filter_map(|w| w.resets_at)
                .max()
        });
        Some(Event::Limit(LimitEvent {
            kind: LimitKind::UsageLimit,
            text,
            resets_at,
            source: Source::Rollout,
            account: None,
            at,
            session_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(find_session(d.path(), "abc"), Some(p.clone()));
        assert_eq!(find_session(d.path(), "bc"), None);
        let old = recorded_limits(&p);
        assert_eq!(old.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["old", "You’ve hit your usage limit.", "new"]);
        let found = newest_rollout_for(d.path(), Path::new("/w"), "2026-11-24T17:00:00Z".parse().unwrap());
        assert_eq!(found, Some(p));
        assert_eq!(newest_rollout_for(d.path(), Path::new("/other"), "2026-11-24T17:00:00Z".parse().unwrap()), None);
    }
}
