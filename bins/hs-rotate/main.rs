//! hs-rotate: which account is current, which are exhausted and until when.

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use shared::cli::{self, EXIT_NONE, EXIT_OK};
use shared::config::Config;
use shared::duration::{self, human, local_short, rfc3339};
use shared::events::{self, Event, LimitEvent, RateLimitsEvent};
use shared::paths::Paths;
use shared::registry::Registry;
use shared::rotate::{self, Choice, State};
use std::io::BufRead;

/// Track which Codex account is current and which are exhausted until when.
///
/// State lives in $XDG_STATE_HOME/codex-hotswap/rotation.json; every change is made under a lock
/// and written atomically, so parallel sessions and cron jobs are safe. An exhaustion ends by
/// itself at its time. Exit codes: 0 ok, 1 no account available (or nothing to read), 2 error.
#[derive(Parser, Debug)]
#[command(name = "hs-rotate", version, after_help = "Examples:\n  hs-rotate status\n  hs-rotate exhaust acc1 --for 2h --reason 'weekly limit'\n  codex exec 'hi' 2>&1 | hs-detect --account acc1 | hs-rotate exhaust --event -\n  hs-rotate reset            # from cron: clear every exhaustion")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every account: current or not, available, near its limit, exhausted (until when, why) or
    /// login_needed (why, and the fix), and a bar per usage window (used share, when it resets).
    Status {
        /// One JSON object per line: name, current, state (available, near_limit, exhausted,
        /// login_needed), until, reason, kind, windows (name, window_minutes, used_percent,
        /// resets_at, switch_at, stale, over), and when recorded primary_used_percent,
        /// secondary_used_percent, resets_at, secondary_resets_at, seen_at,
        /// primary_window_minutes, secondary_window_minutes; for login_needed also fix and since.
        #[arg(long)]
        json: bool,
    },
    /// Print the current account's name.
    Current,
    /// Make NAME the current account.
    Use { name: String },
    /// Move to the next available account (by the configured policy) and print its name.
    Next {
        /// Print the account without moving to it.
        #[arg(long)]
        dry_run: bool,
        /// Only an account under its usage thresholds (switch_at) will do: exit 1 when none is
        /// (without it, the least used available account is taken then).
        #[arg(long)]
        under_threshold: bool,
    },
    /// Print the account a new session should start on: the current one if available, else the
    /// next (the current account is not changed).
    Pick,
    /// Mark an account exhausted until a time (default: the event's reset time, else the
    /// configured default cooldown).
    Exhaust {
        /// The account (default: the event's account).
        name: Option<String>,
        /// Until when: RFC 3339 (2026-11-24T20:13:00Z) or unix seconds.
        #[arg(long, value_name = "TIME", conflicts_with = "for_")]
        until: Option<String>,
        /// For how long: 90m, 2h, 1h30m, 1d.
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// Why (default: the event's text).
        #[arg(long)]
        reason: Option<String>,
        /// Read a limit event (hs-detect's JSON line) from stdin: `--event -`.
        #[arg(long, value_name = "-")]
        event: Option<String>,
    },
    /// Store usage telemetry: reads hs-detect's `rate_limits` JSON lines from stdin (`--event -`).
    Record {
        #[arg(long, value_name = "-", required = true)]
        event: String,
        /// The account (default: each event's account).
        #[arg(long)]
        account: Option<String>,
    },
    /// Clear the exhaustion (and the usage seen) of NAME, or of every account (a dead login
    /// stays: see login-needed).
    Reset { name: Option<String> },
    /// Mark NAME's login dead (its tokens were revoked or spent): `pick` and `next` skip it until
    /// it is logged in again (`hs-vault login NAME` clears the mark; so does `--clear`).
    LoginNeeded {
        name: String,
        /// What codex said.
        #[arg(long, default_value = "the login was refused")]
        reason: String,
        /// NAME has a new login: clear the mark.
        #[arg(long, conflicts_with = "reason")]
        clear: bool,
    },
}

fn main() {
    cli::run_main("hs-rotate", || {
        let args = Cli::parse();
        let paths = Paths::from_env()?;
        run(args.cmd, &paths, chrono::SubsecRound::trunc_subsecs(Utc::now(), 0))
    })
}

