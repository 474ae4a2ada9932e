//! The one integration-test binary. Every test runs the built executables in a sealed
//! environment (see `support::env`).
//!
//! A test that runs the real codex lives in a module named `real` (or `real_…`): `shell/test`
//! runs those against every codex version in `tests/codex-versions`, and `support::mock::real_codex`
//! refuses to hand the real codex to any other test.

mod support;

mod detect;
mod fault;
mod fuzz;
mod overlay;
mod recover;
mod rotate;
mod run;
mod shell;
mod vault;
mod versions;

// Every test of these runs the real codex: their paths are `real_harness::…`, `real_review::…`.
#[path = "harness.rs"]
mod real_harness;
#[path = "review.rs"]
mod real_review;
