//! wren-passwd against the real thing:
//!
//! - side by side with mosquitto_passwd 2.0, the same arguments must give the same
//!   exit code and the same messages;
//! - the mosquitto broker, given a password file written by wren-passwd, must accept
//!   mosquitto_pub with the right password and refuse a wrong one;
//! - mosquitto_passwd can edit a file wren-passwd wrote, and wren reads the result.
//!
//! A missing mosquitto fails the test with a message saying what to install.

use std::path::{Path, PathBuf};
use std::process::Output;

use wren::auth::{HashKind, PasswordFile};

mod common;
use common::mosquitto::Mosquitto;
use common::process;

const WREN_PASSWD: &str = env!("CARGO_BIN_EXE_wren-passwd");

/// Runs `program` in `dir` with `input` on stdin (see [`process::run`]).
fn run_in(dir: &Path, program: &str, args: &[&str], input: &[u8]) -> Output {
    process::run(
        program,
        args,
        Some(dir),
        input,
        "mosquitto_passwd, mosquitto_pub and the broker come with the Debian packages \
         `mosquitto` and `mosquitto-clients`",
    )
}

fn wren_passwd(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    run_in(dir, WREN_PASSWD, args, input)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed with {:?}: {}",
        output.status.code(),
        text(&output.stderr)
    );
}

#[test]
fn batch_mode_creates_updates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_success(
        &wren_passwd(d, &["-c", "-b", "pw", "alice", "a1"], b""),
        "-c -b",
    );
    assert_success(
        &wren_passwd(d, &["-b", "pw", "bob", "b1"], b""),
        "-b new user",
    );
    assert_success(
        &wren_passwd(d, &["-b", "pw", "alice", "a2"], b""),
        "-b update",
    );

    let file = PasswordFile::load(d.join("pw")).unwrap();
    assert_eq!(file.users().collect::<Vec<_>>(), ["alice", "bob"]);
    assert!(file.verify("alice", b"a2"));
    assert!(!file.verify("alice", b"a1"));
    assert!(file.verify("bob", b"b1"));
    let hash = file.hash("bob").unwrap();
    assert_eq!(hash.kind(), HashKind::Pbkdf2Sha512);
    assert!(hash.as_str().starts_with("$7$101$"), "{hash}");

    assert_success(&wren_passwd(d, &["-D", "pw", "alice"], b""), "-D");
    let file = PasswordFile::load(d.join("pw")).unwrap();
    assert_eq!(file.users().collect::<Vec<_>>(), ["bob"]);

    // -c overwrites.
    assert_success(
        &wren_passwd(d, &["-c", "-b", "pw", "carol", "c"], b""),
        "-c again",
    );
    let file = PasswordFile::load(d.join("pw")).unwrap();
    assert_eq!(file.users().collect::<Vec<_>>(), ["carol"]);
}

#[cfg(unix)]
#[test]
fn a_new_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    assert_success(
        &wren_passwd(dir.path(), &["-c", "-b", "pw", "u", "p"], b""),
        "-c -b",
    );
    let mode = std::fs::metadata(dir.path().join("pw"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[cfg(unix)]
#[test]
fn an_edit_keeps_the_files_mode_and_owner() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pw");
    assert_success(
        &wren_passwd(dir.path(), &["-c", "-b", "pw", "u", "p"], b""),
        "-c -b",
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Root hands the file to the broker's user (here "nobody"); others cannot, and
    // then only the mode is checked.
    let handed_over = std::os::unix::fs::chown(&path, Some(65534), Some(65534)).is_ok();

    assert_success(&wren_passwd(dir.path(), &["-b", "pw", "v", "q"], b""), "-b");
    let metadata = std::fs::metadata(&path).unwrap();
    assert_eq!(metadata.permissions().mode() & 0o777, 0o640);
    if handed_over {
        assert_eq!((metadata.uid(), metadata.gid()), (65534, 65534));
    }
    assert!(PasswordFile::load(&path).unwrap().verify("v", b"q"));
}

#[test]
fn the_password_is_read_twice_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let output = wren_passwd(dir.path(), &["-c", "pw", "dora"], b"explorer\nexplorer\n");
    assert_success(&output, "prompted -c");
    assert_eq!(text(&output.stdout), "Password: \nReenter password: \n");
    let file = PasswordFile::load(dir.path().join("pw")).unwrap();
    assert!(file.verify("dora", b"explorer"));
}

#[test]
fn the_upgrade_hashes_plain_lines_and_keeps_hashed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_success(
        &wren_passwd(d, &["-c", "-b", "pw", "hashed", "h"], b""),
        "-c -b",
    );
    let hashed_line = std::fs::read_to_string(d.join("pw")).unwrap();
    std::fs::write(
        d.join("pw"),
        format!("# users\nplain:p w\n\n{hashed_line}colon:a:b\n"),
    )
    .unwrap();

    assert_success(&wren_passwd(d, &["-U", "pw"], b""), "-U");
    let after = std::fs::read_to_string(d.join("pw")).unwrap();
    assert!(after.starts_with("# users\nplain:$7$101$"), "{after}");
    assert!(
        after.contains(&hashed_line),
        "hashed line changed:\n{after}"
    );
    let file = PasswordFile::load(d.join("pw")).unwrap();
    assert!(file.verify("plain", b"p w"));
    assert!(file.verify("hashed", b"h"));
    assert!(file.verify("colon", b"a:b"));

    // A second upgrade changes nothing.
    assert_success(&wren_passwd(d, &["-U", "pw"], b""), "-U again");
    assert_eq!(std::fs::read_to_string(d.join("pw")).unwrap(), after);
}

