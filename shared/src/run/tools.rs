//! The sibling tools hs-run composes, run as child processes that talk JSON lines.
//! Their command lines are the contract; they are looked up next to hs-run's own executable,
//! then on PATH.

use crate::events::{self, Event, LimitEvent, OverlayEvent, RateLimitsEvent};
use anyhow::{anyhow, bail, Context, Result};
use chrono::{DateTime, Utc};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where to look for the tools.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// The folder of hs-run's own executable.
    pub dir: Option<PathBuf>,
    /// `PATH`.
    pub path_var: Option<OsString>,
}

/// One account's line of `hs-rotate status --json`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountState {
    pub name: String,
    pub available: bool,
    pub until: Option<DateTime<Utc>>,
    /// Its login is dead (state `login_needed`).
    pub login_needed: bool,
}

/// What a finished tool printed.
struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Tools {
    /// The path of tool `name`, or an error saying how to get it.
    pub fn locate(&self, name: &str) -> Result<PathBuf> {
        let beside = self.dir.as_ref().map(|d| d.join(name));
        let on_path = self.path_var.as_ref().map(std::env::split_paths).into_iter().flatten().map(|d| d.join(name));
        beside.into_iter().chain(on_path).find(|p| p.is_file()).ok_or_else(|| {
            anyhow!(
                "cannot find {name} next to hs-run{} or on PATH; install all codex-hotswap tools together \
                 (cargo install --locked --path .) or add their folder to PATH",
                self.dir.as_ref().map(|d| format!(" (in {})", d.display())).unwrap_or_default()
            )
        })
    }

    /// Checks that every tool hs-run needs is there, before anything is started.
    pub fn check(&self) -> Result<()> {
        for t in ["hs-rotate", "hs-overlay", "hs-detect"] {
            self.locate(t)?;
        }
        Ok(())
    }

    pub fn command(&self, name: &str) -> Result<Command> {
        let mut c = Command::new(self.locate(name)?);
        c.stdin(Stdio::null());
        Ok(c)
    }

    fn run(&self, name: &str, args: &[&str], input: Option<&str>) -> Result<Output> {
        let what = format!("{name} {}", args.join(" "));
        let mut c = self.command(name)?;
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn().with_context(|| format!("cannot run {what}"))?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes()).with_context(|| format!("cannot write to {what}"))?;
        }
        let out = child.wait_with_output().with_context(|| format!("cannot run {what}"))?;
        Ok(Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs a tool that must succeed; returns its stdout.
    fn run_ok(&self, name: &str, args: &[&str], input: Option<&str>) -> Result<String> {
        let out = self.run(name, args, input)?;
        if out.code != Some(0) {
            bail!("{name} {} failed{}", args.first().copied().unwrap_or(""), reason(&out));
        }
        Ok(out.stdout)
    }

    /// `hs-rotate pick` / `hs-rotate next …`: the account, or `None` when none is available.
    fn account_answer(&self, args: &[&str]) -> Result<Option<String>> {
        let verb = args.join(" ");
        let out = self.run("hs-rotate", args, None)?;
        match out.code {
            Some(0) => {
                let name = out.stdout.trim().to_string();
                if name.is_empty() {
                    bail!("hs-rotate {verb} printed no account name");
                }
                Ok(Some(name))
            }
            Some(1) => Ok(None),
            _ => bail!("hs-rotate {verb} failed{}", reason(&out)),
        }
    }

    pub fn pick(&self) -> Result<Option<String>> {
        self.account_answer(&["pick"])
    }

    pub fn next(&self) -> Result<Option<String>> {
        self.account_answer(&["next"])
    }

    /// `hs-rotate next --under-threshold [--dry-run]`: the next account under its usage
    /// thresholds, or `None` when there is none.
    pub fn next_under_threshold(&self, dry_run: bool) -> Result<Option<String>> {
        let mut args = vec!["next", "--under-threshold"];
        if dry_run {
            args.push("--dry-run");
        }
        self.account_answer(&args)
    }

    /// `hs-rotate exhaust --event -` with the limit (stamped with its account).
    pub fn exhaust(&self, ev: &LimitEvent) -> Result<()> {
        let line = events::to_line(&Event::Limit(ev.clone())) + "\n";
        self.run_ok("hs-rotate", &["exhaust", "--event", "-"], Some(&line)).map(drop)
    }

    /// `hs-rotate login-needed NAME --reason TEXT`: the account's login is dead.
    pub fn login_needed(&self, account: &str, reason: &str) -> Result<()> {
        self.run_ok("hs-rotate", &["login-needed", account, "--reason", reason], None).map(drop)
    }

    /// `hs-rotate record --event -` with usage telemetry lines.
    pub fn record(&self, evs: &[RateLimitsEvent]) -> Result<()> {
        if evs.is_empty() {
            return Ok(());
        }
        let lines: String = evs.iter().map(|e| events::to_line(&Event::RateLimits(e.clone())) + "\n").collect();
        self.run_ok("hs-rotate", &["record", "--event", "-"], Some(&lines)).map(drop)
    }

    /// `hs-rotate status --json`: every account with its availability.
    pub fn status(&self) -> Result<Vec<AccountState>> {
        let out = self.run_ok("hs-rotate", &["status", "--json"], None)?;
        parse_status(&out)
    }

    pub fn overlay_create(&self, account: &str, owner_pid: u32) -> Result<OverlayEvent> {
        let pid = owner_pid.to_string();
        overlay_answer(&self.run_ok("hs-overlay", &["create", "--account", account, "--owner-pid", &pid], None)?)
    }

    pub fn overlay_swap(&self, id: &str, account: &str) -> Result<()> {
        self.run_ok("hs-overlay", &["swap", id, "--account", account], None).map(drop)
    }

    pub fn overlay_destroy(&self, id: &str) -> Result<()> {
        self.run_ok("hs-overlay", &["destroy", id], None).map(drop)
    }
}

