//! The threads of one bridge.
//!
//! ```text
//!  bridge thread:  connect (with backoff) -> carry in, watch the connection
//!  out thread:     inline session -> client.send_nowait -> (message, Pending)
//!  ack thread:     waits for each Pending in order, then acknowledges locally
//! ```
//!
//! The out thread never waits for the remote's acknowledgement itself, so up to the
//! client's inflight window of messages are on their way at once; the ack thread
//! takes them in the order they were sent, which is the order the local broker
//! sent them, and acknowledges each one only once the remote has.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::state::Notifier;
use super::topics::TopicMap;
use super::{Bridge, BridgeStatus, Error};
use crate::broker::{Broker, InlineSession};
use crate::client::{self, Client, ClientOptions, ClientTls, Pending, Reconnect, Will};
use crate::config::BridgeConfig;
use crate::protocol::{Properties, ProtocolVersion, Publish, QoS, TopicFilter, TopicName};

/// How often the threads look up from waiting: to notice a stop, and the
/// client's connection coming and going.
const TICK: Duration = Duration::from_secs(1);

/// How long a call to the remote waits before the bridge looks up (a publish
/// waiting for room in the inflight window while the remote is away).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// How many ticks between two looks at the counters for `$SYS` (which are
/// published only if they changed).
const COUNTERS_EVERY: u32 = 5;

/// Messages sent to the remote and waiting for their acknowledgement, beyond the
/// client's own inflight window (QoS 0 ones, which have none to wait for).
const ACK_QUEUE: usize = 1024;

/// What the threads of one bridge share.
struct Context {
    name: String,
    options: ClientOptions,
    topics: TopicMap,
    session: InlineSession,
    status: Arc<BridgeStatus>,
    notifier: Notifier,
    /// Disconnects (never receives) when the bridge is to stop.
    stopped: Receiver<()>,
    /// Where the bridge says "0" on the remote, and its will does.
    remote_state_topic: Option<String>,
    v5: bool,
}

impl Context {
    /// What waits in the local session for the remote, if the broker says.
    fn queued(&self) -> Option<usize> {
        let (queued, inflight) = self.session.held().ok()?;
        Some(queued + inflight)
    }

    fn stop_requested(&self) -> bool {
        self.stopped.try_recv() == Err(TryRecvError::Disconnected)
    }

    /// Waits `delay`, or less if the bridge is stopped; whether it was.
    fn sleep(&self, delay: Duration) -> bool {
        matches!(
            self.stopped.recv_timeout(delay),
            Err(RecvTimeoutError::Disconnected) | Ok(())
        )
    }
}

