//! Processes: who is alive, who uses what.

// ---------------------------------------------------------------------------------------------
// Process liveness (hs-overlay).
//
// A pid alone does not say whether a process is still the one we saw: pids are reused. A
// [`ProcessStamp`] adds the start time from `/proc/<pid>/stat` (field 22, clock ticks since boot)
// and the kernel's boot id, so a reused pid, or the same pid after a reboot, reads as "gone".
// ---------------------------------------------------------------------------------------------

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A process as it was when we looked at it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProcessStamp {
    pub pid: u32,
    /// `/proc/<pid>/stat` field 22 (start time in clock ticks since boot); `None` without /proc.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id` when the stamp was taken; `None` without /proc.
    #[serde(default)]
    pub boot_id: Option<String>,
}

/// What `/proc/<pid>/stat` says about a process: its state letter, parent and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatInfo {
    pub state: char,
    pub ppid: u32,
    pub start_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may
/// itself contain spaces and `)`, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<StatInfo> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), fields[1] field 4 (ppid); field 22 (starttime) is fields[19].
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some(StatInfo { state, ppid, start_ticks })
}

/// `/proc/<pid>/stat` of a running process; `None` when there is no such process (or no /proc).
pub fn stat(pid: u32) -> Option<StatInfo> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().as_deref().and_then(parse_stat)
}

/// The kernel's boot id (changes at every boot); `None` without /proc.
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

fn has_proc() -> bool {
    Path::new("/proc/self/stat").exists()
}

/// Signal 0: does a process with this pid exist (ours or not)?
fn pid_exists(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}

/// Takes the stamp of a running process; an error when `pid` is not running.
pub fn stamp(pid: u32) -> Result<ProcessStamp> {
    if has_proc() {
        match stat(pid) {
            Some(s) if !matches!(s.state, 'Z' | 'X' | 'x') => {
                Ok(ProcessStamp { pid, start_ticks: Some(s.start_ticks), boot_id: boot_id() })
            }
            _ => bail!("process {pid} is not running"),
        }
    } else if pid_exists(pid) {
        Ok(ProcessStamp { pid, start_ticks: None, boot_id: None })
    } else {
        bail!("process {pid} is not running")
    }
}

/// True while the process of `stamp` still runs: same pid, same start time, same boot, and not
/// a zombie.
pub fn is_alive(stamp: &ProcessStamp) -> bool {
    if !has_proc() {
        return pid_exists(stamp.pid);
    }
    let Some(now) = stat(stamp.pid) else { return false };
    if matches!(now.state, 'Z' | 'X' | 'x') {
        return false;
    }
    if stamp.start_ticks.is_some_and(|t| t != now.start_ticks) {
        return false;
    }
    match (&stamp.boot_id, boot_id()) {
        (Some(then), Some(now)) => *then == now,
        _ => true,
    }
}

