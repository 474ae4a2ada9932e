//! codex's session rollout files (`sessions/YYYY/MM/DD/rollout-…-<uuid>.jsonl`): the first
//! line's session metadata, and a [`Follower`] that tails the file for structured limit records
//! and rate-limit telemetry.
//!
//! Records used (see codex-facts.md):
//! - `{"type":"session_meta","payload":{"id":…,"cwd":…,"originator":…,"cli_version":…}}`
//! - `{"type":"event_msg","payload":{"type":"task_complete","error":{"message":…,"codex_error_info":…}}}`
//!   and the older `{"type":"event_msg","payload":{"type":"error","message":…,"codex_error_info":…}}`
//!   → [`Event::Limit`] with source `rollout`, when the message starts like a limit message or
//!   `codex_error_info` says `usage_limit_exceeded` (or a 429 retry failure). One limit written
//!   as both (an `error` then a `task_complete` with the same message) is reported once.
//! - `{"type":"event_msg","payload":{"type":"token_count","rate_limits":{…}}}` → [`Event::RateLimits`]
//!   (nothing when `rate_limits` is null). `resets_at` (unix seconds) or the older
//!   `resets_in_seconds` (counted from the record's `timestamp`) become RFC 3339.
//!
//! A limit's `resets_at`: the record's own `resets_at` if it has one; for a usage or model limit,
//! else the latest reset of the windows at 100 % in the turn's last `token_count` (codex writes
//! it just before the error: exact to the second); else parsed from the message.
//!
//! Events carry the record's own `timestamp` as `at` (the moment codex wrote it; now if it has
//! none) and the session id from the `session_meta` line when the follower saw it.

use crate::detect::{json_time, texts, Clock, Stamp, Zone};
use crate::events::{Event, LimitKind, RateLimitsEvent, RateWindow, Source};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Lines longer than this are skipped (tool outputs, images); the records used here are small.
const MAX_LINE: usize = 1024 * 1024;
/// Bytes read per [`Follower::poll`] step.
const READ_CHUNK: usize = 64 * 1024;

/// The first line of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionMeta {
    /// The session (thread) id: what `codex resume <id>` takes.
    pub id: String,
    pub cwd: Option<PathBuf>,
    /// `codex-tui`, `codex_exec`, …
    pub originator: Option<String>,
    pub cli_version: Option<String>,
    /// When the session started (the payload's `timestamp`, else the record's).
    pub timestamp: Option<DateTime<Utc>>,
    pub model_provider: Option<String>,
    pub creator_account_id: Option<String>,
    /// The thread that started this one, for a sub-agent's thread (codex 0.169.0 runs a review
    /// in one, `"source":{"subagent":"review"}`, with a rollout of its own).
    pub parent_thread_id: Option<String>,
}

/// Reads the `session_meta` record that starts a rollout file.
pub fn read_session_meta(path: &Path) -> Result<SessionMeta> {
    let file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
    let mut line = Vec::new();
    BufReader::new(file)
        .take(16 * MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("failed to read {}", path.display()))?;
    let v: Value =
        serde_json::from_slice(&line).with_context(|| format!("{}:1: not a JSON rollout record", path.display()))?;
    if v.get("type").and_then(Value::as_str) != Some("session_meta") {
        bail!("{}:1: the first record is not session_meta", path.display());
    }
    let p = v.get("payload").cloned().unwrap_or(Value::Null);
    let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_string);
    let Some(id) = s("id").or_else(|| s("session_id")) else {
        bail!("{}:1: session_meta has no id", path.display());
    };
    Ok(SessionMeta {
        id,
        cwd: s("cwd").map(PathBuf::from),
        originator: s("originator"),
        cli_version: s("cli_version"),
        timestamp: p.get("timestamp").or_else(|| v.get("timestamp")).and_then(json_time),
        model_provider: s("model_provider"),
        creator_account_id: s("creator_account_id"),
        parent_thread_id: s("parent_thread_id"),
    })
}

