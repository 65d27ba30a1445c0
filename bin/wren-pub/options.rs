//! `wren-pub`'s own options, on top of the shared ones in `common::cli`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use wren::config::ClientConfig;
use wren::protocol::{QoS, TopicName};

use crate::common::cli::{self, ArgError, Args, ConnectArgs, ToolOptions};

/// The largest payload MQTT can carry: the remaining length's limit.
pub const MAX_PAYLOAD: usize = 268_435_455;

/// Where the message (or messages) come from: exactly one of `-m -f -s -l -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-m text`.
    Message(Vec<u8>),
    /// `-f path`: the whole file is one message.
    File(PathBuf),
    /// `-s`: all of stdin is one message.
    Stdin,
    /// `-l`: one message per line of stdin, without its `\n`.
    StdinLines,
    /// `-n`: one empty message.
    Null,
}

/// Everything `wren-pub` was asked to do besides connecting.
#[derive(Debug, Clone, PartialEq)]
pub struct PubOptions {
    /// `-t` (the last one wins) or the topic of `-L`.
    pub topic: Option<TopicName>,
    /// `-m`, `-f`, `-s`, `-l` or `-n`.
    pub source: Option<Source>,
    /// `-r`.
    pub retain: bool,
    /// `--repeat`: how many times to publish (not with `-l`).
    pub repeat: u32,
    /// `--repeat-delay`: the pause after each delivery but the last.
    pub repeat_delay: Duration,
    /// The QoS chosen by a `--config` file for this topic, when `-q` was not given.
    pub qos: Option<QoS>,
    /// The `--config` file's settings, kept until the topic is known.
    config_defaults: Option<ClientConfig>,
}

impl Default for PubOptions {
    fn default() -> PubOptions {
        PubOptions {
            topic: None,
            source: None,
            retain: false,
            repeat: 1,
            repeat_delay: Duration::ZERO,
            qos: None,
            config_defaults: None,
        }
    }
}

impl PubOptions {
    fn check_no_source(&self) -> Result<(), ArgError> {
        match self.source {
            Some(_) => Err(ArgError::spaced(
                "Only one type of message can be sent at once.",
            )),
            None => Ok(()),
        }
    }

    fn set_source(&mut self, source: Source) -> Result<(), ArgError> {
        self.check_no_source()?;
        self.source = Some(source);
        Ok(())
    }
}

impl ToolOptions for PubOptions {
    const NAME: &'static str = "wren-pub";

    fn add_topic(&mut self, topic: String, _option: &str) -> Result<(), ArgError> {
        let name = TopicName::new(topic.clone()).map_err(|_| {
            ArgError::line(format!(
                "Invalid publish topic '{topic}', does it contain '+' or '#'?"
            ))
        })?;
        self.topic = Some(name);
        Ok(())
    }

