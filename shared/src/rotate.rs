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
//!
//! An account whose last usage reading is at or over a threshold (`switch_at`, see
//! [`crate::usage`]) is "near its limit": new sessions start elsewhere until that window resets,
//! unless every account is; then the least used one that is not exhausted. Nothing is stored
//! for it: it is read from the usage each time.

use crate::config::{Config, Policy};
use crate::events::{LimitKind, RateLimitsEvent};
use crate::paths::Paths;
use crate::registry::Registry;
use crate::usage::{self, Thresholds, Window};
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
    /// The windows' lengths (thresholds are keyed by them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_window_minutes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_window_minutes: Option<u64>,
}

impl Usage {
    /// The windows this reading knows, judged at `now`. A reading stored before the windows'
    /// lengths were (no length at all) has codex's usual pair: 5 h, then weekly.
    pub fn windows(&self, th: &Thresholds, now: DateTime<Utc>) -> Vec<Window> {
        let old = self.primary_window_minutes.is_none() && self.secondary_window_minutes.is_none();
        let (pm, sm) = if old { (Some(300), Some(usage::WEEK_MINUTES)) } else { (self.primary_window_minutes, self.secondary_window_minutes) };
        [
            (pm, self.primary_used_percent, self.resets_at),
            (sm, self.secondary_used_percent, self.secondary_resets_at),
        ]
        .into_iter()
        .filter_map(|(m, used, reset)| Some(Window::new(m, used?, reset, self.seen_at, th, now)))
        .collect()
    }
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

    /// The windows of `name`'s last usage reading (none when nothing was recorded).
    pub fn windows(&self, name: &str, th: &Thresholds, now: DateTime<Utc>) -> Vec<Window> {
        self.usage(name).map(|u| u.windows(th, now)).unwrap_or_default()
    }

    fn usage(&self, name: &str) -> Option<&Usage> {
        self.accounts.get(name).and_then(|a| a.usage.as_ref())
    }

    /// `name` is near its limit: the window over its threshold and until when it is spared.
    pub fn near_limit(&self, name: &str, th: &Thresholds, now: DateTime<Utc>) -> Option<(Window, DateTime<Utc>)> {
        let u = self.usage(name)?;
        usage::near_limit(&u.windows(th, now), u.seen_at).map(|(w, t)| (w.clone(), t))
    }

    /// Available and not near its limit.
    fn is_fresh(&self, name: &str, th: &Thresholds, now: DateTime<Utc>) -> bool {
        self.is_available(name, now) && self.near_limit(name, th, now).is_none()
    }

    /// Of `names`, the available one whose fullest window is least used (the first on a tie).
    fn least_used<'n>(&self, names: &[&'n str], th: &Thresholds, now: DateTime<Utc>) -> Option<&'n str> {
        let used = |a: &str| usage::fullest(&self.windows(a, th, now));
        names.iter().copied().filter(|a| self.is_available(a, now)).min_by(|a, b| used(a).total_cmp(&used(b)))
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

    /// Clears the exhaustion of `name` and forgets its usage reading (`hs-rotate reset`: the
    /// user knows better, so a near-limit reading goes too).
    pub fn reset_all(&mut self, name: &str) {
        if let Some(a) = self.accounts.get_mut(name) {
            a.usage = None;
        }
        self.reset(name);
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
            primary_window_minutes: p.and_then(|w| w.window_minutes),
            secondary_window_minutes: s.and_then(|w| w.window_minutes),
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

/// How [`next`] and [`pick`] choose.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub policy: Policy,
    pub thresholds: Thresholds,
    /// Only an account under its thresholds will do (a switch at a turn boundary); else, when
    /// none is, the least used one that is not exhausted.
    pub under_threshold_only: bool,
}

impl Rules {
    pub fn new(policy: Policy, thresholds: Thresholds) -> Rules {
        Rules { policy, thresholds, under_threshold_only: false }
    }
}