/// Pids (other than `except`) whose environment has `key=value`, read from `/proc/<pid>/environ`
/// (only our own user's processes are readable; others are skipped). Empty without /proc.
pub fn pids_with_env(key: &str, value: &[u8], except: &[u32]) -> Vec<u32> {
    let mut needle = key.as_bytes().to_vec();
    needle.push(b'=');
    needle.extend_from_slice(value);
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let environ = |pid: u32| std::fs::read(format!("/proc/{pid}/environ"));
    let has = |env: &[u8]| env.split(|b| *b == 0).any(|kv| kv == needle.as_slice());
    let mut out = Vec::new();
    // An empty environment is a kernel thread, a zombie, or a process in the middle of exec
    // (its new environment is not set up yet): the last kind is looked at again below.
    let mut unsure = Vec::new();
    for pid in dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        if except.contains(&pid) {
            continue;
        }
        match environ(pid) {
            Ok(env) if has(&env) => out.push(pid),
            Ok(env) if env.is_empty() && stat(pid).is_some_and(|s| pid != 2 && s.ppid != 2 && !matches!(s.state, 'Z' | 'X' | 'x')) => {
                unsure.push(pid)
            }
            _ => {}
        }
    }
    // (an exec under load may take a while: up to four looks, 5 ms apart; a process whose
    // environment really is empty costs those 20 ms)
    for _ in 0..4 {
        if unsure.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        unsure.retain(|&pid| match environ(pid) {
            Ok(env) if env.is_empty() => true,
            Ok(env) => {
                if has(&env) {
                    out.push(pid);
                }
                false
            }
            Err(_) => false,
        });
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod liveness_tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "4242 (we ird) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(StatInfo { state: 'S', ppid: 1, start_ticks: 987654 }));
        assert_eq!(parse_stat("12 (short) R 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = stamp(std::process::id()).unwrap();
        assert!(is_alive(&me));
        let reused = ProcessStamp { start_ticks: me.start_ticks.map(|t| t + 1), ..me.clone() };
        assert!(!is_alive(&reused));
        let other_boot = ProcessStamp { boot_id: Some("not-this-boot".into()), ..me };
        assert!(!is_alive(&other_boot));
    }

    #[test]
    fn finished_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let st = stamp(pid);
        child.wait().unwrap();
        if let Ok(st) = st {
            assert!(!is_alive(&st));
        }
        assert!(stamp(pid).is_err());
    }

    #[test]
    fn finds_env_of_a_child() {
        use std::io::BufRead;
        // The child prints a line once it runs with its own environment (after exec).
        let mut child = std::process::Command::new("sh")
            .args(["-c", "echo ready; exec sleep 30"])
            .env("HS_PROCS_TEST_MARK", "m-123")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        let found = pids_with_env("HS_PROCS_TEST_MARK", b"m-123", &[]);
        let excluded = pids_with_env("HS_PROCS_TEST_MARK", b"m-123", &[child.id()]);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(found, vec![child.id()]);
        assert!(excluded.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Process tree and open files (hs-run): the npm `codex` launcher may run the native binary as a
// child, so the process holding the session's rollout open can be a descendant of the one
// hs-run started. On systems without /proc these find nothing and hs-run falls back to the
// newest rollout file.
// ---------------------------------------------------------------------------------------------

/// `pid` and all its descendants, parents before children. Just `[pid]` without `/proc`.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(p) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = parent_pid(p) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c.iter().copied().filter(|c| !out.contains(c)).collect::<Vec<_>>());
        }
        i += 1;
    }
    out
}

/// The parent of `pid`, from `/proc/<pid>/stat`.
pub fn parent_pid(pid: u32) -> Option<u32> {
    stat(pid).map(|s| s.ppid)
}

/// The files `pid` has open (targets of `/proc/<pid>/fd/*` that are paths).
pub fn open_files(pid: u32) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.is_absolute())
        .collect()
}

/// The files `pid` has open for writing (`/proc/<pid>/fdinfo/<fd>` flags not `O_RDONLY`).
pub fn files_open_for_writing(pid: u32) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.flatten()
        .filter(|e| {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy()));
            info.ok()
                .and_then(|i| i.lines().find_map(|l| l.strip_prefix("flags:").map(|f| f.trim().to_string())))
                .and_then(|f| u32::from_str_radix(&f, 8).ok())
                .is_some_and(|flags| flags & libc::O_ACCMODE as u32 != libc::O_RDONLY as u32)
        })
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter(|p| p.is_absolute())
        .collect()
}

/// The first file open in `pid` or one of its descendants that `want` accepts; with
/// `writing`, only files open for writing (codex also reads old rollouts, e.g. to fork one).
pub fn find_open_file(pid: u32, writing: bool, want: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    let list = if writing { files_open_for_writing } else { open_files };
    process_tree(pid).into_iter().flat_map(list).find(|p| want(p))
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn finds_a_file_open_in_a_grandchild() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("held.txt");
        std::fs::write(&f, "x").unwrap();
        // sh (child) runs a sleep (grandchild) whose stdin is the file.
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("sleep 30 < '{}'; :", f.display()))
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut found = None;
        for _ in 0..200 {
            found = find_open_file(pid, false, |p| p.file_name().is_some_and(|n| n == "held.txt"));
            if found.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let tree = process_tree(pid);
        let writable = find_open_file(pid, true, |p| p.file_name().is_some_and(|n| n == "held.txt"));
        let grandparent = tree.get(1).and_then(|p| parent_pid(*p));
        let _ = child.kill();
        let _ = child.wait();
        for p in &tree[1..] {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p as i32), nix::sys::signal::SIGKILL);
        }
        assert_eq!(found.as_deref(), Some(f.canonicalize().unwrap().as_path()));
        assert!(tree.len() >= 2, "{tree:?}");
        // it is open for reading only
        assert_eq!(writable, None);
        assert_eq!(grandparent, Some(pid));
    }
}
