//! The limit messages codex shows, and the reset times inside them.
//!
//! A message is recognised only by how it STARTS (after an optional `🖐 `): codex puts its own
//! error text first, so the same words in the middle of something else never match. The
//! apostrophe may be `’` (codex 0.169.0) or `'` (older versions); case is ignored.

use crate::events::LimitKind;
use chrono::{DateTime, Duration, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::LazyLock;

/// The time zone that `try again at 7:48 PM` is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone (what codex used to format the time).
    #[default]
    Local,
    /// A fixed UTC offset (tests, replays of captures made elsewhere).
    Fixed(FixedOffset),
}

/// How each kind of limit message begins, lowercase, with an ASCII apostrophe.
/// Longer openers first: the model limit is a usage limit followed by ` for <model>`.
const OPENERS: &[(&str, LimitKind)] = &[
    ("you've hit your usage limit for ", LimitKind::ModelLimit),
    ("you've hit your usage limit", LimitKind::UsageLimit),
    ("your workspace is out of credits", LimitKind::WorkspaceCredits),
    ("you hit your spend cap", LimitKind::SpendCap),
    // The TUI's own words for a workspace owner out of credits or at the workspace's usage
    // limit (the states codex's core words as "out of credits" and "spend cap").
    ("you're out of credits", LimitKind::WorkspaceCredits),
    ("usage limit reached. you've reached your usage limit", LimitKind::SpendCap),
    ("quota exceeded. check your plan and billing details", LimitKind::Quota),
    ("to use codex with your chatgpt plan, upgrade to plus", LimitKind::PlanNotIncluded),
    ("exceeded retry limit, last status: 429", LimitKind::RateLimited),
];

/// The longest opener, in bytes of the text as shown (an apostrophe `’` is three bytes, a
/// leading `🖐 ` five): a text longer than this has its kind settled.
pub const OPENER_MAX: usize = 80;

/// Lowercases, folds `’`/`ʼ` to `'`, makes every run of whitespace one space (a banner is
/// reported that way), and drops a leading `🖐` (with its variation selector).
pub fn normalize(text: &str) -> String {
    let t = text.trim_start();
    let t = t.strip_prefix('🖐').map(|r| r.trim_start_matches('\u{fe0f}').trim_start()).unwrap_or(t);
    let mut out = String::with_capacity(t.len());
    let mut space = false;
    for c in t.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if std::mem::take(&mut space) {
            out.push(' ');
        }
        out.push(match c {
            '\u{2019}' | '\u{02bc}' | '\u{2018}' => '\'',
            c => c.to_ascii_lowercase(),
        });
    }
    if space {
        out.push(' ');
    }
    out
}

/// The kind of limit a message reports, when the message starts like one of codex's.
pub fn classify(text: &str) -> Option<LimitKind> {
    let n = normalize(text);
    OPENERS.iter().find(|(o, _)| n.starts_with(o)).map(|&(_, k)| k)
}

/// The kind of limit an error message of codex's own (its red `■` row, an `ERROR:` line, an
/// `error` JSON event) reports: a known message, or [`LimitKind::Other`] for a text in other
/// words that says a limit was hit ([`limit_like`]).
pub fn classify_error(text: &str) -> Option<LimitKind> {
    classify(text).or_else(|| limit_like(text).then_some(LimitKind::Other))
}

/// Whether an error text that starts like none of codex's known messages still says that a
/// limit was hit ("… reached your credit limit", "quota exceeded", "out of credits"): on codex's
/// own error row such a text is a limit in words this version of hs-detect does not know yet.
/// Labels that merely name a limit ("usage limit resets", "5h limit: 20% left") do not match.
pub fn limit_like(text: &str) -> bool {
    static HIT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?x)
            \b(hit|reached|exceeded|exhausted|used\ up|out\ of|over|ran\ out\ of)\b [^.?!]{0,40}
                \b(usage\ limits?|spend(ing)?\ (cap|limit)|credit\ limit|credits|quota|rate\ limits?\ for)\b
            | \b(usage\ limit|spend\ cap|credit\ limit|quota)\ (reached|exceeded|hit)\b
            | \binsufficient[_\ ]quota\b",
        )
        .unwrap()
    });
    // A file system's quota (EDQUOT, "Disk quota exceeded (os error 122)") is not the account's.
    let n = normalize(text);
    HIT.is_match(&n) && !n.contains("disk quota") && !n.contains("(os error")
}

