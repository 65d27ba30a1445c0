//! `compare --instructions`: each broker runs under valgrind's callgrind, which
//! counts the instructions it executes, and the table gives instructions per
//! delivered message.
//!
//! Throughput on a shared machine moves by tens of percent from run to run; an
//! instruction count moves by a few percent at most (the batching of writes and
//! acknowledgements varies a little), whatever else the machine is doing.
//! It says how much work a broker does for a message, not how fast it is: it leaves
//! out waiting, system calls' time in the kernel, cache misses and threads working
//! side by side. Counting starts once the broker listens (its start-up is left out)
//! and ends when the scenario has delivered everything.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The broker command, run under callgrind with its counts written to `dir`.
/// Children are followed, so `sh -c '... && exec broker'` counts the broker.
/// `dir` is opened to every user: a broker started as root may go on as another
/// (mosquitto does), and still has to write its counts there.
pub fn wrap(command: &str, dir: &Path) -> Result<String, String> {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("opening {} to the broker: {e}", dir.display()))?;
    Ok(format!(
        "valgrind --tool=callgrind --trace-children=yes --callgrind-out-file={}/callgrind.%p {command}",
        dir.display()
    ))
}

/// Fails, saying what to install, when valgrind's tools are missing.
pub fn check_installed() -> Result<(), String> {
    for tool in ["valgrind", "callgrind_control"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!(
                "--instructions needs {tool} (Debian: apt-get install valgrind)"
            ));
        }
    }
    Ok(())
}

/// Sets the counts of process `pid` back to zero.
pub fn zero(pid: u32) -> Result<(), String> {
    control("-z", pid)
}

/// The instructions process `pid` executed since [`zero`]: has callgrind write its
/// counts to `dir` and reads them back.
pub fn instructions_since_zero(pid: u32, dir: &Path) -> Result<u64, String> {
    control("-d", pid)?;
    // The dumps made by `-d`: callgrind.PID.1, then .2 and on; the last is wanted.
    let prefix = format!("callgrind.{pid}.");
    let last = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let number: u32 = name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
            Some((number, entry.path()))
        })
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| format!("callgrind wrote no counts for process {pid}"))?;
    let text =
        std::fs::read_to_string(&last).map_err(|e| format!("reading {}: {e}", last.display()))?;
    totals(&text).ok_or_else(|| format!("{}: no totals line", last.display()))
}

fn control(option: &str, pid: u32) -> Result<(), String> {
    // callgrind_control reaches the process through vgdb, which cannot reach one
    // that has changed its user: bounded, not a hang.
    const ANSWER_WITHIN: Duration = Duration::from_secs(60);
    let mut child = Command::new("callgrind_control")
        .arg(option)
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!("callgrind_control {option} {pid}: {status}"));
            }
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "callgrind_control {option} {pid} had no answer in {} s: a broker that \
                     changes its user cannot be reached (mosquitto: put `user root` in its \
                     configuration)",
                    ANSWER_WITHIN.as_secs()
                ));
            }
        }
    }
}

/// The instruction count of a callgrind output file: its `totals:` line, or its
/// `summary:` line.
fn totals(text: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|first| first.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_totals_line_gives_the_count() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\
                    summary: 123456\n\nfn=(1) main\n5 10\n\ntotals: 123456\n";
        assert_eq!(totals(dump), Some(123_456));
        assert_eq!(totals("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(totals("events: Ir\n"), None);
    }

    #[test]
    fn the_wrapped_command_follows_children_into_the_directory() {
        let dir = std::env::temp_dir().join(format!("wren-bench-wrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wrapped = wrap("sh -c 'exec broker -p 1'", &dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(mode & 0o777, 0o777);
        assert!(wrapped.starts_with("valgrind --tool=callgrind --trace-children=yes"));
        assert!(wrapped.contains(&format!(
            "--callgrind-out-file={}/callgrind.%p",
            dir.display()
        )));
        assert!(wrapped.ends_with("sh -c 'exec broker -p 1'"));
    }
}
