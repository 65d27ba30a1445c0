//! wren-passwd: manage password files for wren-broker (and mosquitto), with the
//! options, messages and exit codes of mosquitto_passwd 2.0.
//!
//! ```text
//! wren-passwd [-c | -D] passwordfile username         prompts for the password twice
//! wren-passwd [-c] -b passwordfile username password  batch mode
//! wren-passwd -U passwordfile                         hash plain-text passwords
//! ```
//!
//! Exit codes: 0 done, 1 error (arguments, files, unknown user for `-D`), 2 the two
//! passwords typed differ. Passwords are written as PBKDF2-SHA512 (`$7$`), which
//! mosquitto 2.0 and wren-broker read.

use std::ffi::OsString;
use std::io::{self, BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wren::auth::{Error, PasswordFile, PasswordHash, DEFAULT_PBKDF2_ITERATIONS};

const TOOL: &str = "wren-passwd";

fn main() -> ExitCode {
    // Silent unless `RUST_LOG` asks: mosquitto_passwd prints nothing more.
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .try_init();
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Why the tool stops early, and so what it prints and which code it exits with.
enum Failure {
    /// Print the usage on stdout, exit 1 (also `--help`).
    Usage,
    /// `--version`: print the version line on stdout, exit 1, as mosquitto's tools do.
    Version,
    /// `Error: <text>` on stderr, exit 1.
    Error(String),
    /// `Warning: <text>` on stderr, exit 1.
    Warning(String),
    /// The two passwords typed differ: exit 2.
    Mismatch,
}

impl Failure {
    fn report(self) -> ExitCode {
        match self {
            Failure::Usage => {
                print!("{}", usage());
                ExitCode::from(1)
            }
            Failure::Version => {
                println!("{}", version_line());
                ExitCode::from(1)
            }
            Failure::Error(text) => {
                eprintln!("Error: {text}");
                ExitCode::from(1)
            }
            Failure::Warning(text) => {
                eprintln!("Warning: {text}");
                ExitCode::from(1)
            }
            Failure::Mismatch => {
                eprintln!("Error: Passwords do not match.");
                ExitCode::from(2)
            }
        }
    }
}

fn version_line() -> String {
    format!("{TOOL} version {} (wren-mqtt).", env!("CARGO_PKG_VERSION"))
}

fn usage() -> String {
    format!(
        "{TOOL} is a tool for managing password files for wren-broker and mosquitto.
{version}

Usage: {TOOL} [-H sha512-pbkdf2] [-c | -D] passwordfile username
       {TOOL} [-H sha512-pbkdf2] [-c] -b passwordfile username password
       {TOOL} -U passwordfile
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Only sha512-pbkdf2 (the default) is written.
 -U : update a plain text password file to use hashed passwords.
      Lines already hashed are left as they are.

See https://mosquitto.org/man/mosquitto_passwd-1.html for the file format.
",
        version = version_line()
    )
}

/// What the command line asks for.
enum Action {
    Set {
        create: bool,
        file: PathBuf,
        user: String,
        /// Given with `-b`; otherwise prompted for.
        password: Option<String>,
    },
    Delete {
        file: PathBuf,
        user: String,
    },
    Upgrade {
        file: PathBuf,
    },
}

fn run(args: Vec<OsString>) -> Result<(), Failure> {
    let (action, iterations) = parse_args(args)?;
    match action {
        Action::Set {
            create,
            file,
            user,
            password,
        } => {
            check_user(&user)?;
            let mut passwords = if create {
                PasswordFile::new()
            } else {
                load(&file)?
            };
            let password = match password {
                Some(password) => password,
                None => prompt_twice()?,
            };
            let hash = PasswordHash::generate_with_iterations(password.as_bytes(), iterations)
                .map_err(|e| Failure::Error(e.to_string()))?;
            passwords
                .insert(&user, hash)
                .map_err(|e| Failure::Error(e.to_string()))?;
            save(&passwords, &file)
        }
        Action::Delete { file, user } => {
            let mut passwords = load(&file)?;
            if !passwords.remove(&user) {
                return Err(Failure::Warning(format!(
                    "User {user} not found in password file."
                )));
            }
            save(&passwords, &file)
        }
        Action::Upgrade { file } => {
            let (passwords, _hashed) =
                PasswordFile::load_hashing_plaintext(&file).map_err(|e| open_failure(&file, e))?;
            save(&passwords, &file)
        }
    }
}

/// Reads options the way mosquitto_passwd does: flags first, then exactly the
/// positional arguments the flags call for; anything else prints the usage.
fn parse_args(args: Vec<OsString>) -> Result<(Action, u32), Failure> {
    let mut args = args
        .into_iter()
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| Failure::Error(format!("Argument {arg:?} is not valid UTF-8.")))
        })
        .collect::<Result<Vec<String>, Failure>>()?
        .into_iter()
        .peekable();
    let (mut batch, mut create, mut delete, mut upgrade) = (false, false, false, false);
    let mut iterations = DEFAULT_PBKDF2_ITERATIONS;
    while let Some(arg) = args.peek() {
        match arg.as_str() {
            "-b" => batch = true,
            "-c" => create = true,
            "-D" => delete = true,
            "-U" => upgrade = true,
            "--help" => return Err(Failure::Usage),
            "--version" => return Err(Failure::Version),
            "-H" => {
                args.next();
                match args.peek().map(String::as_str) {
                    Some("sha512-pbkdf2") => {}
                    Some("sha512") => {
                        return Err(Failure::Error(
                            "wren-passwd writes only sha512-pbkdf2 hashes; \
                             sha512 is read but no longer written."
                                .into(),
                        ))
                    }
                    Some(other) => {
                        return Err(Failure::Error(format!("Unknown hash type '{other}'")))
                    }
                    None => {
                        return Err(Failure::Error(
                            "-H argument given but not enough other arguments.".into(),
                        ))
                    }
                }
            }
            "-I" => {
                args.next();
                iterations = match args.peek().map(|n| n.parse::<u32>()) {
                    Some(Ok(n)) if n >= 1 => n,
                    Some(_) => {
                        return Err(Failure::Error("Number of iterations must be > 0.".into()))
                    }
                    None => {
                        return Err(Failure::Error(
                            "-I argument given but not enough other arguments.".into(),
                        ))
                    }
                };
            }
            _ => break,
        }
        args.next();
    }
    let rest: Vec<String> = args.collect();

    let conflict = |a: &str, b: &str| {
        Err(Failure::Error(format!(
            "{a} and {b} cannot be used together."
        )))
    };
    if create && delete {
        return conflict("-c", "-D");
    }
    if create && upgrade {
        return conflict("-c", "-U");
    }
    if delete && upgrade {
        return conflict("-D", "-U");
    }
    if batch && delete {
        return conflict("-b", "-D");
    }

    let action = match rest.as_slice() {
        [file] if upgrade => Action::Upgrade { file: file.into() },
        _ if upgrade => {
            return Err(Failure::Error(
                "-U argument given but password file missing.".into(),
            ))
        }
        [file, user] if delete => Action::Delete {
            file: file.into(),
            user: user.clone(),
        },
        _ if delete => {
            return Err(Failure::Error(
                "-D argument given but password file or username missing.".into(),
            ))
        }
        [file, user, password] if batch => Action::Set {
            create,
            file: file.into(),
            user: user.clone(),
            password: Some(password.clone()),
        },
        rest if batch && create && rest.len() < 3 => {
            return Err(Failure::Error(
                "-c argument given but password file, username, or password missing.".into(),
            ))
        }
        [file, user] if !batch => Action::Set {
            create,
            file: file.into(),
            user: user.clone(),
            password: None,
        },
        rest if create && rest.len() < 2 => {
            return Err(Failure::Error(
                "-c argument given but password file or username missing.".into(),
            ))
        }
        _ => return Err(Failure::Usage),
    };
    Ok((action, iterations))
}