fn reason(out: &Output) -> String {
    let code = out.code.map_or("killed by a signal".to_string(), |c| format!("exit {c}"));
    let msg = out.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    if msg.is_empty() {
        format!(" ({code})")
    } else {
        format!(" ({code}): {msg}")
    }
}

fn overlay_answer(stdout: &str) -> Result<OverlayEvent> {
    for line in stdout.lines() {
        if let Ok(Some(Event::Overlay(o))) = events::parse_line(line) {
            return Ok(o);
        }
    }
    bail!("hs-overlay printed no overlay line: {:?}", stdout.trim())
}

/// `hs-rotate status --json`: JSON lines or one array, objects with `name`, `state`, `until`.
pub fn parse_status(text: &str) -> Result<Vec<AccountState>> {
    let values: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(v @ serde_json::Value::Object(_)) => vec![v],
        _ => text
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("hs-rotate status --json printed a line that is not JSON")?,
    };
    Ok(values
        .iter()
        .filter_map(|v| {
            let state = v.get("state").and_then(|s| s.as_str());
            Some(AccountState {
                name: v.get("name")?.as_str()?.to_string(),
                available: !matches!(state, Some("exhausted" | "login_needed")),
                until: v.get("until").and_then(|u| u.as_str()).and_then(|u| u.parse().ok()),
                login_needed: state == Some("login_needed"),
            })
        })
        .collect())
}

/// The earliest reset among exhausted accounts.
pub fn earliest_reset(states: &[AccountState]) -> Option<(&str, DateTime<Utc>)> {
    states.iter().filter(|s| !s.available).filter_map(|s| Some((s.name.as_str(), s.until?))).min_by_key(|(_, t)| *t)
}

/// `acc2 needs a new login`, `acc2, acc3 need a new login`, or `None`.
pub fn dead_logins(states: &[AccountState]) -> Option<String> {
    let names: Vec<&str> = states.iter().filter(|s| s.login_needed).map(|s| s.name.as_str()).collect();
    match names.len() {
        0 => None,
        1 => Some(format!("{} needs a new login", names[0])),
        _ => Some(format!("{} need a new login", names.join(", "))),
    }
}

/// The `hs-detect` command line for a stream of codex output.
pub fn detect_args(format: &str, size: Option<(u16, u16)>, account: &str) -> Vec<String> {
    let mut a = vec!["--format".to_string(), format.to_string(), "--account".into(), account.into()];
    if let Some((rows, cols)) = size {
        a.push("--size".into());
        a.push(format!("{rows}x{cols}"));
    }
    a
}

pub fn exe_dir(exe: &Path) -> Option<PathBuf> {
    exe.parent().map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_and_array() {
        let lines = "{\"name\":\"a\",\"current\":true,\"state\":\"available\",\"until\":null}\n\
                     {\"name\":\"b\",\"state\":\"exhausted\",\"until\":\"2026-11-24T20:13:00Z\",\"reason\":\"usage_limit\"}\n\
                     {\"name\":\"c\",\"state\":\"login_needed\",\"until\":null,\"fix\":\"codex-hotswap login c\"}\n";
        let s = parse_status(lines).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s[0].available && !s[1].available && !s[2].available);
        assert!(s[2].login_needed && !s[1].login_needed);
        assert_eq!(dead_logins(&s).as_deref(), Some("c needs a new login"));
        assert_eq!(dead_logins(&s[..2]), None);
        assert_eq!(earliest_reset(&s).unwrap().0, "b");
        let arr = "[{\"name\":\"x\",\"state\":\"exhausted\",\"until\":\"2026-11-24T21:00:00Z\"},{\"name\":\"y\",\"state\":\"exhausted\",\"until\":\"2026-11-24T20:00:00Z\"}]";
        assert_eq!(earliest_reset(&parse_status(arr).unwrap()).unwrap().0, "y");
    }

    #[test]
    fn missing_tool_says_how_to_fix() {
        let t = Tools { dir: Some("/nonexistent".into()), path_var: Some("/nonexistent2".into()) };
        let e = format!("{:#}", t.locate("hs-rotate").unwrap_err());
        assert!(e.contains("cannot find hs-rotate") && e.contains("PATH"), "{e}");
    }
}
