//! The JSON lines the tools exchange. One enum, used by every writer and every reader.
//!
//! Each line is one compact object with a flat `"type"` tag and snake_case fields. Readers skip
//! lines that do not start with `{` and types they do not know (`Event::Unknown`).
//! Times are RFC 3339 strings in UTC.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// codex reported that an account hit a limit (hs-detect).
    Limit(LimitEvent),
    /// Usage telemetry from a rollout `token_count` record (hs-detect).
    RateLimits(RateLimitsEvent),
    /// A runtime home was created (hs-overlay create/swap).
    Overlay(OverlayEvent),
    /// hs-run moved a session to another account (events.jsonl).
    Swap(SwapEvent),
    /// Any type this version does not know.
    #[serde(other)]
    Unknown,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// "You've hit your usage limit."
    UsageLimit,
    /// "You've hit your usage limit for <model>."
    ModelLimit,
    /// "Your workspace is out of credits."
    WorkspaceCredits,
    /// "You hit your spend cap …"
    SpendCap,
    /// "Quota exceeded." (API keys)
    Quota,
    /// "To use Codex with your ChatGPT plan, upgrade to Plus"
    PlanNotIncluded,
    /// "exceeded retry limit, last status: 429 Too Many Requests"
    RateLimited,
    /// Not a limit codex reported: hs-run left the account at a turn boundary because its usage
    /// was at or over a threshold (`switch_at`; swap events only).
    NearLimit,
    #[serde(other)]
    Other,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::UsageLimit => "usage_limit",
            LimitKind::ModelLimit => "model_limit",
            LimitKind::WorkspaceCredits => "workspace_credits",
            LimitKind::SpendCap => "spend_cap",
            LimitKind::Quota => "quota",
            LimitKind::PlanNotIncluded => "plan_not_included",
            LimitKind::RateLimited => "rate_limited",
            LimitKind::NearLimit => "near_limit",
            LimitKind::Other => "other",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The TUI's screen, rebuilt from terminal bytes.
    Screen,
    /// Plain `codex exec` text.
    Text,
    /// `codex exec --json` lines.
    ExecJson,
    /// A session rollout file.
    Rollout,
    #[serde(other)]
    Other,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LimitEvent {
    pub kind: LimitKind,
    /// The message as codex showed it, on one line.
    pub text: String,
    pub resets_at: Option<DateTime<Utc>>,
    pub source: Source,
    pub account: Option<String>,
    /// When the event was seen.
    pub at: DateTime<Utc>,
    /// The session's id, when the source knows it (rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct RateWindow {
    pub used_percent: Option<f64>,
    pub window_minutes: Option<u64>,
    pub resets_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RateLimitsEvent {
    pub primary: Option<RateWindow>,
    pub secondary: Option<RateWindow>,
    #[serde(default)]
    pub limit_id: Option<String>,
    #[serde(default)]
    pub plan_type: Option<String>,
    pub account: Option<String>,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OverlayEvent {
    pub id: String,
    pub path: PathBuf,
    pub account: String,
    /// The shared store the overlay links into.
    pub shared: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<PathBuf>,
    /// The process whose life the overlay follows (hs-overlay create/swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_pid: Option<u32>,
    /// The codex version the overlay was made for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codex_version: Option<String>,
    /// The account the overlay had before a swap (hs-overlay swap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_account: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SwapEvent {
    pub at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub from: String,
    pub to: String,
    pub kind: LimitKind,
    pub resets_at: Option<DateTime<Utc>>,
    pub cwd: PathBuf,
    /// How the session went on; absent: resumed after a limit of `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<SwapHow>,
    /// What codex said (a dead login, a refused thread).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `carried_over`: the new session that holds `session_id`'s conversation as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_session_id: Option<String>,
}

/// A switch other than the resume after a limit.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SwapHow {
    /// `from`'s login was dead; the session was resumed on `to`.
    LoginNeeded,
    /// `to` refused to continue the thread; a new session on `to` got the conversation as text.
    CarriedOver,
    #[serde(other)]
    Other,
}

/// Parses one line: `None` for lines that are not a JSON object (codex output, blank lines).
/// A line that starts with `{` but is not valid JSON is an error.
pub fn parse_line(line: &str) -> Result<Option<Event>, serde_json::Error> {
    let t = line.trim();
    if !t.starts_with('{') {
        return Ok(None);
    }
    serde_json::from_str(t).map(Some)
}

/// One compact line (no newline).
pub fn to_line(ev: &Event) -> String {
    serde_json::to_string(ev).expect("events always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown() {
        let ev = Event::Limit(LimitEvent {
            kind: LimitKind::UsageLimit,
            text: "You’ve hit your usage limit.".into(),
            resets_at: Some("2026-11-24T20:13:00Z".parse().unwrap()),
            source: Source::Screen,
            account: Some("acc1".into()),
            at: "2026-11-24T18:00:00Z".parse().unwrap(),
            session_id: None,
        });
        let line = to_line(&ev);
        assert_eq!(
            line,
            r#"{"type":"limit","kind":"usage_limit","text":"You’ve hit your usage limit.","resets_at":"2026-11-24T20:13:00Z","source":"screen","account":"acc1","at":"2026-11-24T18:00:00Z"}"#
        );
        assert_eq!(parse_line(&line).unwrap(), Some(ev));
        assert_eq!(parse_line(r#"{"type":"future_thing","x":1}"#).unwrap(), Some(Event::Unknown));
        assert_eq!(parse_line("plain text").unwrap(), None);
        assert!(parse_line("{broken").is_err());
    }
}
