//! Rotation state: which account is current, which are exhausted and until when, and the
//! last usage telemetry seen for each. `$XDG_STATE_HOME/codex-hotswap/rotation.json`, owned by
//! hs-rotate.
//!
//! ```json
//! {"version": 1, "current": "acc1",
//!  "accounts": {"acc1": {"exhausted_until": "2026-11-24T20:13:00Z", "reason": "…", "kind": "usage_limit"}}}
//! ```
//! An exhaustion ends by itself at `exhausted_until`; nobody has to reset it.
//!
//! A dead login (tokens revoked or spent: codex said "Please log out and sign in again") is
//! `"login_needed": {"since": …, "reason": …}`. It does not end by itself, and `reset` leaves it:
//! only a new login helps (`hs-vault login NAME` clears it; `hs-rotate login-needed NAME --clear`
//! after a login made some other way). `pick` and `next` skip such an account.

use crate::config::{Config, Policy};
use crate::events::{LimitKind, RateLimitsEvent};
use crate::paths::Paths;
use crate::registry::Registry;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u64,
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountState>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LimitKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_needed: Option<LoginNeeded>,
}

/// The account's login is dead: codex could not use or refresh its tokens.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LoginNeeded {
    pub since: DateTime<Utc>,
    /// What codex said.
    pub reason: String,
}

/// The last usage telemetry seen for an account.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub primary_used_percent: Option<f64>,
    pub secondary_used_percent: Option<f64>,
    /// When the primary (short) window resets.
    pub resets_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub secondary_resets_at: Option<DateTime<Utc>>,
    pub seen_at: DateTime<Utc>,
}

impl State {
    pub fn empty() -> State {
        State { version: VERSION, current: None, accounts: BTreeMap::new() }
    }

    pub fn load(paths: &Paths) -> Result<State> {
        Ok(crate::jsonfile::read_versioned(&paths.rotation(), VERSION)?.unwrap_or_else(State::empty))
    }

    /// Read-modify-write under `rotation.lock`; saved only when `f` succeeds and changed something.
    pub fn update<T>(paths: &Paths, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        crate::jsonfile::update_locked(&paths.rotation(), || State::load(paths), f)
    }

    /// The exhaustion end of `name`, if it is still in the future.
    pub fn exhausted_until(&self, name: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.accounts.get(name).and_then(|a| a.exhausted_until).filter(|u| *u > now)
    }

    pub fn is_available(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.exhausted_until(name, now).is_none() && self.login_needed(name).is_none()
    }

    /// Why `name` needs a new login, if it does.
    pub fn login_needed(&self, name: &str) -> Option<&LoginNeeded> {
        self.accounts.get(name).and_then(|a| a.login_needed.as_ref())
    }

    /// Marks the login of `name` dead (kept until [`State::clear_login_needed`]).
    pub fn mark_login_needed(&mut self, name: &str, reason: String, now: DateTime<Utc>) {
        self.accounts.entry(name.to_string()).or_default().login_needed = Some(LoginNeeded { since: now, reason });
    }

    /// `name` has a new login. True when it was marked.
    pub fn clear_login_needed(&mut self, name: &str) -> bool {
        let was = self.accounts.get_mut(name).and_then(|a| a.login_needed.take()).is_some();
        self.accounts.retain(|_, a| *a != AccountState::default());
        was
    }

    /// The current account: the recorded one if still registered, else the first registered.
    pub fn current<'r>(&self, reg: &'r Registry) -> Option<&'r str> {
        self.current
            .as_deref()
            .and_then(|c| reg.get(c))
            .or_else(|| reg.accounts.first())
            .map(|a| a.name.as_str())
    }

    /// Marks `name` exhausted until `until`.
    pub fn exhaust(&mut self, name: &str, until: DateTime<Utc>, kind: Option<LimitKind>, reason: Option<String>, now: DateTime<Utc>) {
        let a = self.accounts.entry(name.to_string()).or_default();
        a.exhausted_until = Some(until);
        a.exhausted_at = Some(now);
        a.kind = kind;
        a.reason = reason;
    }

    /// Clears the exhaustion of `name` (not a dead login: see the module notes).
    pub fn reset(&mut self, name: &str) {
        if let Some(a) = self.accounts.get_mut(name) {
            a.exhausted_until = None;
            a.exhausted_at = None;
            a.kind = None;
            a.reason = None;
        }
        self.accounts.retain(|_, a| *a != AccountState::default());
    }

    /// Drops exhaustions that have ended (keeps the file small and `status` honest).
    pub fn expire(&mut self, now: DateTime<Utc>) {
        let ended: Vec<String> = self
            .accounts
            .iter()
            .filter(|(_, a)| a.exhausted_until.is_some_and(|u| u <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for n in ended {
            self.reset(&n);
        }
    }

    /// Stores telemetry for `name`.
    pub fn record(&mut self, name: &str, ev: &RateLimitsEvent) {
        let p = ev.primary.as_ref();
        let s = ev.secondary.as_ref();
        self.accounts.entry(name.to_string()).or_default().usage = Some(Usage {
            primary_used_percent: p.and_then(|w| w.used_percent),
            secondary_used_percent: s.and_then(|w| w.used_percent),
            resets_at: p.and_then(|w| w.resets_at),
            secondary_resets_at: s.and_then(|w| w.resets_at),
            seen_at: ev.at,
        });
    }
}

/// The outcome of choosing an account.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Account(String),
    /// Nothing available; the earliest account to come back, if any is known.
    NoneUntil(Option<(String, DateTime<Utc>)>),
}

