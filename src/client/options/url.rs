//! Options from a broker URL (`mqtt://user:secret@host:1883`), and what
//! [`Client::connect`](crate::client::Client::connect) accepts in their place.

use bytes::Bytes;
use url::Url;

use super::ClientOptions;
use crate::client::Error;
use crate::protocol::ProtocolVersion;
use crate::transport::Kind;

impl ClientOptions {
    /// Options from a URL: `SCHEME://[user[:password]@]host[:port][/path]`.
    ///
    /// | scheme | transport | default port |
    /// |---|---|---|
    /// | `mqtt` (or `tcp`) | TCP | 1883 |
    /// | `mqtts` (or `ssl`, `tls`) | TLS | 8883 |
    /// | `ws` | WebSocket, path `/mqtt` unless the URL gives one | 80 |
    /// | `wss` | WebSocket over TLS | 443 |
    ///
    /// User name and password may be percent-encoded. TLS trusts the system's
    /// certificate authorities; see [`with_tls`](Self::with_tls) for more.
    ///
    /// The query `?protocol=5` selects MQTT 5, `?protocol=5,3.1.1` MQTT 5 with a
    /// fall back to 3.1.1 for a broker that refuses it
    /// ([`with_protocol_fallback`](Self::with_protocol_fallback)); `3.1.1` (the
    /// default) and `3.1` are accepted too. Any other query is kept in a WebSocket
    /// URL's path and refused elsewhere.
    ///
    /// ```
    /// use wren::client::ClientOptions;
    ///
    /// let options = ClientOptions::from_url("mqtt://[::1]")?;
    /// assert_eq!((options.host(), options.port()), ("::1", 1883));
    /// let secure = ClientOptions::from_url("wss://broker.example/ws")?;
    /// assert_eq!(secure.port(), 443);
    /// let v5 = ClientOptions::from_url("mqtt://localhost?protocol=5")?;
    /// assert_eq!(v5.protocol(), wren::protocol::ProtocolVersion::V5);
    /// # Ok::<(), wren::client::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<ClientOptions, Error> {
        let parsed = Url::parse(url).map_err(|e| Error::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        ClientOptions::from_parsed_url(&parsed)
    }

    fn from_parsed_url(url: &Url) -> Result<ClientOptions, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_owned(),
        };
        let kind = Kind::from_scheme(url.scheme())
            .ok_or_else(|| invalid("the scheme must be mqtt://, mqtts://, ws:// or wss://"))?;
        let host = match url.host() {
            Some(url::Host::Ipv6(address)) => address.to_string(),
            Some(host) => host.to_string(),
            None => return Err(invalid("it names no host")),
        };
        let path = url.path();
        if !kind.is_websocket() && !matches!(path, "" | "/") {
            return Err(invalid("an mqtt:// or mqtts:// URL has no path"));
        }
        let mut protocol = None;
        let mut rest = Vec::new();
        for pair in url
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            match pair.strip_prefix("protocol=") {
                Some(value) => protocol = Some(value),
                None => rest.push(pair),
            }
        }
        if url.fragment().is_some() || (!kind.is_websocket() && !rest.is_empty()) {
            return Err(invalid(
                "a broker URL has no fragment, and no query but ?protocol=5",
            ));
        }
        let mut options = ClientOptions::new(host, url.port().unwrap_or(kind.default_port()));
        options.kind = kind;
        match protocol {
            None | Some("3.1.1" | "311" | "4") => {}
            Some("3.1" | "31" | "3") => options.protocol = ProtocolVersion::V3_1,
            Some("5") => options.protocol = ProtocolVersion::V5,
            Some("5,3.1.1" | "5,311" | "5,4") => options = options.with_protocol_fallback(),
            Some(_) => {
                return Err(invalid(
                    "protocol= takes 5, 3.1.1, 3.1 or 5,3.1.1 (5, falling back to 3.1.1)",
                ))
            }
        }
        if kind.is_websocket() && !matches!(path, "" | "/") {
            options.websocket_path = match rest.is_empty() {
                false => format!("{path}?{}", rest.join("&")),
                true => path.to_owned(),
            };
        }
        if !url.username().is_empty() {
            let username = percent_decode(url.username())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| invalid("the user name is not valid percent-encoded UTF-8"))?;
            options.username = Some(username);
        }
        if let Some(password) = url.password() {
            if options.username.is_none() {
                return Err(invalid("a password needs a user name [MQTT-3.1.2-22]"));
            }
            let password = percent_decode(password)
                .ok_or_else(|| invalid("the password is not valid percent-encoding"))?;
            options.password = Some(Bytes::from(password));
        }
        Ok(options)
    }
}

/// What [`Client::connect`](crate::client::Client::connect) accepts: a URL as text or
/// [`Url`], or [`ClientOptions`].
pub trait IntoClientOptions {
    /// Turns `self` into options.
    fn into_client_options(self) -> Result<ClientOptions, Error>;
}

impl IntoClientOptions for ClientOptions {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        Ok(self)
    }
}

impl IntoClientOptions for &ClientOptions {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        Ok(self.clone())
    }
}

impl IntoClientOptions for &str {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        ClientOptions::from_url(self)
    }
}

impl IntoClientOptions for String {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        ClientOptions::from_url(&self)
    }
}

impl IntoClientOptions for &String {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        ClientOptions::from_url(self)
    }
}

impl IntoClientOptions for Url {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        ClientOptions::from_parsed_url(&self)
    }
}

impl IntoClientOptions for &Url {
    fn into_client_options(self) -> Result<ClientOptions, Error> {
        ClientOptions::from_parsed_url(self)
    }
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    Some(out)
}
