//! The library behind the codex-hotswap tools.
//!
//! Binaries parse arguments, build a [`paths::Paths`] from the environment and call in here.
//! This crate never reads environment variables and never prints to stdout on its own.

#[cfg(test)]
mod bad_input_tests;
pub mod auth;
pub mod cli;
pub mod codex;
pub mod codex_versions;
pub mod config;
pub mod detect;
pub mod duration;
pub mod events;
pub mod fsutil;
pub mod jsonfile;
pub mod names;
pub mod overlay;
pub mod paths;
pub mod procs;
pub mod pty;
pub mod registry;
pub mod rotate;
pub mod rollout;
pub mod run;
pub mod status_view;
pub mod term;
pub mod usage;
