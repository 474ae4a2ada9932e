//! Usage windows and the thresholds at which an account counts as "near its limit".
//!
//! codex reports, with every answer, how much of each usage window an account has used
//! (`token_count` → `rate_limits`: a `primary` and a `secondary` window, each with
//! `used_percent`, `window_minutes`, `resets_at`). Thresholds are keyed by the window's length,
//! not its position: some plans report no 5 h window, and then the weekly one is `primary`.
//!
//! A reading says nothing once its window has reset: a window whose `resets_at` has passed (or,
//! with no reset time, whose length has passed since it was seen) is stale and ignored.

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A week in minutes: windows this long or longer are "weekly".
pub const WEEK_MINUTES: u64 = 7 * 24 * 60;
/// Default threshold of windows shorter than a week (the 5 h window).
pub const DEFAULT_SHORT: f64 = 95.0;
/// Default threshold of weekly (and longer) windows.
pub const DEFAULT_WEEKLY: f64 = 98.0;

/// `switch_at` in config.json: `"off"`, or per window length (`"5h"`, `"7d"`, minutes as
/// `"300"`) a percent or `"off"`. Windows not named keep their default.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum SwitchAt {
    Word(String),
    PerWindow(BTreeMap<String, Percent>),
}

/// One window's threshold in config.json: a number (1 to 100) or `"off"`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum Percent {
    Number(f64),
    Word(String),
}

/// The checked thresholds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Thresholds {
    /// Everything off: no account is ever near its limit.
    off: bool,
    /// (window minutes, threshold; `None`: off for that window).
    per_window: Vec<(u64, Option<f64>)>,
}

impl Thresholds {
    pub fn off() -> Thresholds {
        Thresholds { off: true, per_window: Vec::new() }
    }

    /// Checks config's `switch_at`.
    pub fn from_config(v: Option<&SwitchAt>) -> Result<Thresholds> {
        let bad = |what: String| anyhow!("config switch_at: {what}; use off, or per window like {{\"5h\": 95, \"7d\": 98}} (a percent 1-100 or off)");
        match v {
            None => Ok(Thresholds::default()),
            Some(SwitchAt::Word(w)) if w.trim() == "off" => Ok(Thresholds::off()),
            Some(SwitchAt::Word(w)) => Err(bad(format!("invalid value {w:?}"))),
            Some(SwitchAt::PerWindow(m)) => {
                let mut per_window = Vec::new();
                for (k, p) in m {
                    let minutes = crate::duration::parse(k)
                        .ok()
                        .map(|d| d.num_minutes())
                        .filter(|m| *m > 0)
                        .ok_or_else(|| bad(format!("invalid window length {k:?}")))?;
                    let pct = match p {
                        Percent::Word(w) if w.trim() == "off" => None,
                        Percent::Number(n) if (1.0..=100.0).contains(n) => Some(*n),
                        Percent::Word(w) => match w.trim().trim_end_matches('%').parse::<f64>() {
                            Ok(n) if (1.0..=100.0).contains(&n) => Some(n),
                            _ => return Err(bad(format!("invalid percent {w:?} for {k}"))),
                        },
                        Percent::Number(n) => return Err(bad(format!("invalid percent {n} for {k}"))),
                    };
                    per_window.push((minutes as u64, pct));
                }
                Ok(Thresholds { off: false, per_window })
            }
        }
    }

    /// The threshold of a window of this length (`None`: off). An unknown length counts as short.
    pub fn for_window(&self, minutes: Option<u64>) -> Option<f64> {
        if self.off {
            return None;
        }
        if let Some(m) = minutes {
            if let Some((_, p)) = self.per_window.iter().find(|(w, _)| *w == m) {
                return *p;
            }
        }
        Some(if minutes.is_some_and(|m| m >= WEEK_MINUTES) { DEFAULT_WEEKLY } else { DEFAULT_SHORT })
    }
}

/// Parses `hs-config set switch_at VALUE`: `off`, `5h=90,7d=off`, or a JSON object.
pub fn parse_setting(text: &str) -> Result<SwitchAt> {
    let t = text.trim();
    if t == "off" {
        return Ok(SwitchAt::Word("off".into()));
    }
    let v = if t.starts_with('{') {
        serde_json::from_str::<SwitchAt>(t).map_err(|e| anyhow!("switch_at: invalid JSON: {e}"))?
    } else {
        let mut m = BTreeMap::new();
        for part in t.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                bail!("switch_at: {part:?} is not WINDOW=PERCENT; use off, or like 5h=95,7d=98 (a percent or off)");
            };
            let v = v.trim().trim_end_matches('%');
            let p = v.parse::<f64>().map(Percent::Number).unwrap_or_else(|_| Percent::Word(v.to_string()));
            m.insert(k.trim().to_string(), p);
        }
        if m.is_empty() {
            bail!("switch_at: empty value; use off, or like 5h=95,7d=98");
        }
        SwitchAt::PerWindow(m)
    };
    Thresholds::from_config(Some(&v))?;
    Ok(v)
}

/// One usage window as last seen.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Window {
    /// `5h`, `week`, `90m`…: the window's length in words.
    pub name: String,
    pub window_minutes: Option<u64>,
    pub used_percent: f64,
    pub resets_at: Option<DateTime<Utc>>,
    /// The threshold for this window (`None`: off).
    pub switch_at: Option<f64>,
    /// The reading is older than the window's reset: ignored.
    pub stale: bool,
    /// Fresh and at or over its threshold.
    pub over: bool,
}

