//! The account registry: `$XDG_CONFIG_HOME/codex-hotswap/accounts.json`, owned by hs-vault.
//!
//! ```json
//! {"version": 1, "accounts": [{"name": "acc1", "vault": "/home/me/.codex-acc1"}]}
//! ```
//! The order of `accounts` is the rotation order.

use crate::paths::Paths;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub const VERSION: u64 = 1;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub name: String,
    pub vault: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Account {
    /// The account's one real auth file.
    pub fn auth_file(&self) -> PathBuf {
        self.vault.join("auth.json")
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub version: u64,
    pub accounts: Vec<Account>,
}

/// An account name that is not registered. Callers may downcast to branch on it.
#[derive(Debug)]
pub struct UnknownAccount {
    pub name: String,
    pub known: Vec<String>,
}

impl std::fmt::Display for UnknownAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.known.is_empty() {
            write!(f, "unknown account '{}' (no accounts yet: add one with 'hs-vault add NAME')", self.name)
        } else {
            write!(f, "unknown account '{}' (known: {})", self.name, self.known.join(", "))
        }
    }
}

impl std::error::Error for UnknownAccount {}

impl Registry {
    pub fn empty() -> Registry {
        Registry { version: VERSION, accounts: Vec::new() }
    }

    /// Reads the registry; a missing file is an empty registry.
    pub fn load(paths: &Paths) -> Result<Registry> {
        let reg: Registry = crate::jsonfile::read_versioned(&paths.registry(), VERSION)?.unwrap_or_else(Registry::empty);
        for a in &reg.accounts {
            crate::names::check(&a.name).map_err(|e| anyhow::anyhow!("{}: {e}", paths.registry().display()))?;
        }
        Ok(reg)
    }

    /// Read-modify-write under the registry lock. `f`'s changes are saved only if it succeeds.
    pub fn update<T>(paths: &Paths, f: impl FnOnce(&mut Registry) -> Result<T>) -> Result<T> {
        crate::jsonfile::update_locked(&paths.registry(), || Registry::load(paths), f)
    }

    pub fn names(&self) -> Vec<String> {
        self.accounts.iter().map(|a| a.name.clone()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The account, or an [`UnknownAccount`] error that lists the known ones.
    pub fn find(&self, name: &str) -> Result<&Account> {
        self.get(name).ok_or_else(|| UnknownAccount { name: name.to_string(), known: self.names() }.into())
    }
}
