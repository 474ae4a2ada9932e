//! The overlay's own small JSON file, `<overlay>/.hs-overlay.json`.
//!
//! ```json
//! {"version":1,"id":"20261124-184512-Ab3xYz","state":"ready","account":"acc1",
//!  "vault":"/home/me/.codex-acc1","shared":"/home/me/.codex",
//!  "owner":{"pid":4242,"start_ticks":987654,"boot_id":"…"},
//!  "created_at":"2026-11-24T18:45:12Z","codex_version":"0.169.0"}
//! ```
//! It is written before anything else (state `creating`) and flipped to `ready` last, so an
//! overlay whose creator died half-way is recognisable and collected by `gc`.

use crate::procs::ProcessStamp;
use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// `create` has not finished (or died).
    Creating,
    /// Usable.
    Ready,
    /// `destroy` has started (or died).
    Destroying,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Creating => "creating",
            State::Ready => "ready",
            State::Destroying => "destroying",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Meta {
    pub version: u64,
    pub id: String,
    pub state: State,
    pub account: String,
    pub vault: PathBuf,
    /// The shared store this overlay links into.
    pub shared: PathBuf,
    /// The process whose life the overlay follows (`--owner-pid`, default the caller).
    pub owner: ProcessStamp,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub codex_version: Option<String>,
    /// When the account was last switched with `swap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swapped_at: Option<DateTime<Utc>>,
}

pub fn path(overlay: &Path) -> PathBuf {
    overlay.join(super::layout::META_FILE)
}

/// Reads the metadata; `Ok(None)` when the file is missing.
pub fn read(overlay: &Path) -> Result<Option<Meta>> {
    crate::jsonfile::read_versioned(&path(overlay), VERSION)
}

pub fn write(overlay: &Path, meta: &Meta) -> Result<()> {
    crate::jsonfile::write(&path(overlay), meta)
}