/// The messages of every limit already recorded in a rollout: for a session about to be resumed,
/// give them to [`crate::detect::Detector::add_known_text`] so their redrawn banners never count.
pub fn limit_texts(path: &Path) -> Result<Vec<String>> {
    let mut f = Follower::open(path, FollowOptions::default())?;
    Ok(f.poll()?
        .into_iter()
        .filter_map(|e| match e {
            Event::Limit(l) => Some(l.text),
            _ => None,
        })
        .collect())
}

/// Where a [`Follower`] starts and what it stamps.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Start at the end of the file (only records appended later are reported); the first
    /// line is still read for the session id. Default: from the start.
    pub from_end: bool,
    pub account: Option<String>,
    /// The zone for `try again at 7:48 PM` in messages.
    pub zone: Zone,
    /// `at` for records without a timestamp.
    pub clock: Clock,
}

/// `tail -f` of one rollout file. Call [`Follower::poll`] whenever you like (e.g. every 250 ms):
/// it reads what was appended since the last call. A partial last line waits for its end;
/// a file that shrank (rewritten) is read again from its start.
pub struct Follower {
    path: PathBuf,
    file: File,
    pos: u64,
    line: Vec<u8>,
    /// The line being read is too long and is being skipped.
    skipping: bool,
    stamp: Stamp,
    session_id: Option<String>,
    /// Messages reported since the last `task_started` (an error + task_complete pair is one).
    reported_in_turn: Vec<String>,
    /// The latest reset among the windows at 100 % in this turn's last `token_count`: the exact
    /// reset of a usage limit (codex writes it just before the error).
    full_until: Option<DateTime<Utc>>,
    /// The time of the last `task_started` read: a turn began.
    turn_started: Option<DateTime<Utc>>,
    /// Errors read that are no limit (see [`Follower::take_errors`]).
    errors: Vec<TurnError>,
    /// The time of the last `task_complete` read, and how many were read: a turn ended.
    turn_ended: Option<DateTime<Utc>>,
    turns_ended: u64,
    turns_started: u64,
    /// The last of `task_started` / `task_complete` read is a `task_started`.
    running: bool,
}

/// An error codex recorded for a turn that is not a limit (a refused login, a refused request).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnError {
    pub message: String,
    /// `codex_error_info` when it is a string (`"unauthorized"`, `"other"`).
    pub info: Option<String>,
    pub at: DateTime<Utc>,
}

/// Where the turns of a session stand, as far as its rollout was read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Turns {
    /// When the last turn began (`task_started`).
    pub started: Option<DateTime<Utc>>,
    /// When the last turn ended (`task_complete`), and how many ended.
    pub ended: Option<DateTime<Utc>>,
    pub ended_count: u64,
    /// How many turns began.
    pub started_count: u64,
    /// A turn runs: the last of the two records read is a `task_started`.
    pub running: bool,
}

impl Follower {
    pub fn open(path: &Path, opts: FollowOptions) -> Result<Follower> {
        let mut file = File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
        let mut pos = 0;
        let mut skipping = false;
        let session_id = if opts.from_end { read_session_meta(path).ok().map(|m| m.id) } else { None };
        if opts.from_end {
            pos = file.seek(SeekFrom::End(0)).with_context(|| format!("failed to read {}", path.display()))?;
            // Mid-line (codex is writing it): that record is old, skip to its end.
            if pos > 0 {
                let mut last = [0u8];
                file.seek(SeekFrom::Start(pos - 1))
                    .and_then(|_| file.read_exact(&mut last))
                    .with_context(|| format!("failed to read {}", path.display()))?;
                skipping = last[0] != b'\n';
            }
        }
        Ok(Follower {
            path: path.to_path_buf(),
            file,
            pos,
            line: Vec::new(),
            skipping,
            stamp: Stamp { account: opts.account, clock: opts.clock, zone: opts.zone },
            session_id,
            reported_in_turn: Vec::new(),
            full_until: None,
            turn_started: None,
            errors: Vec::new(),
            turn_ended: None,
            turns_ended: 0,
            turns_started: 0,
            running: false,
        })
    }