/// The account after the current one, by the configured policy (the current one is never
/// chosen): one that is available and under its thresholds, else (unless the rules say
/// otherwise) the least used available one.
pub fn next(reg: &Registry, state: &State, rules: &Rules, now: DateTime<Utc>) -> Choice {
    let current = state.current(reg);
    let start = current.and_then(|c| reg.accounts.iter().position(|a| a.name == c)).map_or(0, |i| i + 1);
    let n = reg.accounts.len();
    // registry order starting after the current account, wrapping
    let ring: Vec<&str> = (0..n).map(|k| reg.accounts[(start + k) % n].name.as_str()).filter(|&a| Some(a) != current).collect();
    let th = &rules.thresholds;
    let mut avail: Vec<&str> = ring.iter().copied().filter(|a| state.is_fresh(a, th, now)).collect();
    if rules.policy == Policy::SoonestReset {
        // stable sort: accounts with a known future reset first, soonest first; others keep ring order
        let key = |a: &&str| state.usage(a).and_then(|u| u.resets_at).filter(|t| *t > now);
        avail.sort_by_key(|a| match key(a) {
            Some(t) => (0, t.timestamp()),
            None => (1, 0),
        });
    }
    let fallback = if rules.under_threshold_only { None } else { state.least_used(&ring, th, now) };
    match avail.first().copied().or(fallback) {
        Some(a) => Choice::Account(a.to_string()),
        None => Choice::NoneUntil(earliest_back(reg, state, now)),
    }
}

