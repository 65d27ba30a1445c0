//! Errors of the broker.

use std::io;
use std::net::SocketAddr;

use super::store::StorageError;

/// Why a broker could not start.
///
/// Once running, a broker does not fail as a whole: a problem with one client closes
/// that client's connection and is logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener's address could not be bound: it is in use, needs privileges (ports
    /// below 1024), or is not an address of this machine. Change `bind` of that
    /// listener.
    #[error("cannot listen on {addr} (listener '{listener}'): {source}")]
    Bind {
        /// The listener's name in the configuration.
        listener: String,
        /// The address it was asked to bind.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// The configuration has no listener, so no client could ever connect.
    #[error("the configuration has no listener; add one under 'listeners'")]
    NoListeners,
    /// The configuration asks for something the broker has no implementation of:
    /// for instance a password file or ACL checks without a hook that applies them.
    #[error("unsupported configuration: {0}")]
    Config(String),
    /// A listener's TLS certificate or key could not be loaded. Check `certfile` and
    /// `keyfile` of that listener.
    #[error("listener '{listener}': {source}")]
    Transport {
        /// The listener's name in the configuration.
        listener: String,
        /// What went wrong.
        source: crate::transport::Error,
    },
    /// A topic or filter given to [`Broker::publish`](super::Broker::publish) or
    /// [`Broker::subscribe`](super::Broker::subscribe) breaks the rules of MQTT.
    #[error("invalid topic '{topic}': {error}")]
    Topic {
        /// The topic or filter as given.
        topic: String,
        /// Which rule it breaks.
        error: crate::protocol::TopicError,
    },
    /// An inline publish or subscription could not be made: the broker is stopping,
    /// or the subscription was refused.
    #[error("inline publish/subscribe: {0}")]
    Inline(String),
    /// An inline [`Subscription`](super::Subscription) is closed: the broker has
    /// stopped, and no more messages will come.
    #[error("the inline subscription is closed: the broker has stopped")]
    Closed,
    /// A broker thread could not be started (the process is out of threads or
    /// memory).
    #[error("cannot start the broker's {0} thread: {1}")]
    Thread(String, #[source] io::Error),
    /// The store could not be opened or loaded: it is in use by another broker,
    /// corrupt, or unreadable. The message names the file.
    #[error("cannot open the broker's store: {0}")]
    Storage(#[from] StorageError),
}