/// Whether `text` could still grow into a limit message (it is a prefix of an opener, or
/// already starts with one). Lets the screen reader drop other `■` lines early.
pub fn could_be_limit(text: &str) -> bool {
    let n = normalize(text);
    if n.is_empty() {
        return true;
    }
    OPENERS.iter().any(|(o, _)| n.starts_with(o) || o.starts_with(n.as_str()))
}

/// Whether a limit message is whole: it ends the way codex's messages of its kind end, so a
/// reader that saw only part of it (a wrapped row still to come) knows it can stop waiting.
/// The plain 429 message ends with a request id and is never known to be whole.
pub fn is_complete(kind: LimitKind, text: &str) -> bool {
    static END: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(try again (at|in) [^.]*[0-9a-z]|try again later|every week\.\))\.$").unwrap()
    });
    let t = text.trim_end();
    match kind {
        LimitKind::UsageLimit | LimitKind::ModelLimit => END.is_match(t),
        LimitKind::WorkspaceCredits | LimitKind::SpendCap => {
            let n = normalize(t);
            n.ends_with(" to continue.") || n.ends_with(" to continue using codex.")
        }
        LimitKind::Quota => normalize(t).ends_with("billing details."),
        LimitKind::PlanNotIncluded => normalize(t).ends_with("explore/plus."),
        LimitKind::RateLimited | LimitKind::NearLimit | LimitKind::Other => false,
    }
}

/// The reset moment a message states, seen at `now`:
/// - `try again at 7:48 PM` (or `19:48`): the next such wall-clock moment in `zone` (a time up
///   to a minute in the past still counts as now: codex rounds);
/// - `try again at Nov 27th, 2026 5:48 PM`: that moment in `zone`;
/// - `try again in 2 hours 10 minutes`: `now` plus that;
/// - `later`, anything else, or no reset at all: `None`.
pub fn reset_time(text: &str, now: DateTime<Utc>, zone: Zone) -> Option<DateTime<Utc>> {
    static AT_DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)try again at ([a-z]{3})[a-z]*\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4}),? (\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?",
        )
        .unwrap()
    });
    static AT_TIME: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)try again at (\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?").unwrap());
    static IN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)try again in ([^.]+)").unwrap());

    if let Some(c) = AT_DATE.captures(text) {
        let month = month_number(&c[1])?;
        let date = NaiveDate::from_ymd_opt(c[3].parse().ok()?, month, c[2].parse().ok()?)?;
        let time = clock_time(&c[4], &c[5], c.get(6).map(|m| m.as_str()))?;
        return to_utc(date.and_time(time), zone);
    }
    if let Some(c) = AT_TIME.captures(text) {
        let time = clock_time(&c[1], &c[2], c.get(3).map(|m| m.as_str()))?;
        let today = match zone {
            Zone::Local => now.with_timezone(&Local).date_naive(),
            Zone::Fixed(off) => now.with_timezone(&off).date_naive(),
        };
        let mut at = to_utc(today.and_time(time), zone)?;
        if at < now - Duration::minutes(1) {
            at = to_utc(today.succ_opt()?.and_time(time), zone)?;
        }
        return Some(at);
    }
    if let Some(c) = IN.captures(text) {
        return parse_span(&c[1]).map(|d| now + d);
    }
    None
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let n = name.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == n).map(|i| i as u32 + 1)
}

