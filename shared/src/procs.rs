//! Processes, from `/proc` (Linux). On other systems these find nothing and callers fall back
//! to other means (e.g. the newest rollout file).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

// ---- process tree and open files (hs-run) ----

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

/// The parent of `pid`, from `/proc/<pid>/stat` (the command name may contain spaces and
/// parentheses, so the fields are read after the last `)`).
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
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
mod tests {
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
