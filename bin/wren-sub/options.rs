//! `wren-sub`'s own options, on top of the shared ones in `common::cli`.

use std::time::Duration;

use wren::config::ClientConfig;
use wren::protocol::TopicFilter;

use crate::common::cli::{self, ArgError, Args, ConnectArgs, ToolOptions};

use crate::output::{Format, Printer};

/// The identifier of the Subscription Identifier property.
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;

/// Everything `wren-sub` was asked to do besides connecting.
#[derive(Debug, Clone)]
pub struct SubOptions {
    /// `-t` (repeatable) and the topic of `-L`.
    pub topics: Vec<TopicFilter>,
    /// `-T`: messages on matching topics are neither printed nor counted.
    pub filter_out: Vec<TopicFilter>,
    /// `-U`: filters to unsubscribe from once subscribed.
    pub unsubscribe: Vec<TopicFilter>,
    /// `-C` (also hbmqtt's `-n` and `--count`): exit after this many messages.
    pub count: Option<u32>,
    /// `-E`: exit once subscribed.
    pub exit_after_subscribe: bool,
    /// `-R`: skip retained messages.
    pub skip_retained: bool,
    /// `--retained-only`: print retained messages; exit at the first live one.
    pub retained_only: bool,
    /// `--remove-retained`: clear each retained message seen.
    pub remove_retained: bool,
    /// `-W`: give up after this long, exit code 27.
    pub timeout: Option<Duration>,
    /// `--random-filter`: share of messages to print, in ten-thousandths (1 to
    /// 10000); `None` prints all.
    pub random_filter: Option<u32>,
    /// `--retain-as-published`: an MQTT 5 subscription option; like mosquitto's
    /// tools, it has no effect on an MQTT 3.1/3.1.1 subscription.
    pub retain_as_published: bool,
    /// `-v`, `-F`, `-N`, `--pretty`.
    pub printer: Printer,
}

impl Default for SubOptions {
    fn default() -> SubOptions {
        SubOptions {
            topics: Vec::new(),
            filter_out: Vec::new(),
            unsubscribe: Vec::new(),
            count: None,
            exit_after_subscribe: false,
            skip_retained: false,
            retained_only: false,
            remove_retained: false,
            timeout: None,
            random_filter: None,
            retain_as_published: false,
            printer: Printer {
                format: None,
                verbose: false,
                end_of_line: true,
                pretty: false,
            },
        }
    }
}

impl ToolOptions for SubOptions {
    const NAME: &'static str = "wren-sub";

    fn add_topic(&mut self, topic: String, _option: &str) -> Result<(), ArgError> {
        self.topics
            .push(topic_filter(&topic, "subscription topic")?);
        Ok(())
    }