#[test]
fn help_and_version_print_on_stdout_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let help = wren_passwd(dir.path(), &["--help"], b"");
    assert_eq!(help.status.code(), Some(1));
    let help_text = text(&help.stdout);
    assert!(help_text.contains("Usage: wren-passwd"), "{help_text}");
    assert!(help_text.contains(" -U : "), "{help_text}");

    let version = wren_passwd(dir.path(), &["--version"], b"");
    assert_eq!(version.status.code(), Some(1));
    assert_eq!(
        text(&version.stdout),
        format!(
            "wren-passwd version {} (wren-mqtt).\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Runs the same command with mosquitto_passwd and wren-passwd, each in a copy of
/// the same starting directory, and compares what a script would see.
fn same_as_mosquitto(setup: &[(&str, &str)], args: &[&str], input: &[u8]) {
    let mosquitto_dir = tempfile::tempdir().unwrap();
    let wren_dir = tempfile::tempdir().unwrap();
    for dir in [mosquitto_dir.path(), wren_dir.path()] {
        for (name, contents) in setup {
            std::fs::write(dir.join(name), contents).unwrap();
        }
    }
    let theirs = run_in(mosquitto_dir.path(), "mosquitto_passwd", args, input);
    let ours = wren_passwd(wren_dir.path(), args, input);
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "exit code of {args:?}; mosquitto_passwd said {:?}, wren-passwd {:?}",
        text(&theirs.stderr),
        text(&ours.stderr)
    );
    assert_eq!(
        text(&ours.stderr),
        text(&theirs.stderr),
        "stderr of {args:?}"
    );
    let usage = text(&theirs.stdout).contains("Usage:");
    if usage {
        assert!(text(&ours.stdout).contains("Usage:"), "usage of {args:?}");
    } else {
        assert_eq!(
            text(&ours.stdout),
            text(&theirs.stdout),
            "stdout of {args:?}"
        );
    }
}

#[test]
fn argument_errors_match_mosquitto_passwd() {
    for args in [
        &["-c", "-D", "pw", "u"][..],
        &["-c", "-U", "pw"],
        &["-D", "-U", "pw"],
        &["-b", "-D", "pw", "u"],
        &["-U"],
        &["-U", "pw", "extra"],
        &["-c", "pw"],
        &["-c", "-b", "pw", "u"],
        &["-D", "pw"],
        &["-H"],
        &["-I"],
        &["-H", "md5", "-b", "pw", "u", "p"],
        &["-I", "0", "-b", "pw", "u", "p"],
        &["-I", "many", "-b", "pw", "u", "p"],
        &[],
        &["pw"],
        &["-b", "pw", "u"],
        &["-b", "pw", "u", "p", "extra"],
        &["-x", "pw", "u"],
    ] {
        same_as_mosquitto(&[], args, b"");
    }
}

#[test]
fn file_and_user_errors_match_mosquitto_passwd() {
    let existing = [("pw", "")];
    same_as_mosquitto(&[], &["-b", "missing", "u", "p"], b"");
    same_as_mosquitto(&[], &["-D", "missing", "u"], b"");
    same_as_mosquitto(&[], &["-U", "missing"], b"");
    same_as_mosquitto(&existing, &["-b", "pw", "a:b", "p"], b"");
    same_as_mosquitto(&existing, &["-D", "pw", "nobody"], b"");
}

#[test]
fn prompt_outcomes_match_mosquitto_passwd() {
    let existing = [("pw", "")];
    // Success, mismatch (exit 2), empty password, end of input before the second.
    same_as_mosquitto(&existing, &["pw", "u"], b"same\nsame\n");
    same_as_mosquitto(&existing, &["pw", "u"], b"one\ntwo\n");
    same_as_mosquitto(&existing, &["pw", "u"], b"\n\n");
    same_as_mosquitto(&existing, &["pw", "u"], b"one\n");
    same_as_mosquitto(&[], &["-c", "pw", "u"], b"same\nsame\n");
}

#[test]
fn batch_successes_match_mosquitto_passwd() {
    same_as_mosquitto(&[], &["-c", "-b", "pw", "u", "p"], b"");
    same_as_mosquitto(&[("pw", "")], &["-b", "pw", "u", ""], b"");
    same_as_mosquitto(
        &[],
        &["-H", "sha512-pbkdf2", "-I", "7", "-c", "-b", "pw", "u", "p"],
        b"",
    );
}

#[test]
fn mosquitto_passwd_edits_a_file_written_by_wren_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_success(
        &wren_passwd(d, &["-c", "-b", "pw", "wren", "w"], b""),
        "-c -b",
    );
    assert_success(&wren_passwd(d, &["-b", "pw", "gone", "g"], b""), "-b");
    assert_success(
        &run_in(d, "mosquitto_passwd", &["-b", "pw", "mosq", "m"], b""),
        "mosquitto_passwd -b",
    );
    assert_success(
        &run_in(d, "mosquitto_passwd", &["-D", "pw", "gone"], b""),
        "mosquitto_passwd -D",
    );
    let file = PasswordFile::load(d.join("pw")).unwrap();
    assert_eq!(file.users().collect::<Vec<_>>(), ["wren", "mosq"]);
    assert!(file.verify("wren", b"w"));
    assert!(file.verify("mosq", b"m"));
}