fn check_user(user: &str) -> Result<(), Failure> {
    if user.contains(':') {
        return Err(Failure::Error(
            "Username must not contain the ':' character.".into(),
        ));
    }
    PasswordFile::check_user_name(user).map_err(|e| Failure::Error(e.to_string()))
}

fn load(file: &Path) -> Result<PasswordFile, Failure> {
    PasswordFile::load(file).map_err(|e| open_failure(file, e))
}

/// mosquitto_passwd's wording for a file that cannot be opened; other errors (a
/// bad line) are shown as the library words them.
fn open_failure(file: &Path, error: Error) -> Failure {
    match error {
        Error::Io { source, .. } => Failure::Error(format!(
            "Unable to open password file {}. {}.",
            file.display(),
            os_message(&source)
        )),
        other => Failure::Error(other.to_string()),
    }
}

fn save(passwords: &PasswordFile, file: &Path) -> Result<(), Failure> {
    passwords.save(file).map_err(|e| match e {
        Error::Io { source, .. } => Failure::Error(format!(
            "Unable to write password file {}. {}.",
            file.display(),
            os_message(&source)
        )),
        other => Failure::Error(other.to_string()),
    })
}

/// The operating system's message without Rust's " (os error N)" suffix, as C's
/// strerror() prints it.
fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// Asks for the password and its confirmation, with echo off on a terminal.
fn prompt_twice() -> Result<String, Failure> {
    let first = prompt("Password: ")?;
    if first.is_empty() {
        return Err(Failure::Error("Empty password.".into()));
    }
    let second = prompt("Reenter password: ")?;
    if second.is_empty() {
        return Err(Failure::Error("Empty password.".into()));
    }
    if first != second {
        return Err(Failure::Mismatch);
    }
    Ok(first)
}

fn prompt(text: &str) -> Result<String, Failure> {
    let read_error =
        |e: io::Error| Failure::Error(format!("Unable to read password: {}.", os_message(&e)));
    let mut stdout = io::stdout();
    // The prompt goes to stdout, as mosquitto_passwd's does.
    let _ = write!(stdout, "{text}");
    let _ = stdout.flush();
    if io::stdin().is_terminal() {
        // Echo is off while typing; the terminal still shows the final newline.
        rpassword::read_password().map_err(read_error)
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(read_error)?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Like mosquitto_passwd, end the prompt's line only when a password came.
        if !line.is_empty() {
            let _ = writeln!(stdout);
        }
        Ok(line.to_owned())
    }
}
