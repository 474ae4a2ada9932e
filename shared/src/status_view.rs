//! `hs-rotate status` (and `codex-hotswap status`) as people read it: per account a line with
//! its state in words, then a line per usage window with a bar of the used share, the
//! percentage and when it resets. Colour only when asked (a terminal); fits the given width.
//!
//! ```text
//! * acc1  near limit: 5h window at 96% (switch at 95%) until 19:12 (in 1h 12m)
//!     5h    ███████████████████░  96%  resets in 1h 12m (20:13)
//!     week  ██░░░░░░░░░░░░░░░░░░  12%  resets in 5d 3h (Dec 8 20:13)
//!   acc2  available
//!     no usage seen yet
//! ```

use crate::rotate::StatusEntry;
use crate::usage::Window;
use chrono::{DateTime, Utc};

const BAR: usize = 20;

/// Colours (ANSI SGR) or none.
struct Paint(bool);

impl Paint {
    fn on(&self, sgr: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// The whole view, `width` columns wide at most (at least 40 is assumed).
pub fn render(entries: &[StatusEntry], now: DateTime<Utc>, width: usize, color: bool) -> String {
    let width = width.max(40);
    let paint = Paint(color);
    let name_w = entries.iter().map(|e| e.name.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for e in entries {
        let mark = if e.current { "*" } else { " " };
        let name = format!("{:name_w$}", e.name);
        let head = format!("{mark} {name}  ");
        let room = width.saturating_sub(head.chars().count());
        let (words, sgr) = state_words(e, now);
        out.push_str(&format!("{}{}\n", if e.current { paint.on("1", &head) } else { head.clone() }, paint.on(sgr, &cut(&words, room))));
        let known: Vec<&Window> = e.windows.iter().collect();
        if known.is_empty() {
            out.push_str(&format!("    {}\n", paint.on("2", "no usage seen yet")));
        }
        let wname = known.iter().map(|w| w.name.chars().count()).max().unwrap_or(0);
        for w in known {
            let line = window_line(w, wname, e, now, &paint);
            out.push_str(&format!("    {line}\n"));
        }
    }
    if entries.iter().any(|e| e.current) {
        out.push_str(&paint.on("2", "(* current account)"));
        out.push('\n');
    }
    out
}

/// The state in words and its colour.
fn state_words(e: &StatusEntry, now: DateTime<Utc>) -> (String, &'static str) {
    let when = |t: DateTime<Utc>| format!("{} (in {})", crate::duration::local_short(t, now), in_words(t - now));
    match e.state {
        "available" => ("available".into(), "32"),
        "near_limit" => {
            let why = e.reason.clone().unwrap_or_else(|| "near limit".into());
            let until = e.until.map(|t| format!(" until {}", when(t))).unwrap_or_default();
            (format!("{why}{until}"), "33")
        }
        "exhausted" => {
            let until = e.until.map(|t| format!(" until {}", when(t))).unwrap_or_default();
            let why = e.reason.as_deref().map(|r| format!(": {}", one_line(r))).unwrap_or_default();
            (format!("exhausted{until}{why}"), "31")
        }
        "login_needed" => {
            let why = e.reason.as_deref().map(|r| format!(": {}", one_line(r))).unwrap_or_default();
            let fix = e.fix.as_deref().map(|f| format!(" (fix: {f})")).unwrap_or_default();
            (format!("login needed{fix}{why}"), "31")
        }
        other => {
            // a state this view has no words of its own for
            let why = e.reason.as_deref().map(|r| format!(": {}", one_line(r))).unwrap_or_default();
            (format!("{}{why}", other.replace('_', " ")), "31")
        }
    }
}

fn window_line(w: &Window, name_w: usize, e: &StatusEntry, now: DateTime<Utc>, paint: &Paint) -> String {
    let name = format!("{:name_w$}", w.name);
    if w.stale {
        let seen = e.usage.as_ref().map(|u| format!("seen {} ago", in_words(now - u.seen_at))).unwrap_or_default();
        return format!("{name}  {}", paint.on("2", &format!("{:.0}% {seen}, the window has reset since", w.used_percent)));
    }
    let filled = ((w.used_percent.clamp(0.0, 100.0) / 100.0) * BAR as f64).round() as usize;
    let bar = format!("{}{}", "█".repeat(filled), "░".repeat(BAR - filled));
    let sgr = if w.over {
        "31"
    } else if w.switch_at.is_some_and(|t| w.used_percent >= t - 20.0) {
        "33"
    } else {
        "32"
    };
    let resets = match w.resets_at {
        Some(t) if t > now => format!("resets in {} ({})", in_words(t - now), crate::duration::local_short(t, now)),
        _ => "reset time unknown".into(),
    };
    let pct = format!("{:>3.0}%", w.used_percent);
    format!("{name}  {}  {}  {resets}", paint.on(sgr, &bar), paint.on(if w.over { "1;31" } else { "0" }, &pct))
}

/// `1h 12m`, `5d 3h`, `12m`, `40s`.
pub fn in_words(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` cut to `room` characters, ending in `…` when cut.
fn cut(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_string();
    }
    let mut s: String = text.chars().take(room.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{RateLimitsEvent, RateWindow};
    use crate::registry::{Account, Registry};
    use crate::rotate::{status, State};
    use crate::usage::Thresholds;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn world(n: usize) -> (Registry, State) {
        let reg = Registry {
            version: 1,
            accounts: (1..=n).map(|i| Account { name: format!("acc{i}"), vault: "/v".into(), note: None }).collect(),
        };
        let mut s = State::empty();
        let win = |p, m, r| Some(RateWindow { used_percent: Some(p), window_minutes: Some(m), resets_at: Some(t(r)) });
        let ev = |p, at| RateLimitsEvent {
            primary: win(p, 300, "2026-11-24T19:12:00Z"),
            secondary: win(12.0, 10080, "2026-11-29T21:00:00Z"),
            limit_id: None,
            plan_type: None,
            account: None,
            at: t(at),
            session_id: None,
        };
        s.record("acc1", &ev(96.0, "2026-11-24T17:55:00Z"));
        if n > 1 {
            s.exhaust("acc2", t("2026-11-24T20:30:00Z"), None, Some("You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 8:30 PM.".into()), t("2026-11-24T17:00:00Z"));
        }
        for i in 3..=n {
            s.record(&format!("acc{i}"), &ev(10.0 * (i % 10) as f64, "2026-11-24T12:00:00Z"));
        }
        if n > 3 {
            s.mark_login_needed("acc4", "Please log out and sign in again.".into(), t("2026-11-24T17:30:00Z"));
        }
        s.current = Some("acc1".into());
        (reg, s)
    }

    #[test]
    fn reads_well_at_80_columns_with_1_or_12_accounts() {
        let now = t("2026-11-24T18:00:00Z");
        for n in [1, 12] {
            let (reg, s) = world(n);
            let text = render(&status(&reg, &s, &Thresholds::default(), now), now, 80, false);
            for line in text.lines() {
                assert!(line.chars().count() <= 80, "{n} accounts, too wide: {line:?}\n{text}");
            }
            let first: Vec<&str> = text.lines().take(3).collect();
            assert!(first[0].starts_with("* acc1") && first[0].contains("near limit: 5h window at 96% (switch at 95%) until 19:12 (in 1h 12m)"), "{text}");
            assert!(first[1].contains("5h") && first[1].contains(" 96%") && first[1].contains("resets in 1h 12m"), "{text}");
            assert!(first[2].contains("week") && first[2].contains(" 12%") && first[2].contains("resets in 5d 3h"), "{text}");
            assert!(!text.contains('\x1b'), "no colour unless asked");
            if n == 12 {
                assert!(text.contains("  acc2   exhausted until"), "{text}");
                // acc3's reading is from 12:00; its 5h window reset at 19:12 is still ahead
                assert!(text.contains("  acc12  available"), "{text}");
                assert!(text.contains("  acc4   login needed (fix: codex-hotswap login acc4): Please log out"), "{text}");
            }
        }
        let (reg, s) = world(1);
        let coloured = render(&status(&reg, &s, &Thresholds::default(), now), now, 80, true);
        assert!(coloured.contains("\x1b[31m"), "{coloured}");
        // later, the 5h reading is stale
        let later = t("2026-11-24T19:30:00Z");
        let text = render(&status(&reg, &s, &Thresholds::default(), later), later, 80, false);
        assert!(text.contains("5h    96% seen 1h 35m ago, the window has reset since"), "{text}");
        assert!(text.lines().next().unwrap().ends_with("available"), "{text}");
    }

    #[test]
    fn durations_in_words() {
        let d = chrono::Duration::seconds;
        assert_eq!(in_words(d(4320)), "1h 12m");
        assert_eq!(in_words(d(5 * 86400 + 3 * 3600 + 59)), "5d 3h");
        assert_eq!(in_words(d(720)), "12m");
        assert_eq!(in_words(d(40)), "40s");
        assert_eq!(in_words(d(7200)), "2h");
    }
}
