//! When hs-run moves a session to another account, and how. The supervise loop moves bytes and
//! asks here; each decision has this one home.
//!
//! Two triggers stop codex for a switch:
//! - **a limit** codex reported (screen, exec text or rollout): the account is exhausted; codex
//!   is stopped at once, the turn was cut by the limit anyway, and the session resumes on the
//!   next account with the continue prompt. One limit gives one switch: a limit that matches one
//!   already handled is a redraw ([`is_redraw`]).
//! - **a turn boundary near the limit** ([`Boundary`]): when a turn of the TUI ends (the
//!   rollout's `task_complete`) and the account's latest usage reading has a window at or over
//!   its threshold (`switch_at`), and nothing may be in the composer, codex is stopped and the
//!   session resumes on an account under its thresholds, with no prompt: nothing was cut. A
//!   turn in progress is never cut for a threshold; `exec` is never stopped for one.
//!
//! The composer: hs-run cannot see it, only the keys it relayed. Any key the user typed after
//! the turn began (after hs-run read its `task_started`: the rollout's times are whole seconds)
//! may still be in the composer (or queued), so such a boundary is let go and the next one is
//! judged. This errs on the side of staying: text typed and deleted again also holds the switch
//! back, until the next turn ends. What it misses: keys typed in the few milliseconds between
//! the Enter that started the turn and hs-run reading its `task_started` (a tick, 20 ms).

use crate::events::{LimitEvent, RateLimitsEvent};
use crate::rollout::Turns;
use crate::usage::{self, Thresholds, Window};
use chrono::{DateTime, Utc};

/// Why codex is being stopped for a switch.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Limit(LimitEvent),
    NearLimit(NearLimit),
}

/// The window that made an account near its limit at a turn boundary.
#[derive(Debug, Clone, PartialEq)]
pub struct NearLimit {
    pub window: Window,
    /// When that window resets (the account is passed over until then).
    pub until: DateTime<Utc>,
}

/// What a turn boundary means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Stay; the reason, for the log.
    Stay(String),
    Switch(NearLimit),
}

/// Watches one TUI run for turn boundaries near the limit.
#[derive(Debug, Clone)]
pub struct Boundary {
    thresholds: Thresholds,
    /// The latest usage reading of this run's account.
    usage: Option<RateLimitsEvent>,
    /// The number of turn ends already judged.
    judged: u64,
    /// When the user last typed a key into codex.
    last_key: Option<DateTime<Utc>>,
    /// The turns begun, as last seen, and when hs-run saw the last one begin.
    started: u64,
    started_seen: Option<DateTime<Utc>>,
}

impl Boundary {
    pub fn new(thresholds: Thresholds) -> Boundary {
        Boundary { thresholds, usage: None, judged: 0, last_key: None, started: 0, started_seen: None }
    }

    /// A usage reading of this run's account (from its rollout).
    pub fn usage(&mut self, ev: &RateLimitsEvent) {
        if self.usage.as_ref().is_none_or(|u| u.at <= ev.at) {
            self.usage = Some(ev.clone());
        }
    }

    /// The user typed a key (not a terminal's answer) into codex.
    pub fn key(&mut self, at: DateTime<Utc>) {
        self.last_key = Some(at);
    }

    /// Judges a turn end not judged before (`None` while a turn runs or nothing new ended).
    /// Called at every tick with the turns read so far (it notes when a turn began).
    pub fn judge(&mut self, turns: Turns, now: DateTime<Utc>) -> Option<Verdict> {
        if turns.started_count != self.started {
            self.started = turns.started_count;
            self.started_seen = Some(now);
        }
        if turns.running || turns.ended_count == 0 || turns.ended_count == self.judged {
            return None;
        }
        self.judged = turns.ended_count;
        let windows = self.windows(now);
        let Some((w, until)) = usage::near_limit(&windows, self.seen_at()) else {
            let seen: Vec<String> = windows.iter().map(|w| format!("{} {:.0}%{}", w.name, w.used_percent, if w.stale { " (stale)" } else { "" })).collect();
            return Some(Verdict::Stay(format!("under its thresholds ({})", if seen.is_empty() { "no usage seen".into() } else { seen.join(", ") })));
        };
        if self.last_key.is_some_and(|k| self.started_seen.is_none_or(|s| k > s)) {
            return Some(Verdict::Stay(format!(
                "{} window at {:.0}%, but keys were typed since the turn began (the composer may hold text): waiting for the next turn's end",
                w.name, w.used_percent
            )));
        }
        Some(Verdict::Switch(NearLimit { window: w.clone(), until }))
    }