    /// The errors read since the last call that are no limit (at most the last 16).
    pub fn take_errors(&mut self) -> Vec<TurnError> {
        std::mem::take(&mut self.errors)
    }

    /// When the last turn read began (its `task_started` record).
    pub fn turn_started(&self) -> Option<DateTime<Utc>> {
        self.turn_started
    }

    /// The turn boundaries read so far.
    pub fn turns(&self) -> Turns {
        Turns {
            started: self.turn_started,
            ended: self.turn_ended,
            ended_count: self.turns_ended,
            started_count: self.turns_started,
            running: self.running,
        }
    }

    /// The session id, once the `session_meta` line was read.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads everything appended since the last call; returns its events in file order.
    pub fn poll(&mut self) -> Result<Vec<Event>> {
        let path = self.path.clone();
        let ctx = || format!("failed to read {}", path.display());
        let len = self.file.metadata().with_context(ctx)?.len();
        if len < self.pos {
            // Truncated or rewritten: start over.
            self.pos = 0;
            self.line.clear();
            self.skipping = false;
            self.reported_in_turn.clear();
            self.full_until = None;
        }
        let mut out = Vec::new();
        if len == self.pos {
            return Ok(out);
        }
        self.file.seek(SeekFrom::Start(self.pos)).with_context(ctx)?;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = self.file.read(&mut buf).with_context(ctx)?;
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            let mut rest = &buf[..n];
            while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                if !self.skipping {
                    self.line.extend_from_slice(&rest[..i]);
                    let line = std::mem::take(&mut self.line);
                    out.extend(self.record(&line));
                    self.line = line;
                }
                self.line.clear();
                self.skipping = false;
                rest = &rest[i + 1..];
            }
            if !self.skipping {
                self.line.extend_from_slice(rest);
                if self.line.len() > MAX_LINE {
                    self.line.clear();
                    self.skipping = true;
                }
            }
        }
        Ok(out)
    }

    /// One complete line.
    fn record(&mut self, line: &[u8]) -> Option<Event> {
        let v: Value = serde_json::from_slice(line.trim_ascii()).ok()?;
        let at = v.get("timestamp").and_then(json_time).unwrap_or_else(|| self.stamp.clock.now());
        let payload = v.get("payload")?;
        match v.get("type")?.as_str()? {
            "session_meta" => {
                self.session_id = payload.get("id").and_then(Value::as_str).map(str::to_string);
                None
            }
            "event_msg" => match payload.get("type")?.as_str()? {
                "task_started" | "turn_started" => {
                    self.turn_started = Some(at);
                    self.turns_started += 1;
                    self.running = true;
                    self.reported_in_turn.clear();
                    self.full_until = None;
                    None
                }
                "task_complete" | "turn_complete" => {
                    self.turn_ended = Some(at);
                    self.turns_ended += 1;
                    self.running = false;
                    self.limit(payload.get("error")?, at)
                }
                "error" => self.limit(payload, at),
                "token_count" => self.rate_limits(payload.get("rate_limits")?, at),
                _ => None,
            },
            _ => None,
        }
    }

    fn limit(&mut self, err: &Value, at: DateTime<Utc>) -> Option<Event> {
        let message = err.get("message")?.as_str()?;
        let info = err.get("codex_error_info");
        let Some(kind) = texts::classify(message).or_else(|| info.and_then(info_kind)) else {
            if self.errors.len() >= 16 {
                self.errors.remove(0);
            }
            let info = info.and_then(Value::as_str).map(str::to_string);
            self.errors.push(TurnError { message: message.to_string(), info, at });
            return None;
        };
        if self.reported_in_turn.iter().any(|m| m == message) {
            return None;
        }
        if self.reported_in_turn.len() < 16 {
            self.reported_in_turn.push(message.to_string());
        }
        let exhausted = matches!(kind, LimitKind::UsageLimit | LimitKind::ModelLimit).then_some(self.full_until);
        let resets_at = err.get("resets_at").and_then(json_time).or(exhausted.flatten());
        Some(self.stamp.limit_at(kind, message, resets_at, Source::Rollout, at, self.session_id.clone()))
    }

    fn rate_limits(&mut self, rl: &Value, at: DateTime<Utc>) -> Option<Event> {
        if !rl.is_object() {
            return None;
        }
        let window = |k: &str| {
            let w = rl.get(k).filter(|w| w.is_object())?;
            let resets_at = w.get("resets_at").and_then(json_time).or_else(|| {
                let secs = w.get("resets_in_seconds")?.as_f64()?;
                Some(at + Duration::seconds(secs as i64))
            });
            Some(RateWindow {
                used_percent: w.get("used_percent").and_then(Value::as_f64),
                window_minutes: w.get("window_minutes").and_then(Value::as_u64),
                resets_at,
            })
        };
        let s = |k: &str| rl.get(k).and_then(Value::as_str).map(str::to_string);
        let (primary, secondary) = (window("primary"), window("secondary"));
        self.full_until = [&primary, &secondary]
            .into_iter()
            .flatten()
            .filter(|w| w.used_percent.is_some_and(|p| p >= 100.0))
            .filter_map(|w| w.resets_at)
            .max();
        Some(Event::RateLimits(RateLimitsEvent {
            primary,
            secondary,
            limit_id: s("limit_id"),
            plan_type: s("plan_type"),
            account: self.stamp.account.clone(),
            at,
            session_id: self.session_id.clone(),
        }))
    }
}