fn run(cmd: Cmd, paths: &Paths, now: DateTime<Utc>) -> Result<i32> {
    let (reg, config) = rotate::load_context(paths)?;
    let rules = rotate::Rules::new(config.policy(), config.thresholds()?);
    match cmd {
        Cmd::Status { json } => status(paths, &reg, &rules.thresholds, json, now),
        Cmd::Current => {
            let state = State::load(paths)?;
            match state.current(&reg) {
                Some(c) => cli::print_text(&format!("{c}\n"))?,
                None => return Ok(no_accounts()),
            }
            Ok(EXIT_OK)
        }
        Cmd::Use { name } => {
            reg.find(&name)?;
            let (until, dead) = State::update(paths, |s| {
                s.current = Some(name.clone());
                Ok((s.exhausted_until(&name, now), s.login_needed(&name).is_some()))
            })?;
            if let Some(u) = until {
                eprintln!("hs-rotate: note: {name} is exhausted until {} (in {})", local_short(u, now), human(u - now));
            }
            if dead {
                eprintln!("hs-rotate: note: {name} needs a new login ({})", rotate::login_fix(&name));
            }
            cli::print_text(&format!("{name}\n"))?;
            Ok(EXIT_OK)
        }
        Cmd::Next { dry_run, under_threshold } => {
            let rules = rotate::Rules { under_threshold_only: under_threshold, ..rules };
            let choice = State::update(paths, |s| {
                let choice = rotate::next(&reg, s, &rules, now);
                if let (Choice::Account(a), false) = (&choice, dry_run) {
                    s.current = Some(a.clone());
                    s.expire(now);
                }
                Ok(choice)
            })?;
            answer(&reg, choice, "no other account available", now)
        }
        Cmd::Pick => {
            let state = State::load(paths)?;
            answer(&reg, rotate::pick(&reg, &state, &rules, now), "no account available", now)
        }
        Cmd::Exhaust { name, until, for_, reason, event } => exhaust(paths, &reg, &config, name, until, for_, reason, event, now),
        Cmd::Record { event, account } => record(paths, &reg, &event, account),
        Cmd::LoginNeeded { name, reason, clear } => {
            reg.find(&name)?;
            let was = State::update(paths, |s| {
                if clear {
                    return Ok(s.clear_login_needed(&name));
                }
                s.mark_login_needed(&name, reason.clone(), now);
                Ok(true)
            })?;
            cli::print_text(&match (clear, was) {
                (false, _) => format!("{name} needs a new login: {}\n", rotate::login_fix(&name)),
                (true, true) => format!("{name} is available again\n"),
                (true, false) => format!("{name} was not marked\n"),
            })?;
            Ok(EXIT_OK)
        }
        Cmd::Reset { name } => {
            if let Some(n) = &name {
                reg.find(n)?;
            }
            State::update(paths, |s| {
                match &name {
                    Some(n) => s.reset_all(n),
                    None => {
                        let all: Vec<String> = s.accounts.keys().cloned().collect();
                        all.iter().for_each(|n| s.reset_all(n));
                    }
                }
                Ok(())
            })?;
            cli::print_text(&match name {
                Some(n) => format!("{n} is available\n"),
                None => "every account is available\n".to_string(),
            })?;
            Ok(EXIT_OK)
        }
    }
}

fn no_accounts() -> i32 {
    eprintln!("hs-rotate: no accounts registered: add one with 'hs-vault add NAME'");
    EXIT_NONE
}

/// Prints a chosen account, or explains on stderr why there is none (exit 1).
fn answer(reg: &Registry, choice: Choice, none: &str, now: DateTime<Utc>) -> Result<i32> {
    match choice {
        Choice::Account(a) => {
            cli::print_text(&format!("{a}\n"))?;
            Ok(EXIT_OK)
        }
        Choice::NoneUntil(_) if reg.accounts.is_empty() => Ok(no_accounts()),
        Choice::NoneUntil(Some((name, until))) => {
            eprintln!(
                "hs-rotate: {none}; the first back is {name} at {} ({}, in {})",
                rfc3339(until),
                local_short(until, now),
                human(until - now)
            );
            Ok(EXIT_NONE)
        }
        Choice::NoneUntil(None) => {
            eprintln!("hs-rotate: {none}");
            Ok(EXIT_NONE)
        }
    }
}

fn status(paths: &Paths, reg: &Registry, th: &shared::usage::Thresholds, json: bool, now: DateTime<Utc>) -> Result<i32> {
    let state = State::load(paths)?;
    let entries = rotate::status(reg, &state, th, now);
    if json {
        for e in &entries {
            cli::print_json(e)?;
        }
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        return Ok(no_accounts());
    }
    let out = std::io::stdout();
    let tty = std::io::IsTerminal::is_terminal(&out);
    // colour on a terminal only, and not with NO_COLOR set
    let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let width = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).or_else(|| tty.then(terminal_width).flatten()).unwrap_or(80);
    cli::print_text(&shared::status_view::render(&entries, now, width, color))?;
    Ok(EXIT_OK)
}