/// The available account after the current one, by the configured policy (the current one is
/// never chosen).
pub fn next(reg: &Registry, state: &State, policy: Policy, now: DateTime<Utc>) -> Choice {
    let current = state.current(reg);
    let start = current.and_then(|c| reg.accounts.iter().position(|a| a.name == c)).map_or(0, |i| i + 1);
    let n = reg.accounts.len();
    // registry order starting after the current account, wrapping
    let ring: Vec<&str> = (0..n).map(|k| reg.accounts[(start + k) % n].name.as_str()).filter(|&a| Some(a) != current).collect();
    let mut avail: Vec<&str> = ring.iter().copied().filter(|a| state.is_available(a, now)).collect();
    if policy == Policy::SoonestReset {
        // stable sort: accounts with a known future reset first, soonest first; others keep ring order
        let key = |a: &&str| {
            state.accounts.get(*a).and_then(|s| s.usage.as_ref()).and_then(|u| u.resets_at).filter(|t| *t > now)
        };
        avail.sort_by_key(|a| match key(a) {
            Some(t) => (0, t.timestamp()),
            None => (1, 0),
        });
    }
    match avail.first() {
        Some(a) => Choice::Account(a.to_string()),
        None => Choice::NoneUntil(earliest_back(reg, state, now)),
    }
}

/// The account a new session should start on: the current one if available, else [`next`].
pub fn pick(reg: &Registry, state: &State, policy: Policy, now: DateTime<Utc>) -> Choice {
    match state.current(reg) {
        Some(c) if state.is_available(c, now) => Choice::Account(c.to_string()),
        Some(_) => next(reg, state, policy, now),
        None => Choice::NoneUntil(None),
    }
}

/// The registered account whose exhaustion ends first.
pub fn earliest_back(reg: &Registry, state: &State, now: DateTime<Utc>) -> Option<(String, DateTime<Utc>)> {
    reg.accounts
        .iter()
        .filter_map(|a| state.exhausted_until(&a.name, now).map(|u| (a.name.clone(), u)))
        .min_by_key(|(_, u)| *u)
}

/// One account's line in `hs-rotate status --json`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct StatusEntry {
    pub name: String,
    pub current: bool,
    pub state: &'static str,
    pub until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub kind: Option<LimitKind>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// For `login_needed`: the command that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// For `login_needed`: since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
}

/// The command that gives `name` a new login.
pub fn login_fix(name: &str) -> String {
    format!("codex-hotswap login {name}")
}

pub fn status(reg: &Registry, state: &State, now: DateTime<Utc>) -> Vec<StatusEntry> {
    let current = state.current(reg);
    reg.accounts
        .iter()
        .map(|a| {
            let s = state.accounts.get(&a.name);
            let until = state.exhausted_until(&a.name, now);
            let dead = state.login_needed(&a.name);
            StatusEntry {
                name: a.name.clone(),
                current: Some(a.name.as_str()) == current,
                state: match (dead, until) {
                    (Some(_), _) => "login_needed",
                    (None, Some(_)) => "exhausted",
                    (None, None) => "available",
                },
                until,
                reason: dead.map(|d| d.reason.clone()).or_else(|| until.and(s.and_then(|s| s.reason.clone()))),
                kind: until.and(s.and_then(|s| s.kind)),
                usage: s.and_then(|s| s.usage.clone()),
                fix: dead.map(|_| login_fix(&a.name)),
                since: dead.map(|d| d.since),
            }
        })
        .collect()
}