/// The kind a `codex_error_info` names when the message itself is not recognised:
/// `"usage_limit_exceeded"`, or a retry failure on HTTP 429
/// (`{"response_too_many_failed_attempts":{"http_status_code":429}}`).
fn info_kind(info: &Value) -> Option<LimitKind> {
    match info {
        Value::String(s) if s == "usage_limit_exceeded" => Some(LimitKind::UsageLimit),
        Value::Object(m) => m
            .values()
            .any(|v| v.get("http_status_code").and_then(Value::as_u64) == Some(429))
            .then_some(LimitKind::RateLimited),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new().append(true).create(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    const META: &str = r#"{"timestamp":"2026-11-24T18:00:00.000Z","type":"session_meta","payload":{"id":"0199-abc","session_id":"0199-abc","timestamp":"2026-11-24T18:00:00.000Z","cwd":"/w","originator":"codex-tui","cli_version":"0.169.0"}}"#;

    #[test]
    fn meta_and_follow_with_partial_lines_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        append(&path, &format!("{META}\n"));
        let meta = read_session_meta(&path).unwrap();
        assert_eq!(meta.id, "0199-abc");
        assert_eq!(meta.originator.as_deref(), Some("codex-tui"));
        assert_eq!(meta.cwd, Some(PathBuf::from("/w")));
        assert_eq!(meta.parent_thread_id, None);

        let mut f = Follower::open(&path, FollowOptions { account: Some("a".into()), ..Default::default() }).unwrap();
        assert!(f.poll().unwrap().is_empty());
        assert_eq!(f.session_id(), Some("0199-abc"));
        let rec = r#"{"timestamp":"2026-11-24T18:01:00Z","type":"event_msg","payload":{"type":"token_count","info":null,"rate_limits":{"limit_id":"codex","primary":{"used_percent":100.0,"window_minutes":300,"resets_at":1795546357},"secondary":{"used_percent":10.0,"window_minutes":10080,"resets_in_seconds":60},"plan_type":null}}}"#;
        let (a, b) = rec.split_at(50);
        append(&path, a);
        assert!(f.poll().unwrap().is_empty());
        append(&path, &format!("{b}\n"));
        let evs = f.poll().unwrap();
        let Event::RateLimits(rl) = &evs[0] else { panic!("{evs:?}") };
        assert_eq!(rl.primary.as_ref().unwrap().resets_at, DateTime::from_timestamp(1795546357, 0));
        assert_eq!(rl.secondary.as_ref().unwrap().resets_at, Some("2026-11-24T18:02:00Z".parse().unwrap()));
        assert_eq!(rl.session_id.as_deref(), Some("0199-abc"));
        assert_eq!(rl.account.as_deref(), Some("a"));

        std::fs::write(&path, format!("{META}\n")).unwrap();
        let err = r#"{"timestamp":"2026-11-24T18:05:00Z","type":"event_msg","payload":{"type":"task_complete","error":{"message":"You’ve hit your usage limit. Try again later.","codex_error_info":"usage_limit_exceeded"}}}"#;
        append(&path, &format!("{err}\n"));
        let evs = f.poll().unwrap();
        assert_eq!(evs.len(), 1, "{evs:?}");
        let Event::Limit(l) = &evs[0] else { panic!() };
        assert_eq!((l.kind, l.source, l.resets_at), (LimitKind::UsageLimit, Source::Rollout, None));
    }

    #[test]
    fn from_end_skips_old_records_and_a_half_written_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let err = r#"{"type":"event_msg","payload":{"type":"error","message":"Quota exceeded. Check your plan and billing details."}}"#;
        append(&path, &format!("{META}\n{err}\n{}", &err[..30]));
        let mut f = Follower::open(&path, FollowOptions { from_end: true, ..Default::default() }).unwrap();
        assert_eq!(f.session_id(), Some("0199-abc"));
        append(&path, &format!("{}\n", &err[30..]));
        assert!(f.poll().unwrap().is_empty());
        append(&path, &format!("{err}\n"));
        assert_eq!(f.poll().unwrap().len(), 1);
        assert_eq!(limit_texts(&path).unwrap(), ["Quota exceeded. Check your plan and billing details."], "one turn");
        assert!(f.take_errors().is_empty(), "a limit is no other error");
    }

    #[test]
    fn other_turn_errors_are_kept_apart_from_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let err = r#"{"timestamp":"2026-11-24T18:05:00Z","type":"event_msg","payload":{"type":"task_complete","error":{"message":"Your access token could not be refreshed because your refresh token was revoked. Please log out and sign in again.","codex_error_info":"unauthorized"}}}"#;
        append(&path, &format!("{META}\n{err}\n"));
        let mut f = Follower::open(&path, FollowOptions::default()).unwrap();
        assert!(f.poll().unwrap().is_empty(), "no event");
        let errs = f.take_errors();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].info.as_deref(), Some("unauthorized"));
        assert!(errs[0].message.starts_with("Your access token could not be refreshed"));
        assert_eq!(errs[0].at, "2026-11-24T18:05:00Z".parse::<DateTime<Utc>>().unwrap());
        assert!(f.take_errors().is_empty());
    }

    #[test]
    fn turn_boundaries_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        append(&path, &format!("{META}\n"));
        let mut f = Follower::open(&path, FollowOptions::default()).unwrap();
        f.poll().unwrap();
        assert_eq!(f.turns(), Turns::default());
        let started = r#"{"timestamp":"2026-11-24T18:01:00Z","type":"event_msg","payload":{"type":"task_started"}}"#;
        let done = r#"{"timestamp":"2026-11-24T18:01:05Z","type":"event_msg","payload":{"type":"task_complete","last_agent_message":"hi"}}"#;
        append(&path, &format!("{started}\n"));
        f.poll().unwrap();
        assert!(f.turns().running);
        append(&path, &format!("{done}\n"));
        assert!(f.poll().unwrap().is_empty(), "a turn's end is no event");
        let t = f.turns();
        assert_eq!((t.running, t.ended_count, t.ended), (false, 1, Some("2026-11-24T18:01:05Z".parse().unwrap())));
        // a turn that starts in the same read as the last one ended: running
        append(&path, &format!("{done}\n{started}\n"));
        f.poll().unwrap();
        assert_eq!((f.turns().running, f.turns().ended_count), (true, 2));
    }
}