    fn parse_option(
        &mut self,
        option: &str,
        args: &mut Args,
        _connect: &mut ConnectArgs,
    ) -> Result<bool, ArgError> {
        match option {
            "-C" | "-n" | "--count" => {
                let value = args.text("-C", "count")?;
                self.count = Some(
                    cli::parse_int(&value)
                        .filter(|&n| n >= 1)
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            ArgError::spaced(format!("Invalid message count \"{value}\"."))
                        })?,
                );
            }
            "-E" => self.exit_after_subscribe = true,
            "-F" => {
                let template = args.text("-F", "format")?;
                self.printer.format = Some(Format::parse(&template).map_err(ArgError::line)?);
            }
            "-N" => self.printer.end_of_line = false,
            "--pretty" => self.printer.pretty = true,
            "-R" => self.skip_retained = true,
            "--random-filter" => {
                let value = args.text("--random-filter", "chance")?;
                // mosquitto keeps the share in ten-thousandths but compares it with
                // a number below 10000 scaled as thousandths, so it prints about a
                // tenth of what was asked. Here the percentage means what it says;
                // like mosquitto, up to 1000 is accepted, and 100 or more prints all.
                let share = value
                    .parse::<f64>()
                    .ok()
                    .map(|percent| (percent * 100.0) as i64)
                    .filter(|&share| (10..=100_000).contains(&share))
                    .ok_or_else(|| {
                        ArgError::spaced("--random-filter chance must be between 0.1-100.0")
                    })?;
                self.random_filter = (share < 10_000).then_some(share as u32);
            }
            "--remove-retained" => self.remove_retained = true,
            "--retained-only" => self.retained_only = true,
            "--retain-as-published" => self.retain_as_published = true,
            "-T" | "--filter-out" => {
                let filter = args.text("-T", "topic filter")?;
                self.filter_out.push(topic_filter(&filter, "filter topic")?);
            }
            "-U" | "--unsubscribe" => {
                let filter = args.text("-U", "unsubscribe topic")?;
                self.unsubscribe
                    .push(topic_filter(&filter, "unsubscribe topic")?);
            }
            "-v" | "--verbose" => self.printer.verbose = true,
            "-W" => {
                let value = args.text("-W", "timeout")?;
                let seconds = cli::parse_int(&value)
                    .filter(|&s| s >= 1)
                    .and_then(|s| u64::try_from(s).ok())
                    .ok_or_else(|| ArgError::spaced(format!("Invalid timeout \"{value}\".")))?;
                self.timeout = Some(Duration::from_secs(seconds));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn apply_config(&mut self, _config: &ClientConfig) {
        // hbmqtt's client settings hold nothing about subscribing or printing.
    }

    fn has_topic(&self) -> bool {
        !self.topics.is_empty()
    }

    fn finish(&mut self, connect: &ConnectArgs) -> Result<(), ArgError> {
        if self.topics.is_empty() {
            return Err(ArgError::line("You must specify a topic to subscribe to."));
        }
        let zero_identifier = |p: &cli::Property| {
            p.id == SUBSCRIPTION_IDENTIFIER && p.value == cli::PropertyValue::Number(0)
        };
        if connect.properties.subscribe.iter().any(zero_identifier) {
            // mosquitto_sub sends it, and the broker closes the connection as
            // MQTT 5 asks (0 is no identifier); wren refuses it up front.
            return Err(ArgError::spaced(
                "subscription-identifier must be between 1 and 268435455; MQTT 5 does not allow 0.",
            ));
        }
        if self.skip_retained && self.retained_only {
            // mosquitto checks this one after the others, and prints it without
            // the usage hint.
            return Err(ArgError::bare(
                "\nError: Combining '-R' and '--retained-only' makes no sense.\n",
            ));
        }
        Ok(())
    }
}

/// Checks a topic filter given for `what`, in mosquitto's words.
fn topic_filter(filter: &str, what: &str) -> Result<TopicFilter, ArgError> {
    TopicFilter::new(filter.to_owned()).map_err(|_| {
        ArgError::line(format!(
            "Invalid {what} '{filter}', are all '+' and '#' wildcards correct?"
        ))
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    fn parse(args: &[&str]) -> Result<SubOptions, String> {
        cli::parse_for_test("wren-sub", args)
    }

    #[test]
    fn topics_and_filters_repeat() {
        let o = parse(&[
            "-t", "a/#", "-t", "b", "-T", "a/x", "-T", "a/y", "-U", "old",
        ])
        .unwrap();
        let names = |v: &[TopicFilter]| v.iter().map(|f| f.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(names(&o.topics), ["a/#", "b"]);
        assert_eq!(names(&o.filter_out), ["a/x", "a/y"]);
        assert_eq!(names(&o.unsubscribe), ["old"]);
    }

    #[test]
    fn output_options_shape_the_printer() {
        let o = parse(&["-t", "a", "-v", "-N", "--pretty", "-F", "%t"]).unwrap();
        assert!(o.printer.verbose && !o.printer.end_of_line && o.printer.pretty);
        assert!(o.printer.format.is_some());
    }

    #[test]
    fn count_has_hbmqtt_spellings() {
        for spelling in ["-C", "-n", "--count"] {
            assert_eq!(parse(&["-t", "a", spelling, "3"]).unwrap().count, Some(3));
        }
    }

    #[test]
    fn random_filter_is_a_percentage() {
        assert_eq!(
            parse(&["-t", "a", "--random-filter", "50"])
                .unwrap()
                .random_filter,
            Some(5000)
        );
        assert_eq!(
            parse(&["-t", "a", "--random-filter", "100"])
                .unwrap()
                .random_filter,
            None
        );
        assert_eq!(
            parse(&["-t", "a", "--random-filter", "0.1"])
                .unwrap()
                .random_filter,
            Some(10)
        );
        assert!(parse(&["-t", "a", "--random-filter", "0.01"]).is_err());
        assert!(parse(&["-t", "a", "--random-filter", "2000"]).is_err());
    }

    #[test]
    fn errors_use_mosquittos_words() {
        let hint = "\nUse 'wren-sub --help' to see usage.\n";
        let cases: &[(&[&str], &str)] = &[
            (&[], "Error: You must specify a topic to subscribe to.\n"),
            (&["-t", "a", "-C", "0"], "Error: Invalid message count \"0\".\n\n"),
            (&["-t", "a", "-W", "0"], "Error: Invalid timeout \"0\".\n\n"),
            (&["-t", "a", "-F", "%z"], "Error: Invalid format specifier 'z'.\n"),
            (
                &["-t", "a/#/b"],
                "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?\n",
            ),
            (
                &["-t", "a", "-T", "a/#/b"],
                "Error: Invalid filter topic 'a/#/b', are all '+' and '#' wildcards correct?\n",
            ),
            (
                &["-t", "a", "-U", "a/#/b"],
                "Error: Invalid unsubscribe topic 'a/#/b', are all '+' and '#' wildcards correct?\n",
            ),
            (&["-t", "a", "-m", "x"], "Error: Unknown option '-m'.\n"),
            (&["-t", "a", "-r"], "Error: Unknown option '-r'.\n"),
            (
                &["-t", "a", "-D", "subscribe", "subscription-identifier", "0"],
                "Error: subscription-identifier must be between 1 and 268435455; MQTT 5 does not allow 0.\n\n",
            ),
        ];
        for (args, text) in cases {
            assert_eq!(
                parse(args).unwrap_err(),
                format!("{text}{hint}"),
                "for {args:?}"
            );
        }
        assert_eq!(
            parse(&["-t", "a", "-R", "--retained-only"]).unwrap_err(),
            "\nError: Combining '-R' and '--retained-only' makes no sense.\n"
        );
    }
}
