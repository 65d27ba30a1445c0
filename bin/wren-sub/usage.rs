//! `wren-sub --help` and `--version`.

/// The version line, shaped like mosquitto_sub's.
pub fn version() -> String {
    let v = env!("CARGO_PKG_VERSION");
    format!("wren-sub version {v} running on wren-mqtt {v}.\n")
}

/// The help text: what the tool does, the synopsis, then one line per option.
pub fn usage() -> String {
    format!(
        "wren-sub subscribes to MQTT topics and prints every message that arrives.\n{}\n{}",
        version(),
        TEXT
    )
}

const TEXT: &str = "\
Usage: wren-sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                [--retain-as-published]
                [-F format]
                [-W timeout_secs]
                [--nodelay]
                [-i id] [-I id_prefix]
                [-d] [-N] [--quiet] [-v]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [--cafile file [--cert file --key file] [--insecure] [--tls-version version]]
                [--tls-use-os-certs] [--config file]
                [-V protocol-version] [-D command property value]
       wren-sub --help

 -c : keep the session: the broker remembers the subscriptions and queues QoS 1/2
      messages while the client is away. Needs -i.
 -C : disconnect and exit after this many messages (also -n and --count).
 -d : print each MQTT packet sent and received.
 -D : an MQTT 5 property: -D command property value, or for a user property
      -D command user-property name value (also --property). The command is
      connect, publish, subscribe, unsubscribe, disconnect or will; the property
      is named as in mosquitto (content-type, message-expiry-interval,
      receive-maximum, ...). Turns MQTT 5 on.
 -E : exit as soon as the broker has acknowledged the subscriptions.
 -F : print each message with this template (see below).
 -h : broker host. Defaults to localhost.
 -i : client id. Defaults to a random wren-… id (MQTT 5: the broker assigns one).
 -I : client id prefix; the process id is appended to it.
 -k : keep-alive interval in seconds, 5 to 65535. Defaults to 60.
 -L : broker and topic as a URL: mqtt(s)://[username[:password]@]host[:port][/topic]
      (also --url; without /topic, give -t). --url also takes ws:// and wss://
      (WebSocket; the path is the HTTP path, /mqtt by default).
 -M : most QoS 1/2 messages in flight at once. Defaults to 20.
 -N : print no newline after each message.
 -p : broker port. Defaults to 1883, or 8883 with TLS. Port 8883 turns TLS on.
 -P : password.
 -q : QoS to subscribe with, 0, 1 or 2. Defaults to 0.
 -R : do not print retained (stale) messages; in MQTT 5 the broker is asked not to
      send them (retain handling 2).
 -t : topic filter to subscribe to; may be repeated.
 -T : topic filter whose messages are not printed; may be repeated.
 -u : username.
 -U : topic filter to unsubscribe from after subscribing; may be repeated.
 -v : print the topic before each payload.
 -V : MQTT version: mqttv5 (or 5), mqttv311 (or 311, the default) or mqttv31
      (or 31).
 -W : stop after this many seconds (exit code 27).
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
 --pretty : indent the JSON of %j and %J.
 --quiet : print no error messages once running.
 --random-filter : print only this percentage of the messages, at random.
 --tls-use-os-certs : use TLS, trusting the system's certificate authorities.
 --tls-version : oldest TLS version to accept: tlsv1.2 (default), tlsv1.1, tlsv1.
 --retain-as-published : MQTT 5: keep the retain flag of messages as published.
 --retained-only : print only retained messages; exit at the first live one.
 --remove-retained : clear every retained message received (use -T to spare some).
 --version : print the version.
 --will-payload : payload of the will, which the broker publishes if the
                  connection is lost. Defaults to empty.
 --will-qos : QoS of the will.
 --will-retain : retain the will.
 --will-topic : topic of the will.

-F template: text with
 %t topic    %p payload   %l payload length   %q QoS   %r retained (0/1)
 %m message id   %x %X payload in hex   %I ISO 8601 time   %U Unix time
 %j JSON with the payload as a string   %J JSON with the payload as JSON
 MQTT 5 properties: %A topic alias   %C content type   %D correlation data
 %E message expiry interval   %F payload format indicator   %P user properties
 (name:value name:value)   %R response topic   %S subscription identifier
 %% a %   @X strftime's %X (@H, @M, ...)   @N nanoseconds   @@ an @
 \\n \\t \\r \\v \\a \\e \\0 \\\\ escapes; fields take [-][0][width][.precision].

The options are mosquitto_sub's; see https://mosquitto.org/man/mosquitto_sub-1.html
for more on each.
";
