//! Durations like `90m`, `2h`, `1h30m`, `1d`, `45s`, and times given on the command line.

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Utc};

/// Parses `1d2h30m15s`-style durations (at least one part; a bare number means minutes).
pub fn parse(text: &str) -> Result<chrono::Duration> {
    let t = text.trim();
    let bad = || anyhow!("invalid duration {text:?}: use forms like 90m, 2h, 1h30m, 1d or 45s");
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(mins) = t.parse::<i64>() {
        return chrono::Duration::try_minutes(mins).filter(|_| mins >= 0).ok_or_else(bad);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    chrono::Duration::try_seconds(total).ok_or_else(bad)
}

/// Short human form: `4h05m`, `12m`, `40s`, `2d3h`.
pub fn human(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins, secs) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    if days > 0 {
        format!("{days}d{hours}h")
    } else if hours > 0 {
        format!("{hours}h{mins:02}m")
    } else if mins > 0 {
        format!("{mins}m")
    } else {
        format!("{secs}s")
    }
}

/// Parses a point in time: RFC 3339 (`2026-11-24T20:13:00Z`, with offset) or unix seconds.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| anyhow!("time out of range: {text:?}"));
    }
    match DateTime::parse_from_rfc3339(t) {
        Ok(dt) => Ok(dt.with_timezone(&Utc)),
        Err(_) => bail!("invalid time {text:?}: use RFC 3339 like 2026-11-24T20:13:00Z or unix seconds"),
    }
}

/// RFC 3339 in UTC with whole seconds, the form every JSON file and event uses.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Local wall-clock time for people: `20:13`, or `Nov 27 20:13` when not today.
pub fn local_short(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let lt = t.with_timezone(&chrono::Local);
    if lt.date_naive() == now.with_timezone(&chrono::Local).date_naive() {
        lt.format("%H:%M").to_string()
    } else {
        lt.format("%b %-d %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("90m").unwrap().num_minutes(), 90);
        assert_eq!(parse("2h").unwrap().num_minutes(), 120);
        assert_eq!(parse("1h30m").unwrap().num_minutes(), 90);
        assert_eq!(parse("1d").unwrap().num_hours(), 24);
        assert_eq!(parse("45s").unwrap().num_seconds(), 45);
        assert_eq!(parse("15").unwrap().num_minutes(), 15);
        for bad in ["", "h", "1x", "1h30", "-5", "1.5h", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(human(parse("4h5m").unwrap()), "4h05m");
        assert_eq!(human(parse("50h").unwrap()), "2d2h");
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(parse_time("2026-11-24T20:13:00+01:00").unwrap()), "2026-11-24T19:13:00Z");
        assert_eq!(rfc3339(parse_time("0").unwrap()), "1970-01-01T00:00:00Z");
        assert!(parse_time("tomorrow").is_err());
    }
}
