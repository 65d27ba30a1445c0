//! The `-L` / `--url` argument: `mqtt://[user[:password]@]host[:port][/topic]`.
//!
//! mosquitto requires the `/topic` part; hbmqtt's `--url` has none and takes the
//! topic from `-t`. wren accepts both: a URL without a path leaves the topic to `-t`
//! (and the tool complains, in mosquitto's words, if none comes). The user and
//! password are taken as written, without percent-decoding, as mosquitto does.

/// The parts of a broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// `mqtt` or `mqtts`.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// The port written in the URL, or the scheme's default (1883, 8883).
    pub port: u16,
    /// Text before `:` in the user part.
    pub username: Option<String>,
    /// Text after `:` in the user part.
    pub password: Option<String>,
    /// The path after the first `/`, if the URL has one (it may be empty).
    pub topic: Option<String>,
}

/// Why a URL was not accepted; the text is mosquitto's where mosquitto has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not `mqtt://` or `mqtts://`.
    UnsupportedScheme,
    /// A `ws://` or `wss://` URL (hbmqtt's WebSocket transport).
    WebSocket,
    /// The text after `:` is not a port number.
    BadPort(String),
    /// Nothing between `//` and the port or path.
    MissingHost,
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlError::UnsupportedScheme => f.write_str("unsupported URL scheme."),
            UrlError::WebSocket => {
                f.write_str("WebSocket URLs (ws://, wss://) are not supported yet; use mqtt://.")
            }
            UrlError::BadPort(port) => write!(f, "Invalid port in URL: '{port}'."),
            UrlError::MissingHost => f.write_str("Invalid URL, the host is missing."),
        }
    }
}

/// Splits `url` into its parts.
pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
    let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "mqtt://") {
        (false, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(url, "mqtts://") {
        (true, rest)
    } else if strip_prefix_ignore_case(url, "ws://").is_some()
        || strip_prefix_ignore_case(url, "wss://").is_some()
    {
        return Err(UrlError::WebSocket);
    } else {
        return Err(UrlError::UnsupportedScheme);
    };

    let (authority, topic) = match rest.split_once('/') {
        Some((authority, topic)) => (authority, Some(topic.to_owned())),
        None => (rest, None),
    };
    // mosquitto splits at the first '@' and then at the first ':' of the user part.
    let (username, password, host_port) = match authority.split_once('@') {
        Some((user, host_port)) => match user.split_once(':') {
            Some((user, password)) => (Some(user), Some(password), host_port),
            None => (Some(user), None, host_port),
        },
        None => (None, None, authority),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match host_port.split_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| UrlError::BadPort(port.to_owned()))?,
        ),
        None => (host_port, default_port),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    Ok(BrokerUrl {
        tls,
        host: host.to_owned(),
        port,
        username: username.map(str::to_owned),
        password: password.map(str::to_owned),
        topic,
    })
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_url_gives_every_part() {
        let url = parse("mqtt://ann:s3cret@broker.example:1884/a/b").unwrap();
        assert_eq!(
            url,
            BrokerUrl {
                tls: false,
                host: "broker.example".into(),
                port: 1884,
                username: Some("ann".into()),
                password: Some("s3cret".into()),
                topic: Some("a/b".into()),
            }
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_chooses_the_default_port() {
        assert_eq!(parse("MQTT://h/t").unwrap().port, 1883);
        let tls = parse("mqtts://h/t").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.port, 8883);
    }

    #[test]
    fn a_url_without_a_path_has_no_topic() {
        assert_eq!(parse("mqtt://h:1").unwrap().topic, None);
        assert_eq!(parse("mqtt://h/").unwrap().topic, Some(String::new()));
    }

    #[test]
    fn a_password_may_hold_a_colon_after_the_first() {
        let url = parse("mqtt://u:p:q@h/t").unwrap();
        assert_eq!(url.username.as_deref(), Some("u"));
        assert_eq!(url.password.as_deref(), Some("p:q"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert_eq!(parse("http://h/t"), Err(UrlError::UnsupportedScheme));
        assert_eq!(parse("ws://h/t"), Err(UrlError::WebSocket));
        assert_eq!(parse("mqtt://h:x/t"), Err(UrlError::BadPort("x".into())));
        assert_eq!(parse("mqtt://:1883/t"), Err(UrlError::MissingHost));
    }
}