pub(super) fn start(broker: &Broker, config: &BridgeConfig) -> Result<Bridge, Error> {
    let name = config.name.clone();
    let options = client_options(config).map_err(|source| Error::Options {
        name: name.clone(),
        source,
    })?;
    let topics = TopicMap::new(config.topics.clone());
    // The out direction's queue: a persistent session that outlives the bridge.
    let local_id = format!("local.{}", config.client_id);
    let session = broker
        .inline_session(&local_id, true, topics.local_filters())
        .map_err(|source| Error::Broker {
            name: name.clone(),
            source,
        })?;
    forget_old_filters(&name, &session, &topics);
    for (filter, code) in topics.local_filters().iter().zip(session.granted()) {
        if code.0 >= 0x80 {
            log::error!(
                "Bridge {name}: this broker refused the subscription to '{}' ({code}); \
                 nothing on it goes out.",
                filter.filter
            );
        }
    }
    let status = Arc::new(BridgeStatus::new(&name, &config.url));
    let report: Arc<dyn crate::broker::BridgeReport> = status.clone();
    broker.show_bridge(&report);
    let notifier = Notifier::new(config, broker.publisher(), status.clone());
    notifier.connection_changed(false, session.held().ok().map(|(q, i)| q + i));
    let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
    let context = Context {
        name: name.clone(),
        options,
        topics,
        session,
        status: status.clone(),
        notifier,
        stopped,
        remote_state_topic: config
            .notifications
            .then(|| config.notification_topic.clone()),
        v5: config.protocol == ProtocolVersion::V5,
    };
    let thread = thread::Builder::new()
        .name(format!("wren-bridge-{name}"))
        .spawn(move || run(Arc::new(context)))
        .map_err(|source| Error::Thread {
            name: name.clone(),
            source,
        })?;
    log::info!(
        "Bridge {name} to {} started (local session {local_id}).",
        config.url
    );
    Ok(Bridge {
        name,
        status,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Unsubscribes the local session from filters an earlier configuration of the
/// bridge had and this one has not: its session is persistent, so they would
/// stay.
fn forget_old_filters(name: &str, session: &InlineSession, topics: &TopicMap) {
    let wanted: Vec<TopicFilter> = topics
        .local_filters()
        .into_iter()
        .map(|entry| entry.filter)
        .collect();
    let old: Vec<TopicFilter> = match session.subscriptions() {
        Ok(filters) => filters
            .into_iter()
            .filter(|f| !wanted.contains(f))
            .collect(),
        Err(error) => {
            log::warn!("Bridge {name}: cannot list its local subscriptions ({error}).");
            return;
        }
    };
    for filter in &old {
        log::info!("Bridge {name}: no longer carrying '{filter}' out.");
    }
    if let Err(error) = session.unsubscribe(old) {
        log::warn!("Bridge {name}: cannot unsubscribe its old filters ({error}).");
    }
}

/// The client's settings from the bridge's.
fn client_options(config: &BridgeConfig) -> Result<ClientOptions, client::Error> {
    let v5 = config.protocol == ProtocolVersion::V5;
    let mut options = ClientOptions::from_url(&config.url)?
        .with_client_id(config.client_id.clone())
        .with_clean_session(config.clean_session)
        .with_keep_alive(config.keep_alive)
        .with_protocol(config.protocol)
        .with_operation_timeout(OPERATION_TIMEOUT)
        .with_reconnect(Reconnect {
            enabled: true,
            max_interval: config.reconnect_max_interval,
            retries: None,
        })
        .with_tls(ClientTls {
            ca_file: config.cafile.clone(),
            client_cert: config.client_cert.clone(),
            insecure: config.insecure,
            ..ClientTls::default()
        })
        // MQTT 5 bridges use No Local instead.
        .with_bridge(config.try_private && !v5);
    if let Some(username) = &config.username {
        options = options.with_username(username.clone());
    }
    if let Some(password) = &config.password {
        options = options.with_password(password.clone().into_bytes());
    }
    if v5 && !config.clean_session {
        // The remote keeps the session as long as a 3.1.1 one would be.
        options = options.with_session_expiry(Duration::from_secs(u64::from(u32::MAX)));
    }
    if config.notifications {
        options = options.with_will(Will::new(
            config.notification_topic.clone(),
            "0",
            QoS::AtLeastOnce,
            true,
        ));
    }
    Ok(options)
}

/// The bridge thread: connects, then carries messages until stopped.
fn run(context: Arc<Context>) {
    let Some(client) = connect(&context) else {
        return;
    };
    let (acks, pending) = crossbeam_channel::bounded(ACK_QUEUE);
    let out = {
        let (context, client) = (context.clone(), client.clone());
        thread::Builder::new()
            .name(format!("wren-bridge-{}-out", context.name))
            .spawn(move || carry_out(&context, &client, acks))
    };
    let acknowledging = {
        let context = context.clone();
        thread::Builder::new()
            .name(format!("wren-bridge-{}-ack", context.name))
            .spawn(move || acknowledge(&context, pending))
    };
    let subscription = carry_in(&context, &client);
    for thread in [out, acknowledging] {
        match thread {
            Ok(thread) => {
                let _ = thread.join();
            }
            Err(error) => log::error!("Bridge {}: cannot start a thread: {error}", context.name),
        }
    }
    // A clean stop: the remote is told, and its session keeps the subscriptions
    // (DISCONNECT goes before the subscription is dropped, so it is not
    // unsubscribed).
    if let Some(topic) = &context.remote_state_topic {
        if let Ok(pending) = client.publish_nowait(topic, "0", QoS::AtLeastOnce, true) {
            let _ = pending.wait_for(TICK);
        }
    }
    let _ = client.disconnect();
    drop(subscription);
    context
        .status
        .connected
        .store(false, std::sync::atomic::Ordering::Relaxed);
    context.notifier.connection_changed(false, context.queued());
    log::info!("Bridge {} stopped.", context.name);
}

/// Connects to the remote, backing off between attempts; `None` if stopped first.
fn connect(context: &Context) -> Option<Client> {
    let mut delay = Duration::from_millis(250);
    let max = context.options.reconnect().max_interval;
    let mut attempts = 0u32;
    loop {
        if context.stop_requested() {
            return None;
        }
        match Client::connect(context.options.clone()) {
            Ok(client) => {
                log::info!(
                    "Bridge {} connected to {}.",
                    context.name,
                    context.options.address()
                );
                return Some(client);
            }
            Err(error) => {
                attempts += 1;
                // The first failure and then one in ten: a remote down for a day
                // does not fill the log.
                if attempts == 1 || attempts % 10 == 0 {
                    log::warn!(
                        "Bridge {}: cannot connect to {} ({error}); trying again (attempt {attempts}).",
                        context.name,
                        context.options.address()
                    );
                }
            }
        }
        // What waits for the remote meanwhile shows in `$SYS`.
        context.notifier.counters(context.queued());
        if context.sleep(delay) {
            return None;
        }
        delay = (delay * 2).min(max);
    }
}

/// The out direction: local messages to the remote, without waiting for the
/// remote's acknowledgements (the ack thread does).
fn carry_out(context: &Context, client: &Client, acks: Sender<(Publish, Pending)>) {
    while !context.stop_requested() {
        let message = match context.session.recv_timeout(TICK) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(_) => return, // the broker has stopped
        };
        let Some((topic, _)) = context.topics.outward(&message.topic) else {
            // Matched a subscription of an older configuration of this bridge.
            context.session.acknowledge(&message);
            continue;
        };
        let outgoing = client::Publish::new(topic, message.payload.clone())
            .qos(message.qos)
            .retain(message.retain)
            .with_properties(message.properties().clone());
        loop {
            match client.send_nowait(outgoing.clone()) {
                Ok(pending) => {
                    if acks.send((message, pending)).is_err() {
                        return;
                    }
                    break;
                }
                // The inflight window is full: the remote is away or slow. The
                // message stays ours until there is room.
                Err(client::Error::Timeout(_)) => {
                    if context.stop_requested() {
                        return;
                    }
                }
                Err(client::Error::Closed) => return,
                Err(client::Error::Disconnected(_)) if message.qos == QoS::AtMostOnce => {
                    BridgeStatus::count(&context.status.dropped);
                    break;
                }
                Err(error) => {
                    // The remote or the client refuses this message (too large, a
                    // topic it will not take): waiting would block all others.
                    drop_message(context, &message, "cannot pass it on", &error);
                    break;
                }
            }
        }
    }
}

/// Acknowledges to the local broker, in order, what the remote acknowledged.
fn acknowledge(context: &Context, pending: Receiver<(Publish, Pending)>) {
    while let Ok((message, answer)) = pending.recv() {
        let outcome = loop {
            match answer.wait_for(TICK) {
                Some(outcome) => break outcome,
                None if context.stop_requested() => return,
                None => {}
            }
        };
        match outcome {
            Ok(()) => {
                context.session.acknowledge(&message);
                BridgeStatus::count(&context.status.sent);
            }
            // The client is gone: the message stays unacknowledged here and is
            // sent again when the session is next opened.
            Err(client::Error::Closed) => return,
            Err(error) => drop_message(context, &message, "the remote refused it", &error),
        }
    }
}

/// Gives up on a message neither waiting nor sending again can pass on: logged,
/// counted, and acknowledged here so that it does not block the ones behind it.
fn drop_message(context: &Context, message: &Publish, why: &str, error: &client::Error) {
    log::warn!(
        "Bridge {}: a message on '{}' is dropped: {why} ({error}).",
        context.name,
        message.topic
    );
    BridgeStatus::count(&context.status.dropped);
    context.session.acknowledge(message);
}

/// The in direction, on the bridge thread: subscribes on the remote and publishes
/// what comes here; also watches the connection for the state notifications.
/// Returns the subscription, to be dropped only after DISCONNECT.
fn carry_in(context: &Context, client: &Client) -> Option<client::Subscription> {
    let mut filters = context.topics.remote_filters();
    if !context.v5 {
        // Options a 3.1.1 SUBSCRIBE cannot carry: try_private does their work.
        for filter in &mut filters {
            filter.no_local = false;
            filter.retain_as_published = false;
        }
    }
    let mut subscription: Option<client::Subscription> = None;
    let mut connected = false;
    let mut ticks = 0u32;
    while !context.stop_requested() {
        let now = client.is_connected();
        if now != connected {
            connected = now;
            context
                .status
                .connected
                .store(now, std::sync::atomic::Ordering::Relaxed);
            context.notifier.connection_changed(now, context.queued());
            if now {
                if let Some(topic) = &context.remote_state_topic {
                    // Not waited for: the will says "0" if this never arrives.
                    let _ = client.publish_nowait(topic, "1", QoS::AtLeastOnce, true);
                }
            } else {
                log::warn!("Bridge {} lost its connection; reconnecting.", context.name);
            }
        }
        if subscription.is_none() && !filters.is_empty() {
            match client.subscribe_with(filters.clone(), Properties::new()) {
                Ok(made) => {
                    for (filter, code) in filters.iter().zip(made.reason_codes()) {
                        if code.0 >= 0x80 {
                            log::error!(
                                "Bridge {}: the remote refused the subscription to '{}' \
                                 ({code}); nothing on it comes in.",
                                context.name,
                                filter.filter
                            );
                        }
                    }
                    subscription = Some(made);
                }
                Err(client::Error::Closed) => return None,
                Err(error) => {
                    log::warn!(
                        "Bridge {}: cannot subscribe on the remote ({error}); trying again.",
                        context.name
                    );
                    if context.sleep(TICK) {
                        return None;
                    }
                    continue;
                }
            }
        }
        match &subscription {
            Some(made) => match made.recv_timeout(TICK) {
                Ok(Some(message)) => {
                    if !pass_in(context, message) {
                        return subscription; // the broker has stopped
                    }
                }
                Ok(None) => {}
                Err(_) => return subscription, // the client has stopped for good
            },
            None => {
                if context.sleep(TICK) {
                    break;
                }
            }
        }
        ticks = ticks.wrapping_add(1);
        if ticks % COUNTERS_EVERY == 0 {
            context.notifier.counters(context.queued());
        }
    }
    subscription
}

/// Publishes a message of the remote here, as the bridge's session (so that its
/// out subscriptions, with No Local, do not send it back). `false` once the
/// broker has stopped.
fn pass_in(context: &Context, message: client::Message) -> bool {
    let Some((topic, _)) = context.topics.inward(message.topic()) else {
        return true; // a message of another subscription of this client id
    };
    let Ok(topic) = TopicName::new(topic) else {
        BridgeStatus::count(&context.status.dropped);
        return true;
    };
    let mut publish = Publish::new(
        topic,
        message.payload().clone(),
        message.qos(),
        message.retain(),
    );
    let mut properties = message.properties().clone();
    properties.subscription_identifiers.clear();
    properties.topic_alias = None;
    if !properties.is_empty() {
        publish.properties = Some(Box::new(properties));
    }
    match context.session.publish(publish) {
        Ok(()) => {
            BridgeStatus::count(&context.status.received);
            true
        }
        Err(error) => {
            log::warn!(
                "Bridge {}: cannot publish here ({error}); dropped.",
                context.name
            );
            BridgeStatus::count(&context.status.dropped);
            false
        }
    }
}