/// mosquitto with `password_file` and anonymous access off.
fn start_broker(password_file: &Path) -> Mosquitto {
    Mosquitto::with_config(
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            password_file.display()
        ),
        &[],
    )
}

/// mosquitto_pub's exit code and stderr for one QoS 1 publish.
fn publish(broker: &Mosquitto, user: &str, password: &str) -> (Option<i32>, String) {
    common::mosquitto::publish_as(broker.port(), user, password, "wren/test", "hello")
}

fn password_file_by_wren(dir: &Path) -> PathBuf {
    assert_success(
        &wren_passwd(dir, &["-c", "-b", "pw", "alice", "correct horse"], b""),
        "-c -b",
    );
    assert_success(&wren_passwd(dir, &["-b", "pw", "bob", "pä:ss"], b""), "-b");
    assert_success(
        &wren_passwd(dir, &["pw", "carol"], b"battery staple\nbattery staple\n"),
        "prompted",
    );
    dir.join("pw")
}

#[test]
fn mosquitto_accepts_right_passwords_from_a_wren_passwd_file() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = password_file_by_wren(dir.path());
    let broker = start_broker(&password_file);
    for (user, password) in [
        ("alice", "correct horse"),
        ("bob", "pä:ss"),
        ("carol", "battery staple"),
    ] {
        let (code, stderr) = publish(&broker, user, password);
        assert_eq!(code, Some(0), "{user}: {stderr}");
    }
}

#[test]
fn mosquitto_refuses_wrong_passwords_from_a_wren_passwd_file() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = password_file_by_wren(dir.path());
    let broker = start_broker(&password_file);
    for (user, password) in [
        ("alice", "correct horse "),
        ("alice", "battery staple"),
        ("bob", "pä"),
        ("carol", ""),
        ("dave", "correct horse"),
    ] {
        let (code, stderr) = publish(&broker, user, password);
        // 5: CONNACK "not authorised", which mosquitto 2.0 sends for bad passwords.
        assert_eq!(code, Some(5), "{user}/{password:?}: {stderr}");
        assert!(stderr.contains("not authorised"), "{stderr}");
    }
}