fn clock_time(hour: &str, minute: &str, meridiem: Option<&str>) -> Option<NaiveTime> {
    let (mut h, m): (u32, u32) = (hour.parse().ok()?, minute.parse().ok()?);
    if let Some(ap) = meridiem {
        if !(1..=12).contains(&h) {
            return None;
        }
        let pm = ap.to_ascii_lowercase().starts_with('p');
        h = match (h, pm) {
            (12, false) => 0,
            (12, true) => 12,
            (h, true) => h + 12,
            (h, false) => h,
        };
    }
    NaiveTime::from_hms_opt(h, m, 0)
}

/// A wall-clock moment in `zone` as UTC; in a DST gap, the first valid moment after it.
fn to_utc(local: NaiveDateTime, zone: Zone) -> Option<DateTime<Utc>> {
    fn pick<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        (0..3)
            .find_map(|h| tz.from_local_datetime(&(local + Duration::hours(h))).earliest())
            .map(|t| t.with_timezone(&Utc))
    }
    match zone {
        Zone::Local => pick(&Local, local),
        Zone::Fixed(off) => pick(&off, local),
    }
}

/// `2 hours 10 minutes`, `1 day, 3 hours and 5 minutes`, `45 seconds`, `1h 30m`.
fn parse_span(text: &str) -> Option<Duration> {
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(\d+)\s*(days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b").unwrap()
    });
    let mut total = Duration::zero();
    let mut any = false;
    for c in PART.captures_iter(text) {
        let n: i64 = c[1].parse().ok()?;
        let unit = match c[2].to_ascii_lowercase().chars().next()? {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            _ => 1,
        };
        total += Duration::seconds(n.checked_mul(unit)?);
        any = true;
    }
    any.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    const UTC: Zone = Zone::Fixed(FixedOffset::east_opt(0).unwrap());

    #[test]
    fn kinds_of_every_message() {
        let cases = [
            ("You’ve hit your usage limit. Try again at 7:48 PM.", LimitKind::UsageLimit),
            ("You've hit your usage limit. Try again later.", LimitKind::UsageLimit),
            ("🖐 You've hit your usage limit. Upgrade to Pro (…), or wait for limits to reset (every 5h and every week.).", LimitKind::UsageLimit),
            ("🖐\u{fe0f} You've hit your usage limit.", LimitKind::UsageLimit),
            ("You’ve  hit your\tusage   limit.", LimitKind::UsageLimit),
            ("You’ve hit your usage limit for GPT-6 Sol. Switch to another model now, or try again at 7:48 PM.", LimitKind::ModelLimit),
            ("Your workspace is out of credits. Add credits to continue.", LimitKind::WorkspaceCredits),
            ("You hit your spend cap set in your workspace. Increase your spend cap to continue.", LimitKind::SpendCap),
            ("Quota exceeded. Check your plan and billing details.", LimitKind::Quota),
            ("To use Codex with your ChatGPT plan, upgrade to Plus: https://chatgpt.com/explore/plus.", LimitKind::PlanNotIncluded),
            ("exceeded retry limit, last status: 429 Too Many Requests, request id: abc", LimitKind::RateLimited),
            ("You're out of credits. Your workspace is out of credits. Add credits to continue using Codex.", LimitKind::WorkspaceCredits),
            ("Usage limit reached. You've reached your usage limit. Increase your limits to continue using codex.", LimitKind::SpendCap),
        ];
        for (text, kind) in cases {
            assert_eq!(classify(text), Some(kind), "{text}");
        }
        for text in [
            "I think you’ve hit your usage limit.",
            "⚠ 5h limit: only <1% left · resets at 18:50",
            "Approaching rate limits",
            "exceeded retry limit, last status: 500 Internal Server Error",
            "stream error: exceeded retry limit, last status: 429",
        ] {
            assert_eq!(classify(text), None, "{text}");
        }
    }

    #[test]
    fn limit_words_in_unknown_texts() {
        for text in [
            "Your organization has reached its monthly credit limit.",
            "You have exceeded your current quota, please check your plan.",
            "insufficient_quota",
            "You ran out of credits for this workspace.",
            "Spend cap reached for this project.",
        ] {
            assert!(limit_like(text), "{text}");
            assert_eq!(classify_error(text), Some(LimitKind::Other), "{text}");
        }
        for text in [
            "Couldn't load usage limit resets. Please try again.",
            "⚠ 5h limit: only <1% left · resets at 18:50",
            "You’re no longer close to your usage limit.",
            "Approaching rate limits",
            "exceeded retry limit, last status: 500 Internal Server Error",
            "agent thread limit reached",
            "Selected model is at capacity. Please try a different model.",
            "error: failed to write notes.txt: Disk quota exceeded (os error 122)",
            "sandbox error: Quota exceeded (os error 122)",
        ] {
            assert!(!limit_like(text), "{text}");
        }
    }

    #[test]
    fn opener_max_covers_every_opener() {
        // Each opener as shown: the apostrophe as `’`, after `🖐️ `.
        for (o, _) in OPENERS {
            assert!(o.replace('\'', "’").len() + "🖐\u{fe0f} ".len() <= OPENER_MAX, "{o}");
        }
    }

    #[test]
    fn prefixes_and_completeness() {
        assert!(could_be_limit("You’ve h"));
        assert!(could_be_limit("You’ve hit your usage limit. Upgrade"));
        assert!(!could_be_limit("Conversation interrupted"));
        let k = LimitKind::UsageLimit;
        assert!(is_complete(k, "You’ve hit your usage limit. Try again at 7:48 PM."));
        assert!(is_complete(k, "You’ve hit your usage limit. Try again later."));
        assert!(is_complete(k, "You've hit your usage limit, try again in 2 hours 10 minutes."));
        assert!(!is_complete(k, "You’ve hit your usage limit."));
        assert!(!is_complete(k, "You’ve hit your usage limit. Try again at 7:4"));
        assert!(!is_complete(
            k,
            "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit"
        ));
        assert!(is_complete(k, "You’ve hit your usage limit. Try again at Nov 27th, 2026 5:48 PM."));
        assert!(!is_complete(LimitKind::RateLimited, "exceeded retry limit, last status: 429 Too Many Requests."));
    }

    #[test]
    fn reset_times() {
        let now = t("2026-11-24T18:00:00Z");
        assert_eq!(reset_time("or try again at 7:48 PM.", now, UTC), Some(t("2026-11-24T19:48:00Z")));
        // Earlier in the day than now: tomorrow.
        assert_eq!(reset_time("Try again at 5:00 AM.", now, UTC), Some(t("2026-11-25T05:00:00Z")));
        // Rounded to the minute: a time just passed is still today.
        assert_eq!(reset_time("Try again at 5:59 PM.", now, UTC), Some(t("2026-11-24T17:59:00Z")));
        assert_eq!(reset_time("try again at 12:05 AM.", now, UTC), Some(t("2026-11-25T00:05:00Z")));
        let plus2 = Zone::Fixed(FixedOffset::east_opt(2 * 3600).unwrap());
        assert_eq!(reset_time("Try again at 9:30 PM.", now, plus2), Some(t("2026-11-24T19:30:00Z")));
        assert_eq!(reset_time("or try again at Nov 27th, 2026 5:48 PM.", now, UTC), Some(t("2026-11-27T17:48:00Z")));
        assert_eq!(reset_time("try again at Dec 1st, 2026 9:05 AM.", now, plus2), Some(t("2026-12-01T07:05:00Z")));
        assert_eq!(reset_time("try again in 2 hours 10 minutes.", now, UTC), Some(t("2026-11-24T20:10:00Z")));
        assert_eq!(reset_time("try again in 1 day, 3 hours and 5 minutes.", now, UTC), Some(t("2026-11-25T21:05:00Z")));
        assert_eq!(reset_time("try again in 45 seconds.", now, UTC), Some(t("2026-11-24T18:00:45Z")));
        assert_eq!(reset_time("Try again later.", now, UTC), None);
        assert_eq!(reset_time("or wait for limits to reset (every 5h and every week.).", now, UTC), None);
        assert_eq!(reset_time("try again at 13:48 PM.", now, UTC), None);
    }
}