/// The terminal's width, when stdout is one.
fn terminal_width() -> Option<usize> {
    shared::pty::window_size(std::os::fd::AsFd::as_fd(&std::io::stdout())).map(|w| w.ws_col as usize).filter(|w| *w > 0)
}

/// Reads JSON lines from stdin: events of the wanted kind, skipping other lines and types.
fn read_events<T>(pick: impl Fn(Event) -> Option<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for (i, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("cannot read stdin")?;
        match events::parse_line(&line) {
            Ok(Some(ev)) => out.extend(pick(ev)),
            Ok(None) => {}
            Err(e) => bail!("stdin:{}:{}: invalid event JSON: {e}", i + 1, e.column()),
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn exhaust(
    paths: &Paths,
    reg: &Registry,
    config: &Config,
    name: Option<String>,
    until: Option<String>,
    for_: Option<String>,
    reason: Option<String>,
    event: Option<String>,
    now: DateTime<Utc>,
) -> Result<i32> {
    let ev: Option<LimitEvent> = match event.as_deref() {
        None => None,
        Some("-") => {
            let evs = read_events(|e| if let Event::Limit(l) = e { Some(l) } else { None })?;
            match evs.into_iter().last() {
                Some(e) => Some(e),
                None => {
                    eprintln!("hs-rotate: no limit event on stdin; nothing changed");
                    return Ok(EXIT_NONE);
                }
            }
        }
        Some(other) => bail!("--event takes '-' (stdin), not {other:?}"),
    };
    let name = match name.or_else(|| ev.as_ref().and_then(|e| e.account.clone())) {
        Some(n) => n,
        None if ev.is_some() => bail!("the limit event names no account: give the account as NAME"),
        None => bail!("which account? give NAME or --event -"),
    };
    reg.find(&name)?;
    let until = match (until, for_) {
        (Some(t), _) => duration::parse_time(&t)?,
        (None, Some(d)) => now + duration::parse(&d)?,
        (None, None) => match ev.as_ref().and_then(|e| e.resets_at) {
            Some(t) => t,
            None => now + config.cooldown()?,
        },
    };
    let reason = reason.or_else(|| ev.as_ref().map(|e| e.text.clone()));
    let kind = ev.as_ref().map(|e| e.kind);
    State::update(paths, |s| {
        s.exhaust(&name, until, kind, reason, now);
        Ok(())
    })?;
    if until > now {
        cli::print_text(&format!("{name} exhausted until {} ({}, in {})\n", rfc3339(until), local_short(until, now), human(until - now)))?;
    } else {
        cli::print_text(&format!("{name}: the given time {} has passed; it stays available\n", rfc3339(until)))?;
    }
    Ok(EXIT_OK)
}

fn record(paths: &Paths, reg: &Registry, event: &str, account: Option<String>) -> Result<i32> {
    if event != "-" {
        bail!("--event takes '-' (stdin), not {event:?}");
    }
    if let Some(a) = &account {
        reg.find(a)?;
    }
    let evs: Vec<RateLimitsEvent> = read_events(|e| if let Event::RateLimits(r) = e { Some(r) } else { None })?;
    if evs.is_empty() {
        eprintln!("hs-rotate: no rate_limits event on stdin; nothing changed");
        return Ok(EXIT_NONE);
    }
    let mut named = Vec::new();
    for ev in &evs {
        let name = match account.clone().or_else(|| ev.account.clone()) {
            Some(n) => n,
            None => bail!("a rate_limits event names no account: pass --account NAME"),
        };
        reg.find(&name)?;
        named.push((name, ev));
    }
    State::update(paths, |s| {
        for (name, ev) in &named {
            s.record(name, ev);
        }
        Ok(())
    })?;
    let (name, ev) = named.last().expect("not empty");
    let pct = |w: &Option<shared::events::RateWindow>| {
        w.as_ref().and_then(|w| w.used_percent).map_or("-".into(), |p| format!("{p}%"))
    };
    cli::print_text(&format!("recorded usage for {name}: 5h window {}, weekly {}\n", pct(&ev.primary), pct(&ev.secondary)))?;
    Ok(EXIT_OK)
}


#[cfg(test)]
mod tests {
    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
