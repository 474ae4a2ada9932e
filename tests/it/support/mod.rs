//! Shared test helpers.
#![allow(dead_code)]

pub mod auth;
pub mod env;
pub mod mock;
pub mod real;
pub mod tui;
