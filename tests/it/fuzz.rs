//! hs-detect's memory stays flat however much it reads (the property tests of the detector
//! itself are in shared/tests/fuzz.rs). `HS_FUZZ_MB` (default 24) sets how much is fed.

use crate::support::env::{repo_root, TestEnv};
use std::io::Write;
use std::process::Stdio;

/// Peak resident memory of a running process, in KiB.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Feeds `hs-detect args` `total` bytes made by `chunk(i)`; returns its peak memory after the
/// first eighth and at the end (KiB). A write returns once hs-detect has taken all but a pipe's
/// worth, so each sample sees what was fed so far.
fn peak_memory(args: &[&str], total: usize, mut chunk: impl FnMut(usize) -> Vec<u8>) -> (u64, u64) {
    let t = TestEnv::new();
    let mut child = t.cmd("hs-detect").args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let (mut fed, mut early, mut i) = (0, None, 0);
    while fed < total {
        let c = chunk(i);
        stdin.write_all(&c).unwrap();
        fed += c.len();
        i += 1;
        if early.is_none() && fed >= total / 8 {
            early = Some(vm_hwm(pid));
        }
    }
    let last = vm_hwm(pid);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "hs-detect failed: {}", String::from_utf8_lossy(&out.stderr));
    (early.unwrap(), last)
}

fn total() -> usize {
    std::env::var("HS_FUZZ_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(24) << 20
}

#[test]
fn hs_detect_memory_stays_flat_on_long_damaged_tui_output() {
    let dir = repo_root().join("tests/fixtures/detect/real");
    let captures: Vec<Vec<u8>> = ["tui-long-answer-30x100.bin", "tui-answer-quotes-limit-30x100.bin", "tui-resume-then-answer-30x100.bin"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    // real sessions with a few bytes damaged in each copy (xorshift, fixed seed)
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let (early, last) = peak_memory(&["--format", "tui", "--size", "30x100"], total(), |i| {
        let mut c = captures[i % captures.len()].clone();
        for _ in 0..8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % c.len();
            c[at] = (x >> 32) as u8;
        }
        c
    });
    assert!(last <= early + 8 * 1024, "peak RSS grew from {early} KiB to {last} KiB");
}

#[test]
fn hs_detect_memory_stays_flat_on_one_endless_line() {
    // text format: one line without an end, then garbage lines
    let (early, last) = peak_memory(&["--format", "text"], total(), |i| {
        if i < 256 {
            vec![b'x'; 64 * 1024]
        } else {
            (0..64 * 1024).map(|k| if k % 997 == 0 { b'\n' } else { (k * 31 % 251) as u8 }).collect()
        }
    });
    assert!(last <= early + 8 * 1024, "peak RSS grew from {early} KiB to {last} KiB");
}
