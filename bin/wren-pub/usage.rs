//! `wren-pub --help` and `--version`.

/// The version line, shaped like mosquitto_pub's.
pub fn version() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!("wren-pub version {v} running on wren-mqtt {v}.\n")
}

/// The help text: what the tool does, the synopsis, then one line per option.
pub fn usage() -> String {
    format!(
        "wren-pub publishes a message (or one per line of input) on an MQTT topic and exits.\n{}\n{}",
        version(),
        TEXT
    )
}

const TEXT: &str = "\
Usage: wren-pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL}
                {-f file | -l | -n | -m message | -s}
                [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                [--nodelay]
                [-i id] [-I id_prefix]
                [-d] [--quiet]
                [-M max_inflight]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [--cafile file [--cert file --key file] [--insecure] [--tls-version version]]
                [--tls-use-os-certs] [--config file]
                [-V protocol-version] [-D command property value]
       wren-pub --help

 -c : keep the session (do not clean it). Needs -i.
 -d : print each MQTT packet sent and received.
 -D : an MQTT 5 property: -D command property value, or for a user property
      -D command user-property name value (also --property). The command is
      connect, publish, subscribe, unsubscribe, disconnect or will; the property
      is named as in mosquitto (content-type, message-expiry-interval,
      receive-maximum, ...). Turns MQTT 5 on.
 -f : send the whole file as one message.
 -h : broker host. Defaults to localhost.
 -i : client id. Defaults to a random wren-… id (MQTT 5: the broker assigns one).
 -I : client id prefix; the process id is appended to it.
 -k : keep-alive interval in seconds, 5 to 65535. Defaults to 60.
 -L : broker and topic as a URL: mqtt(s)://[username[:password]@]host[:port][/topic]
      (also --url; without /topic, give -t). --url also takes ws:// and wss://
      (WebSocket; the path is the HTTP path, /mqtt by default).
 -l : send one message per line of standard input, without its newline.
 -m : the message to send.
 -M : most QoS 1/2 messages in flight at once. Defaults to 20.
 -n : send an empty message (with -r: clear the retained message).
 -p : broker port. Defaults to 1883, or 8883 with TLS. Port 8883 turns TLS on.
 -P : password.
 -q : QoS of the messages, 0, 1 or 2. Defaults to 0.
 -r : ask the broker to retain the message.
 -s : send all of standard input as one message.
 -t : topic to publish on.
 -u : username.
 -V : MQTT version: mqttv5 (or 5), mqttv311 (or 311, the default) or mqttv31
      (or 31).
 -x : MQTT 5 session expiry interval, seconds after disconnecting: 0 to 4294967294,
      or -1, 4294967295 or ∞ for never. Defaults to never with -c, else 0.
      Ignored in MQTT 3.1.1.
 --config : an hbmqtt client settings file (YAML: broker uri, keep_alive, will,
            default_qos, auto_reconnect, ...); options given here win over it
            (also --config-file).
 --cafile : CA certificates (PEM) to trust; turns TLS on (also --ca-file;
            --ca-data takes the PEM text itself).
 --cert : client certificate (PEM), with --key.
 --key : the client certificate's private key (PEM).
 --help : print this text.
 --insecure : do not check the broker's certificate at all. For tests only.
 --nodelay : send each packet at once (disable Nagle's algorithm); always on.
 --quiet : print no error messages once running.
 --tls-use-os-certs : use TLS, trusting the system's certificate authorities.
 --tls-version : oldest TLS version to accept: tlsv1.2 (default), tlsv1.1, tlsv1.
 --repeat : with -m, -f, -s or -n, publish the message this many times.
 --repeat-delay : with --repeat, wait this many seconds (may be fractional)
                  after each message. Defaults to 0.
 --version : print the version.
 --will-payload : payload of the will, which the broker publishes if the
                  connection is lost. Defaults to empty.
 --will-qos : QoS of the will.
 --will-retain : retain the will.
 --will-topic : topic of the will.

The options are mosquitto_pub's; see https://mosquitto.org/man/mosquitto_pub-1.html
for more on each.
";