    fn parse_option(
        &mut self,
        option: &str,
        args: &mut Args,
        _connect: &mut ConnectArgs,
    ) -> Result<bool, ArgError> {
        match option {
            "-m" | "--message" => {
                // mosquitto complains about a second message before a missing one.
                self.check_no_source()?;
                let message = args.bytes("-m", "message")?;
                if message.len() > MAX_PAYLOAD {
                    return Err(ArgError::spaced(format!(
                        "Message length must be less than {MAX_PAYLOAD} bytes."
                    )));
                }
                self.set_source(Source::Message(message))?;
            }
            "-f" | "--file" => {
                self.check_no_source()?;
                let path = args.bytes("-f", "file")?;
                self.set_source(Source::File(PathBuf::from(OsString::from_vec(path))))?;
            }
            "-s" | "--stdin-file" | "--stdin" => self.set_source(Source::Stdin)?,
            "-l" | "--stdin-line" | "--lines" => self.set_source(Source::StdinLines)?,
            "-n" | "--null-message" | "--no-message" => self.set_source(Source::Null)?,
            "-r" | "--retain" => self.retain = true,
            "--repeat" => {
                let value = args.text("--repeat", "count")?;
                self.repeat = cli::parse_int(&value)
                    .filter(|&n| n >= 1)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| ArgError::spaced("--repeat argument must be >0."))?;
            }
            "--repeat-delay" => {
                let value = args.text("--repeat-delay", "time")?;
                self.repeat_delay = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| ArgError::spaced("--repeat-delay argument must be >=0.0."))?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn apply_config(&mut self, config: &ClientConfig) {
        self.config_defaults = Some(config.clone());
    }

    fn has_topic(&self) -> bool {
        self.topic.is_some()
    }

    fn finish(&mut self, connect: &ConnectArgs) -> Result<(), ArgError> {
        // A --config file's `topics:` and `default_*` settings apply where the
        // command line says nothing: `-q` for the QoS, `-r` for the retain flag.
        if let (Some(config), Some(topic)) = (&self.config_defaults, &self.topic) {
            let (qos, retain) = config.publish_defaults(topic.as_str());
            if !connect.qos_given {
                self.qos = Some(qos);
            }
            self.retain |= retain;
        }
        // "Both topic and message must be supplied" comes later, after -f and -s
        // have been read, as in mosquitto.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<PubOptions, String> {
        cli::parse_for_test("wren-pub", args)
    }

    #[test]
    fn the_last_topic_wins() {
        let o = parse(&["-t", "a", "-t", "b", "-m", "x"]).unwrap();
        assert_eq!(o.topic.unwrap().as_str(), "b");
    }

    #[test]
    fn each_message_source_is_read() {
        let source = |args: &[&str]| parse(args).unwrap().source.unwrap();
        assert_eq!(source(&["-m", "hi"]), Source::Message(b"hi".to_vec()));
        assert_eq!(source(&["--message", ""]), Source::Message(Vec::new()));
        assert_eq!(source(&["-f", "/tmp/x"]), Source::File("/tmp/x".into()));
        assert_eq!(source(&["-s"]), Source::Stdin);
        assert_eq!(source(&["-l"]), Source::StdinLines);
        assert_eq!(source(&["-n"]), Source::Null);
        assert_eq!(source(&["--no-message"]), Source::Null);
    }

    #[test]
    fn repeat_options_are_read() {
        let o = parse(&["-n", "--repeat", "3", "--repeat-delay", "0.25", "-r"]).unwrap();
        assert_eq!(o.repeat, 3);
        assert_eq!(o.repeat_delay, Duration::from_millis(250));
        assert!(o.retain);
    }

    #[test]
    fn errors_use_mosquittos_words() {
        let hint = "\nUse 'wren-pub --help' to see usage.\n";
        let cases: &[(&[&str], &str)] = &[
            (
                &["-m", "a", "-n"],
                "Error: Only one type of message can be sent at once.\n\n",
            ),
            (
                &["-l", "-m"],
                "Error: Only one type of message can be sent at once.\n\n",
            ),
            (
                &["-m"],
                "Error: -m argument given but no message specified.\n\n",
            ),
            (
                &["-f"],
                "Error: -f argument given but no file specified.\n\n",
            ),
            (
                &["--repeat", "0"],
                "Error: --repeat argument must be >0.\n\n",
            ),
            (
                &["--repeat-delay", "-1"],
                "Error: --repeat-delay argument must be >=0.0.\n\n",
            ),
            (
                &["-t", "a/+"],
                "Error: Invalid publish topic 'a/+', does it contain '+' or '#'?\n",
            ),
            (&["-v"], "Error: Unknown option '-v'.\n"),
            (&["-C", "1"], "Error: Unknown option '-C'.\n"),
        ];
        for (args, text) in cases {
            assert_eq!(
                parse(args).unwrap_err(),
                format!("{text}{hint}"),
                "for {args:?}"
            );
        }
    }
}
