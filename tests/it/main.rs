//! The one integration-test binary. Every test runs the built executables in a sealed
//! environment (see `support::env`).

mod support;

mod detect;
mod fault;
mod fuzz;
mod harness;
mod overlay;
mod recover;
mod review;
mod rotate;
mod run;
mod shell;
mod vault;