impl Window {
    pub fn new(
        minutes: Option<u64>,
        used: f64,
        resets_at: Option<DateTime<Utc>>,
        seen_at: DateTime<Utc>,
        th: &Thresholds,
        now: DateTime<Utc>,
    ) -> Window {
        let ends = resets_at.or_else(|| minutes.map(|m| seen_at + chrono::Duration::minutes(m as i64)));
        // no reset time and no length: trust it for 5 h
        let stale = ends.unwrap_or(seen_at + chrono::Duration::hours(5)) <= now;
        let switch_at = th.for_window(minutes);
        Window {
            name: window_name(minutes),
            window_minutes: minutes,
            used_percent: used,
            resets_at,
            switch_at,
            stale,
            over: !stale && switch_at.is_some_and(|t| used >= t),
        }
    }

    /// When the reading stops counting: the reset, else the window's length after it was seen.
    pub fn ends(&self, seen_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.resets_at.or_else(|| self.window_minutes.map(|m| seen_at + chrono::Duration::minutes(m as i64)))
    }
}

/// `5h`, `week`, `90m`, `2d`, or `window` when the length is unknown.
pub fn window_name(minutes: Option<u64>) -> String {
    match minutes {
        None => "window".into(),
        Some(WEEK_MINUTES) => "week".into(),
        Some(m) if m % 1440 == 0 => format!("{}d", m / 1440),
        Some(m) if m % 60 == 0 => format!("{}h", m / 60),
        Some(m) => format!("{m}m"),
    }
}

/// `weekly` for `week`, else the name (`5h window`, `weekly window`).
pub fn window_words(name: &str) -> &str {
    if name == "week" {
        "weekly"
    } else {
        name
    }
}

/// The window that makes an account "near its limit", if any: of the fresh windows over their
/// threshold, the one that resets last (the account is spared until then).
pub fn near_limit(windows: &[Window], seen_at: DateTime<Utc>) -> Option<(&Window, DateTime<Utc>)> {
    windows
        .iter()
        .filter(|w| w.over)
        .map(|w| (w, w.ends(seen_at).unwrap_or(seen_at + chrono::Duration::hours(5))))
        .max_by_key(|(_, t)| *t)
}

/// How used an account is, for choosing among accounts that are all near their limit: its
/// fullest fresh window (0 when nothing fresh is known).
pub fn fullest(windows: &[Window]) -> f64 {
    windows.iter().filter(|w| !w.stale).map(|w| w.used_percent).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_by_window_length_and_off() {
        let d = Thresholds::default();
        assert_eq!(d.for_window(Some(300)), Some(95.0));
        assert_eq!(d.for_window(Some(10080)), Some(98.0));
        assert_eq!(d.for_window(None), Some(95.0));
        assert_eq!(Thresholds::off().for_window(Some(300)), None);
        let v = parse_setting("5h=90, 7d=off").unwrap();
        let th = Thresholds::from_config(Some(&v)).unwrap();
        assert_eq!((th.for_window(Some(300)), th.for_window(Some(10080)), th.for_window(Some(60))), (Some(90.0), None, Some(95.0)));
        let json = parse_setting(r#"{"300": 80}"#).unwrap();
        assert_eq!(Thresholds::from_config(Some(&json)).unwrap().for_window(Some(300)), Some(80.0));
        assert_eq!(parse_setting("off").unwrap(), SwitchAt::Word("off".into()));
        for bad in ["5h=101", "5h=0", "5x=90", "5h", "soon", "5h=lots", "", r#"{"5h": true}"#] {
            assert!(parse_setting(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn stale_readings_and_near_limit() {
        let th = Thresholds::default();
        let now = t("2026-11-24T18:00:00Z");
        let seen = t("2026-11-24T17:00:00Z");
        let w = |m, used, reset: Option<&str>| Window::new(m, used, reset.map(t), seen, &th, now);
        let over = w(Some(300), 96.0, Some("2026-11-24T20:13:00Z"));
        assert!(over.over && !over.stale);
        assert!(!w(Some(300), 94.9, Some("2026-11-24T20:13:00Z")).over);
        // its window has reset since: stale, whatever it said
        let old = w(Some(300), 99.0, Some("2026-11-24T17:30:00Z"));
        assert!(old.stale && !old.over);
        // no reset time: stale once the window's length has passed since it was seen
        assert!(!w(Some(300), 99.0, None).stale);
        assert!(w(Some(30), 99.0, None).stale);
        let weekly = w(Some(10080), 97.0, Some("2026-11-28T00:00:00Z"));
        assert!(!weekly.over);
        let weekly_full = w(Some(10080), 98.0, Some("2026-11-28T00:00:00Z"));
        let ws = [over.clone(), weekly_full];
        let (which, until) = near_limit(&ws, seen).unwrap();
        assert_eq!((which.name.as_str(), until), ("week", t("2026-11-28T00:00:00Z")));
        assert_eq!(fullest(&[over, old]), 96.0);
        assert_eq!(window_name(Some(300)), "5h");
        assert_eq!(window_name(Some(10080)), "week");
    }
}