    fn seen_at(&self) -> DateTime<Utc> {
        self.usage.as_ref().map_or(DateTime::<Utc>::MIN_UTC, |u| u.at)
    }

    fn windows(&self, now: DateTime<Utc>) -> Vec<Window> {
        let Some(u) = &self.usage else { return Vec::new() };
        [&u.primary, &u.secondary]
            .into_iter()
            .flatten()
            .filter_map(|w| Some(Window::new(w.window_minutes, w.used_percent?, w.resets_at, u.at, &self.thresholds, now)))
            .collect()
    }
}

/// The notice after a boundary switch: `acc1 is at 96% of its 5h window (resets 20:13); this
/// session continues on acc2`.
pub fn near_limit_notice(from: &str, n: &NearLimit, to: &str, local: impl Fn(DateTime<Utc>) -> String) -> String {
    format!(
        "{from} is at {:.0}% of its {} window (resets {}); this session continues on {to}",
        n.window.used_percent,
        usage::window_words(&n.window.name),
        local(n.until)
    )
}

/// A limit shown on the screen (or printed) that was already handled: the resumed TUI redraws
/// the old conversation with its old banner. Same text (whitespace aside: wrapping differs), or
/// same kind and reset minute (the screen shows minutes, the rollout has seconds).
pub(crate) fn is_redraw(l: &LimitEvent, handled: &[LimitEvent]) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let minute = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp() / 60);
    handled.iter().any(|h| {
        squash(&h.text) == squash(&l.text) || (h.kind == l.kind && h.resets_at.is_some() && minute(h.resets_at) == minute(l.resets_at))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{LimitKind, RateWindow, Source};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn reading(primary: Option<(f64, u64)>, secondary: Option<(f64, u64)>, at: &str) -> RateLimitsEvent {
        let w = |(p, m): (f64, u64)| RateWindow { used_percent: Some(p), window_minutes: Some(m), resets_at: Some(t("2026-11-24T20:13:00Z")) };
        RateLimitsEvent { primary: primary.map(w), secondary: secondary.map(w), limit_id: None, plan_type: None, account: None, at: t(at), session_id: None }
    }

    /// `n` turns ended, the last one begun at `started` (and `n` or `n + 1` begun).
    fn turns(n: u64, running: bool, started: &str) -> Turns {
        Turns { started: Some(t(started)), ended: Some(t(started)), ended_count: n, started_count: n + running as u64, running }
    }

    const NOW: &str = "2026-11-24T18:00:00Z";

    #[test]
    fn switches_only_at_a_turn_end_over_the_threshold() {
        let mut b = Boundary::new(Thresholds::default());
        b.usage(&reading(Some((96.0, 300)), Some((10.0, 10080)), "2026-11-24T17:59:00Z"));
        // crossed mid-turn: nothing until the turn ends
        assert_eq!(b.judge(turns(0, true, "2026-11-24T17:58:00Z"), t(NOW)), None);
        assert_eq!(b.judge(turns(1, true, "2026-11-24T17:58:00Z"), t(NOW)), None, "the next turn already runs");
        let Some(Verdict::Switch(n)) = b.judge(turns(1, false, "2026-11-24T17:58:00Z"), t(NOW)) else { panic!() };
        assert_eq!((n.window.name.as_str(), n.until), ("5h", t("2026-11-24T20:13:00Z")));
        // one verdict per turn end
        assert_eq!(b.judge(turns(1, false, "2026-11-24T17:58:00Z"), t(NOW)), None);
        let text = near_limit_notice("acc1", &n, "acc2", |_| "20:13".into());
        assert_eq!(text, "acc1 is at 96% of its 5h window (resets 20:13); this session continues on acc2");
    }

    #[test]
    fn keys_typed_during_the_turn_hold_the_switch_until_the_next_end() {
        let mut b = Boundary::new(Thresholds::default());
        b.usage(&reading(Some((97.0, 300)), None, "2026-11-24T17:59:00Z"));
        // the Enter that starts the turn, then hs-run sees it begin; a key during it
        b.key(t("2026-11-24T17:57:59Z"));
        assert_eq!(b.judge(turns(0, true, "2026-11-24T17:58:00Z"), t("2026-11-24T17:58:00Z")), None);
        b.key(t("2026-11-24T17:58:30Z"));
        assert!(matches!(b.judge(turns(1, false, "2026-11-24T17:58:00Z"), t(NOW)), Some(Verdict::Stay(_))));
        // the next turn began after the key (it was the prompt): its end switches
        b.key(t("2026-11-24T18:00:01Z"));
        assert_eq!(b.judge(turns(1, true, "2026-11-24T18:00:01Z"), t("2026-11-24T18:00:01.020Z")), None);
        assert!(matches!(b.judge(turns(2, false, "2026-11-24T18:00:01Z"), t("2026-11-24T18:00:05Z")), Some(Verdict::Switch(_))));
    }

    #[test]
    fn off_stale_and_weekly_only_windows() {
        let mut off = Boundary::new(Thresholds::off());
        off.usage(&reading(Some((99.0, 300)), None, "2026-11-24T17:59:00Z"));
        assert!(matches!(off.judge(turns(1, false, "2026-11-24T17:58:00Z"), t(NOW)), Some(Verdict::Stay(_))));
        // a reading from before the window's reset says nothing
        let mut stale = Boundary::new(Thresholds::default());
        stale.usage(&reading(Some((99.0, 300)), None, "2026-11-24T17:59:00Z"));
        let Some(Verdict::Stay(why)) = stale.judge(turns(1, false, "2026-11-24T17:58:00Z"), t("2026-11-24T20:14:00Z")) else { panic!() };
        assert!(why.contains("(stale)"), "{why}");
        // a plan with only a weekly window (reported as primary): its 98% applies
        let mut weekly = Boundary::new(Thresholds::default());
        weekly.usage(&reading(Some((97.0, 10080)), None, "2026-11-24T17:59:00Z"));
        assert!(matches!(weekly.judge(turns(1, false, "2026-11-24T17:58:00Z"), t(NOW)), Some(Verdict::Stay(_))));
        weekly.usage(&reading(Some((98.0, 10080)), None, "2026-11-24T17:59:30Z"));
        let Some(Verdict::Switch(n)) = weekly.judge(turns(2, false, "2026-11-24T17:58:00Z"), t(NOW)) else { panic!() };
        assert_eq!(n.window.name, "week");
        assert!(near_limit_notice("a", &n, "b", |_| "x".into()).contains("98% of its weekly window"));
        // no usage seen at all: stay
        assert!(matches!(Boundary::new(Thresholds::default()).judge(turns(1, false, NOW), t(NOW)), Some(Verdict::Stay(_))));
    }

    fn limit(text: &str, resets: &str, source: Source) -> LimitEvent {
        LimitEvent {
            kind: LimitKind::UsageLimit,
            text: text.into(),
            resets_at: Some(resets.parse().unwrap()),
            source,
            account: None,
            at: "2026-11-24T18:00:00Z".parse().unwrap(),
            session_id: None,
        }
    }

    #[test]
    fn redraw_of_a_handled_limit() {
        let from_rollout = limit("You’ve hit your usage limit. Try again at 8:13 PM.", "2026-11-24T20:13:27Z", Source::Rollout);
        let redrawn = limit("You’ve hit your usage limit. Try again at\n8:13 PM.", "2026-11-24T20:13:00Z", Source::Screen);
        assert!(is_redraw(&redrawn, std::slice::from_ref(&from_rollout)));
        let wrapped = limit("You’ve hit your usage\n limit. Try again at 9:00 PM.", "2026-11-24T21:00:00Z", Source::Screen);
        let other = limit("You’ve hit your usage limit. Try again at 9:00 PM.", "2026-11-24T21:00:00Z", Source::Screen);
        assert!(is_redraw(&wrapped, std::slice::from_ref(&other)));
        // a new limit (another reset time, another text) is not a redraw
        assert!(!is_redraw(&other, &[from_rollout]));
    }
}
