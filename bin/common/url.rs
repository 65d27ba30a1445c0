//! The `-L` / `--url` argument: `mqtt://[user[:password]@]host[:port][/topic]`.
//!
//! mosquitto requires the `/topic` part; hbmqtt's `--url` has none and takes the
//! topic from `-t`. wren accepts both: a URL without a path leaves the topic to `-t`
//! (and the tool complains, in mosquitto's words, if none comes). The user and
//! password are taken as written, without percent-decoding, as mosquitto does.
//!
//! `mqtts://` is MQTT over TLS (port 8883). hbmqtt's WebSocket URLs, `ws://` (port
//! 80) and `wss://` (port 443), are accepted too; their path is the HTTP path of
//! the WebSocket, not a topic.

use wren::transport::Kind;

/// The parts of a broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// How to connect.
    pub scheme: Kind,
    /// Host name or address.
    pub host: String,
    /// The port written in the URL, or the scheme's default (1883, 8883).
    pub port: u16,
    /// Text before `:` in the user part.
    pub username: Option<String>,
    /// Text after `:` in the user part.
    pub password: Option<String>,
    /// For `mqtt` and `mqtts`, the path after the first `/`, if the URL has one
    /// (it may be empty).
    pub topic: Option<String>,
    /// For `ws` and `wss`, the HTTP path, with its leading `/`, if not empty.
    pub websocket_path: Option<String>,
}

/// Why a URL was not accepted; the text is mosquitto's where mosquitto has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// Not `mqtt://`, `mqtts://`, `ws://` or `wss://`.
    UnsupportedScheme,
    /// The text after `:` is not a port number.
    BadPort(String),
    /// Nothing between `//` and the port or path.
    MissingHost,
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UrlError::UnsupportedScheme => f.write_str("unsupported URL scheme."),
            UrlError::BadPort(port) => write!(f, "Invalid port in URL: '{port}'."),
            UrlError::MissingHost => f.write_str("Invalid URL, the host is missing."),
        }
    }
}

/// Splits `url` into its parts.
pub fn parse(url: &str) -> Result<BrokerUrl, UrlError> {
    // Only the four schemes mosquitto and hbmqtt write, not the library's aliases
    // (`tcp://`, `ssl://`, ...).
    let (scheme, rest) = [Kind::Tcp, Kind::Tls, Kind::WebSocket, Kind::SecureWebSocket]
        .into_iter()
        .find_map(|scheme| {
            strip_prefix_ignore_case(url, &format!("{}://", scheme.scheme()))
                .map(|rest| (scheme, rest))
        })
        .ok_or(UrlError::UnsupportedScheme)?;

    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let (topic, websocket_path) = if scheme.is_websocket() {
        (
            None,
            path.filter(|p| !p.is_empty()).map(|p| format!("/{p}")),
        )
    } else {
        (path.map(str::to_owned), None)
    };
    // mosquitto splits at the first '@' and then at the first ':' of the user part.
    let (username, password, host_port) = match authority.split_once('@') {
        Some((user, host_port)) => match user.split_once(':') {
            Some((user, password)) => (Some(user), Some(password), host_port),
            None => (Some(user), None, host_port),
        },
        None => (None, None, authority),
    };
    let default_port = scheme.default_port();
    // An IPv6 address is written in brackets: mqtt://[::1]:1883/t.
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(UrlError::MissingHost)?;
        match after.strip_prefix(':') {
            Some(port) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| UrlError::BadPort(port.to_owned()))?,
            ),
            None => (host, default_port),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| UrlError::BadPort(port.to_owned()))?,
            ),
            None => (host_port, default_port),
        }
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    Ok(BrokerUrl {
        scheme,
        host: host.to_owned(),
        port,
        username: username.map(str::to_owned),
        password: password.map(str::to_owned),
        topic,
        websocket_path,
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
                scheme: Kind::Tcp,
                host: "broker.example".into(),
                port: 1884,
                username: Some("ann".into()),
                password: Some("s3cret".into()),
                topic: Some("a/b".into()),
                websocket_path: None,
            }
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_chooses_the_default_port() {
        assert_eq!(parse("MQTT://h/t").unwrap().port, 1883);
        let tls = parse("mqtts://h/t").unwrap();
        assert_eq!((tls.scheme, tls.port), (Kind::Tls, 8883));
        assert_eq!(parse("ws://h").unwrap().port, 80);
        assert_eq!(parse("wss://h").unwrap().port, 443);
    }

    #[test]
    fn a_url_without_a_path_has_no_topic() {
        assert_eq!(parse("mqtt://h:1").unwrap().topic, None);
        assert_eq!(parse("mqtt://h/").unwrap().topic, Some(String::new()));
    }

    #[test]
    fn a_websocket_path_is_not_a_topic() {
        let url = parse("ws://h:8080/mqtt").unwrap();
        assert_eq!(
            (url.topic, url.websocket_path.as_deref()),
            (None, Some("/mqtt"))
        );
        assert_eq!(parse("wss://h/").unwrap().websocket_path, None);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let url = parse("mqtt://[::1]:1999/t").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 1999));
        assert_eq!(parse("mqtt://[::1]/t").unwrap().port, 1883);
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
        assert_eq!(parse("mqtt://h:x/t"), Err(UrlError::BadPort("x".into())));
        assert_eq!(parse("mqtt://:1883/t"), Err(UrlError::MissingHost));
    }
}