/// Loads registry and config the way every hs-rotate command needs them.
pub fn load_context(paths: &Paths) -> Result<(Registry, Config)> {
    Ok((Registry::load(paths)?, Config::load(paths)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::RateWindow;
    use crate::registry::Account;

    fn reg(names: &[&str]) -> Registry {
        Registry {
            version: 1,
            accounts: names.iter().map(|n| Account { name: n.to_string(), vault: format!("/v/{n}").into(), note: None }).collect(),
        }
    }
    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    const NOW: &str = "2026-11-24T18:00:00Z";

    #[test]
    fn order_wraps_and_skips_exhausted() {
        let r = reg(&["a", "b", "c"]);
        let mut s = State::empty();
        s.current = Some("b".into());
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::Account("c".into()));
        s.exhaust("c", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::Account("a".into()));
        s.exhaust("a", t("2026-11-24T18:30:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::NoneUntil(Some(("a".into(), t("2026-11-24T18:30:00Z")))));
        // the exhaustion ends by itself
        assert_eq!(next(&r, &s, Policy::Order, t("2026-11-24T18:30:00Z")), Choice::Account("a".into()));
    }

    #[test]
    fn pick_prefers_current() {
        let r = reg(&["a", "b"]);
        let mut s = State::empty();
        assert_eq!(pick(&r, &s, Policy::Order, t(NOW)), Choice::Account("a".into()));
        s.exhaust("a", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        assert_eq!(pick(&r, &s, Policy::Order, t(NOW)), Choice::Account("b".into()));
        assert_eq!(pick(&reg(&[]), &s, Policy::Order, t(NOW)), Choice::NoneUntil(None));
        // a current account that was removed from the registry falls back to the first
        s.current = Some("gone".into());
        assert_eq!(s.current(&r), Some("a"));
    }

    #[test]
    fn soonest_reset_prefers_earliest_window() {
        let r = reg(&["a", "b", "c", "d"]);
        let mut s = State::empty();
        let ev = |reset: &str| RateLimitsEvent {
            primary: Some(RateWindow { used_percent: Some(50.0), window_minutes: Some(300), resets_at: Some(t(reset)) }),
            secondary: None,
            limit_id: None,
            plan_type: None,
            account: None,
            at: t(NOW),
            session_id: None,
        };
        s.record("b", &ev("2026-11-24T22:00:00Z"));
        s.record("c", &ev("2026-11-24T19:00:00Z"));
        s.record("d", &ev("2026-11-24T17:00:00Z")); // already reset: unknown
        assert_eq!(next(&r, &s, Policy::SoonestReset, t(NOW)), Choice::Account("c".into()));
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::Account("b".into()));
    }

    #[test]
    fn status_and_expire() {
        let r = reg(&["a", "b"]);
        let mut s = State::empty();
        s.exhaust("b", t("2026-11-24T19:00:00Z"), Some(LimitKind::UsageLimit), Some("x".into()), t(NOW));
        let st = status(&r, &s, t(NOW));
        assert_eq!((st[0].current, st[0].state, st[1].state), (true, "available", "exhausted"));
        assert_eq!(st[1].reason.as_deref(), Some("x"));
        s.expire(t("2026-11-24T19:00:01Z"));
        assert!(s.accounts.is_empty());
    }

    #[test]
    fn a_dead_login_is_skipped_until_cleared_and_reset_leaves_it() {
        let r = reg(&["a", "b", "c"]);
        let mut s = State::empty();
        s.mark_login_needed("b", "refresh token was revoked".into(), t(NOW));
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::Account("c".into()));
        s.current = Some("b".into());
        assert_eq!(pick(&r, &s, Policy::Order, t(NOW)), Choice::Account("c".into()));
        // it never comes back by itself: the first back is an exhausted one
        s.exhaust("a", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        s.exhaust("c", t("2026-11-24T20:00:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, Policy::Order, t(NOW)), Choice::NoneUntil(Some(("a".into(), t("2026-11-24T19:00:00Z")))));
        assert_eq!(next(&r, &s, Policy::Order, t("2026-11-25T00:00:00Z")), Choice::Account("c".into()));
        s.reset("b");
        s.expire(t("2026-11-25T00:00:00Z"));
        let st = status(&r, &s, t(NOW));
        assert_eq!(st[1].state, "login_needed");
        assert_eq!(st[1].fix.as_deref(), Some("codex-hotswap login b"));
        assert_eq!(st[1].reason.as_deref(), Some("refresh token was revoked"));
        assert_eq!(st[0].fix, None);
        let json = serde_json::to_value(&st[1]).unwrap();
        assert_eq!((json["state"].as_str(), json["since"].as_str()), (Some("login_needed"), Some("2026-11-24T18:00:00Z")));
        assert!(serde_json::to_value(&st[2]).unwrap().get("fix").is_none(), "no fix field on other accounts");
        assert!(s.clear_login_needed("b"));
        assert!(!s.clear_login_needed("b"));
        assert!(s.is_available("b", t(NOW)));
    }
}