/// The account a new session should start on: the current one if available and under its
/// thresholds, else the next one that is; when none is, the least used available one.
pub fn pick(reg: &Registry, state: &State, rules: &Rules, now: DateTime<Utc>) -> Choice {
    let th = &rules.thresholds;
    match state.current(reg) {
        Some(c) if state.is_fresh(c, th, now) => Choice::Account(c.to_string()),
        Some(_) => {
            let strict = Rules { under_threshold_only: true, ..rules.clone() };
            match next(reg, state, &strict, now) {
                Choice::Account(a) => Choice::Account(a),
                none => {
                    let all: Vec<&str> = reg.accounts.iter().map(|a| a.name.as_str()).collect();
                    state.least_used(&all, th, now).map_or(none, |a| Choice::Account(a.to_string()))
                }
            }
        }
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
    /// `available`, `near_limit` or `exhausted`.
    pub state: &'static str,
    /// Exhausted: until its reset. Near its limit: until the window over its threshold resets.
    pub until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    pub kind: Option<LimitKind>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The last usage reading per window, judged now (stale, over its threshold).
    pub windows: Vec<Window>,
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

pub fn status(reg: &Registry, state: &State, th: &Thresholds, now: DateTime<Utc>) -> Vec<StatusEntry> {
    let current = state.current(reg);
    reg.accounts
        .iter()
        .map(|a| {
            let s = state.accounts.get(&a.name);
            let exhausted = state.exhausted_until(&a.name, now);
            let near = state.near_limit(&a.name, th, now);
            let dead = state.login_needed(&a.name);
            let (st, until, reason) = match (dead, exhausted, &near) {
                (Some(d), _, _) => ("login_needed", exhausted, Some(d.reason.clone())),
                (None, Some(u), _) => ("exhausted", Some(u), s.and_then(|s| s.reason.clone())),
                (None, None, Some((w, t))) => ("near_limit", Some(*t), Some(near_reason(w))),
                (None, None, None) => ("available", None, None),
            };
            StatusEntry {
                name: a.name.clone(),
                current: Some(a.name.as_str()) == current,
                state: st,
                until,
                reason,
                kind: exhausted.and(s.and_then(|s| s.kind)),
                usage: s.and_then(|s| s.usage.clone()),
                windows: state.windows(&a.name, th, now),
                fix: dead.map(|_| login_fix(&a.name)),
                since: dead.map(|d| d.since),
            }
        })
        .collect()
}

/// `near limit: 5h window at 96% (switch at 95%)`.
pub fn near_reason(w: &Window) -> String {
    let at = w.switch_at.map(|t| format!(" (switch at {t:.0}%)")).unwrap_or_default();
    format!("near limit: {} window at {:.0}%{at}", usage::window_words(&w.name), w.used_percent)
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

    fn order() -> Rules {
        Rules::new(Policy::Order, Thresholds::default())
    }

    fn used(s: &mut State, name: &str, pct: f64, minutes: u64, reset: &str) {
        let w = RateWindow { used_percent: Some(pct), window_minutes: Some(minutes), resets_at: Some(t(reset)) };
        let ev = RateLimitsEvent { primary: Some(w), secondary: None, limit_id: None, plan_type: None, account: None, at: t(NOW), session_id: None };
        s.record(name, &ev);
    }

    #[test]
    fn a_reading_stored_without_window_lengths_is_5h_then_weekly() {
        let u = Usage {
            primary_used_percent: Some(50.0),
            secondary_used_percent: Some(97.0),
            resets_at: Some(t("2026-11-24T20:00:00Z")),
            secondary_resets_at: Some(t("2026-11-28T20:00:00Z")),
            seen_at: t(NOW),
            primary_window_minutes: None,
            secondary_window_minutes: None,
        };
        let w = u.windows(&Thresholds::default(), t(NOW));
        assert_eq!((w[0].name.as_str(), w[1].name.as_str(), w[1].over), ("5h", "week", false), "97% is under the weekly 98%");
    }

    #[test]
    fn near_limit_accounts_are_passed_over_until_their_window_resets() {
        let r = reg(&["a", "b", "c"]);
        let mut s = State::empty();
        used(&mut s, "a", 96.0, 300, "2026-11-24T20:00:00Z");
        // a new session starts on b; a is near its limit until 20:00
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("b".into()));
        let st = status(&r, &s, &Thresholds::default(), t(NOW));
        assert_eq!((st[0].state, st[0].until), ("near_limit", Some(t("2026-11-24T20:00:00Z"))));
        assert_eq!(st[0].reason.as_deref(), Some("near limit: 5h window at 96% (switch at 95%)"));
        assert_eq!(pick(&r, &s, &order(), t("2026-11-24T20:00:00Z")), Choice::Account("a".into()), "the window reset");
        // off: no account is ever near its limit
        assert_eq!(pick(&r, &s, &Rules::new(Policy::Order, Thresholds::off()), t(NOW)), Choice::Account("a".into()));
        // a weekly window at 97% is under its 98%
        used(&mut s, "b", 97.0, 10080, "2026-11-28T00:00:00Z");
        s.current = Some("b".into());
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("b".into()));
        // every account near its limit: the least used that is not exhausted, and a switch at
        // a turn boundary finds none
        used(&mut s, "b", 99.0, 10080, "2026-11-28T00:00:00Z");
        used(&mut s, "c", 97.0, 300, "2026-11-24T21:00:00Z");
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("a".into()));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("a".into()));
        let strict = Rules { under_threshold_only: true, ..order() };
        assert_eq!(next(&r, &s, &strict, t(NOW)), Choice::NoneUntil(None));
        s.exhaust("a", t("2026-11-24T23:00:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("c".into()));
    }

    #[test]
    fn order_wraps_and_skips_exhausted() {
        let r = reg(&["a", "b", "c"]);
        let mut s = State::empty();
        s.current = Some("b".into());
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("c".into()));
        s.exhaust("c", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("a".into()));
        s.exhaust("a", t("2026-11-24T18:30:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::NoneUntil(Some(("a".into(), t("2026-11-24T18:30:00Z")))));
        // the exhaustion ends by itself
        assert_eq!(next(&r, &s, &order(), t("2026-11-24T18:30:00Z")), Choice::Account("a".into()));
    }

    #[test]
    fn pick_prefers_current() {
        let r = reg(&["a", "b"]);
        let mut s = State::empty();
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("a".into()));
        s.exhaust("a", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("b".into()));
        assert_eq!(pick(&reg(&[]), &s, &order(), t(NOW)), Choice::NoneUntil(None));
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
        assert_eq!(next(&r, &s, &Rules::new(Policy::SoonestReset, Thresholds::default()), t(NOW)), Choice::Account("c".into()));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("b".into()));
    }

    #[test]
    fn status_and_expire() {
        let r = reg(&["a", "b"]);
        let mut s = State::empty();
        s.exhaust("b", t("2026-11-24T19:00:00Z"), Some(LimitKind::UsageLimit), Some("x".into()), t(NOW));
        let st = status(&r, &s, &Thresholds::default(), t(NOW));
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
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::Account("c".into()));
        s.current = Some("b".into());
        assert_eq!(pick(&r, &s, &order(), t(NOW)), Choice::Account("c".into()));
        // it never comes back by itself: the first back is an exhausted one
        s.exhaust("a", t("2026-11-24T19:00:00Z"), None, None, t(NOW));
        s.exhaust("c", t("2026-11-24T20:00:00Z"), None, None, t(NOW));
        assert_eq!(next(&r, &s, &order(), t(NOW)), Choice::NoneUntil(Some(("a".into(), t("2026-11-24T19:00:00Z")))));
        assert_eq!(next(&r, &s, &order(), t("2026-11-25T00:00:00Z")), Choice::Account("c".into()));
        s.reset("b");
        s.expire(t("2026-11-25T00:00:00Z"));
        let st = status(&r, &s, &Thresholds::default(), t(NOW));
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
