//! User settings: `$XDG_CONFIG_HOME/codex-hotswap/config.json`. Every setting is optional.
//!
//! ```json
//! {"version": 1, "default_cooldown": "1h", "policy": "order"}
//! ```

use crate::paths::Paths;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const VERSION: u64 = 1;
/// Cooldown for a limit whose reset time is unknown.
pub const DEFAULT_COOLDOWN: &str = "1h";
/// See [`Config::resend_prompt_after`].
pub const DEFAULT_RESEND_PROMPT_AFTER: &str = "8s";
pub const DEFAULT_CONTINUE_PROMPT: &str =
    "The previous account hit its usage limit. Continue where you left off.";
/// What the default continue prompt says instead when the switch was for a login codex refused.
pub const LOGIN_CONTINUE_PROMPT: &str =
    "The previous account's login stopped working. Continue where you left off.";

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Registry order, wrapping around (default).
    #[default]
    Order,
    /// Prefer the available account whose usage window resets soonest.
    SoonestReset,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OnExhausted {
    /// Wait for the earliest reset with a countdown, then resume (default).
    #[default]
    Wait,
    /// Exit with the list of accounts and their reset times.
    Exit,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub version: u64,
    /// Cooldown when a limit names no reset time (default `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_cooldown: Option<String>,
    /// Account selection policy (default `order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// The shared codex home (default: `$CODEX_HOME` at setup, else `~/.codex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_home: Option<PathBuf>,
    /// The real codex executable (default: found on PATH, skipping our shim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_codex: Option<PathBuf>,
    /// Prompt sent when a session is resumed on the next account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_prompt: Option<String>,
    /// Shell command run after each switch, with the switch's JSON on stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_swap: Option<String>,
    /// What hs-run does when every account is exhausted (default `wait`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exhausted: Option<OnExhausted>,
    /// Upper bound of switches in one hs-run (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_swaps: Option<u32>,
    /// When a resumed codex TUI has started no turn this long after it started, hs-run types
    /// the continue prompt for it (default `8s`; `off`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_prompt_after: Option<String>,
    /// When an account counts as near its limit, per usage window (see [`crate::usage`]):
    /// `"off"` or `{"5h": 95, "7d": 98}` (default 95 % for windows shorter than a week, 98 %
    /// for the weekly one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch_at: Option<crate::usage::SwitchAt>,
}

impl Config {
    /// Reads the config file; a missing file gives the defaults.
    pub fn load(paths: &Paths) -> Result<Config> {
        Ok(crate::jsonfile::read_versioned(&paths.config(), VERSION)?
            .unwrap_or(Config { version: VERSION, ..Default::default() }))
    }

    pub fn cooldown(&self) -> Result<chrono::Duration> {
        crate::duration::parse(self.default_cooldown.as_deref().unwrap_or(DEFAULT_COOLDOWN))
            .map_err(|e| anyhow::anyhow!("config default_cooldown: {e}"))
    }

    /// `resend_prompt_after` (`None`: off).
    pub fn resend_prompt_after(&self) -> Result<Option<std::time::Duration>> {
        let text = self.resend_prompt_after.as_deref().unwrap_or(DEFAULT_RESEND_PROMPT_AFTER);
        if text.trim() == "off" {
            return Ok(None);
        }
        let d = crate::duration::parse(text).map_err(|e| anyhow::anyhow!("config resend_prompt_after: {e} (or off)"))?;
        Ok(Some(d.to_std().unwrap_or_default()))
    }

    /// `switch_at`, checked.
    pub fn thresholds(&self) -> Result<crate::usage::Thresholds> {
        crate::usage::Thresholds::from_config(self.switch_at.as_ref())
    }

    pub fn policy(&self) -> Policy {
        self.policy.unwrap_or_default()
    }

    pub fn shared_home(&self, paths: &Paths) -> PathBuf {
        self.shared_home.clone().unwrap_or_else(|| paths.default_shared_home())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resend_prompt_after_defaults_to_8s_and_can_be_off() {
        let with = |v: Option<&str>| Config { resend_prompt_after: v.map(String::from), ..Default::default() };
        assert_eq!(with(None).resend_prompt_after().unwrap(), Some(std::time::Duration::from_secs(8)));
        assert_eq!(with(Some("1m30s")).resend_prompt_after().unwrap(), Some(std::time::Duration::from_secs(90)));
        assert_eq!(with(Some("off")).resend_prompt_after().unwrap(), None);
        assert!(with(Some("later")).resend_prompt_after().is_err());
    }
}
