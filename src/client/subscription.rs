//! [`Subscription`] and [`Messages`]: where received messages come out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use super::worker::Control;
use super::{Error, Message};
use crate::protocol::{PacketId, QoS, ReasonCode, TopicFilter};

/// The receiving end shared by [`Subscription`] and [`Messages`].
#[derive(Debug)]
struct Inbox {
    id: u64,
    messages: Receiver<Message>,
    stalled: Arc<AtomicBool>,
    control: Sender<Control>,
}

impl Inbox {
    /// Tells the connection thread there is room again, if it found this inbox full.
    fn took_one(&self) {
        if self.stalled.swap(false, Ordering::SeqCst) {
            let _ = self.control.send(Control::Resume);
        }
    }

    fn recv(&self) -> Result<Message, Error> {
        let message = self.messages.recv().map_err(|_| Error::Closed)?;
        self.took_one();
        Ok(message)
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>, Error> {
        match self.messages.recv_timeout(timeout) {
            Ok(message) => {
                self.took_one();
                Ok(Some(message))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Closed),
        }
    }

    fn try_recv(&self) -> Result<Option<Message>, Error> {
        match self.messages.try_recv() {
            Ok(message) => {
                self.took_one();
                Ok(Some(message))
            }
            Err(TryRecvError::Empty) => Ok(None),
            Err(TryRecvError::Disconnected) => Err(Error::Closed),
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Drop(self.id));
    }
}

pub(crate) fn inbox_parts(
    id: u64,
    capacity: usize,
    control: Sender<Control>,
) -> (Sender<Message>, Arc<AtomicBool>, InboxParts) {
    let (sender, messages) = crossbeam_channel::bounded(capacity);
    let stalled = Arc::new(AtomicBool::new(false));
    let parts = InboxParts(Inbox {
        id,
        messages,
        stalled: stalled.clone(),
        control,
    });
    (sender, stalled, parts)
}

/// A receiving end not yet wrapped as a [`Subscription`] or [`Messages`].
#[derive(Debug)]
pub(crate) struct InboxParts(Inbox);

impl InboxParts {
    pub(crate) fn subscription(self, filters: Vec<(TopicFilter, QoS)>) -> Subscription {
        Subscription {
            reason_codes: Vec::new(),
            inbox: self.0,
            filters,
            packet_id: None,
        }
    }

    pub(crate) fn messages(self) -> Messages {
        Messages { inbox: self.0 }
    }
}

/// The messages matching one subscription, made by
/// [`Client::subscribe`](super::Client::subscribe).
///
/// Iterate it, or take messages one at a time; [`Messages`] and the broker's
/// inline [`wren::broker::Subscription`](crate::broker::Subscription) follow the
/// same contract:
///
/// - [`recv`](Self::recv) waits for the next message;
/// - [`recv_timeout`](Self::recv_timeout) waits at most so long, `Ok(None)` if
///   nothing came;
/// - [`try_recv`](Self::try_recv) never waits, `Ok(None)` if nothing is there yet;
/// - [`iter`](Self::iter), `&subscription` and `subscription` iterate, blocking,
///   and end when the subscription is closed.
///
/// Each fails with [`Error::Closed`] only once the subscription is closed: the
/// client is disconnected for good (by [`Client::disconnect`](super::Client::disconnect),
/// or by losing its connection without [`Reconnect`](super::Reconnect)); messages
/// that arrived before that are still handed out first.
///
/// Dropping it unsubscribes, unless another live subscription uses the same filter.
/// A message matching two subscriptions reaches both.
///
/// ```no_run
/// use std::time::Duration;
/// use wren::client::{Client, QoS};
///
/// let client = Client::connect("mqtt://127.0.0.1:1883")?;
/// let subscription = client.subscribe("sensors/+/temperature", QoS::AtLeastOnce)?;
/// assert_eq!(subscription.granted_qos(), QoS::AtLeastOnce);
/// match subscription.recv_timeout(Duration::from_secs(5))? {
///     Some(first) => println!("{}: {}", first.topic(), first.payload_str()?),
///     None => println!("nothing within 5 s"),
/// }
/// # Ok::<(), wren::client::Error>(())
/// ```
#[derive(Debug)]
pub struct Subscription {
    inbox: Inbox,
    filters: Vec<(TopicFilter, QoS)>,
    reason_codes: Vec<ReasonCode>,
    packet_id: Option<PacketId>,
}

impl Subscription {
    /// Waits for the next message; [`Error::Closed`] once the client is
    /// disconnected for good.
    pub fn recv(&self) -> Result<Message, Error> {
        self.inbox.recv()
    }

    /// Waits at most `timeout` for the next message: `Ok(None)` if none came in
    /// time, [`Error::Closed`] once the client is disconnected for good.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>, Error> {
        self.inbox.recv_timeout(timeout)
    }

    /// The next message if one is waiting, `Ok(None)` if not; never blocks.
    /// [`Error::Closed`] once the client is disconnected for good.
    pub fn try_recv(&self) -> Result<Option<Message>, Error> {
        self.inbox.try_recv()
    }

    /// A blocking iterator over the messages, ending when the client is
    /// disconnected for good.
    pub fn iter(&self) -> Iter<'_> {
        Iter { inbox: &self.inbox }
    }

    pub(crate) fn set_granted(
        &mut self,
        packet_id: PacketId,
        filters: Vec<(TopicFilter, QoS)>,
        reason_codes: Vec<ReasonCode>,
    ) {
        self.packet_id = Some(packet_id);
        self.filters = filters;
        self.reason_codes = reason_codes;
    }

    /// The packet identifier of the SUBSCRIBE that made this subscription, as
    /// `mosquitto_sub -d` prints it (`Subscribed (mid: 1): 1`).
    pub fn packet_id(&self) -> Option<PacketId> {
        self.packet_id
    }

    /// The QoS the broker granted (for the first filter, if there are several).
    pub fn granted_qos(&self) -> QoS {
        self.filters
            .first()
            .map_or(QoS::AtMostOnce, |(_, qos)| *qos)
    }

    /// Each filter of this subscription the broker granted, with its QoS.
    pub fn filters(&self) -> &[(TopicFilter, QoS)] {
        &self.filters
    }

    /// The SUBACK's code for each filter asked for, in order: the QoS granted
    /// (0x00 to 0x02) or why the filter was refused (0x80 and up; over MQTT 5
    /// 0x87 not authorized, 0x97 quota exceeded, 0x9E shared subscriptions not
    /// supported ...). Only [`Client::subscribe_with`](super::Client::subscribe_with)
    /// returns a subscription with refused filters.
    pub fn reason_codes(&self) -> &[ReasonCode] {
        &self.reason_codes
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = Message;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Subscription {
    type Item = Message;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { inbox: self.inbox }
    }
}

/// Every message this client receives, whatever subscription brought it, made by
/// [`Client::messages`](super::Client::messages). It subscribes to nothing itself.
///
/// Its methods follow the contract of [`Subscription`]: `recv`, `recv_timeout` and
/// `try_recv` (`Ok(None)` when nothing came), `iter` and `IntoIterator`, all ending
/// with [`Error::Closed`] once the client is disconnected for good.
///
/// ```no_run
/// use wren::client::{Client, QoS};
///
/// let client = Client::connect("mqtt://127.0.0.1:1883")?;
/// let everything = client.messages();
/// client.subscribe_many(&[("a/#", QoS::AtMostOnce), ("b/#", QoS::AtLeastOnce)])?;
/// for message in everything.iter().take(10) {
///     println!("{}", message.topic());
/// }
/// # Ok::<(), wren::client::Error>(())
/// ```
#[derive(Debug)]
pub struct Messages {
    inbox: Inbox,
}

impl Messages {
    /// Waits for the next message; [`Error::Closed`] once the client is
    /// disconnected for good.
    pub fn recv(&self) -> Result<Message, Error> {
        self.inbox.recv()
    }

    /// Waits at most `timeout` for the next message: `Ok(None)` if none came in
    /// time, [`Error::Closed`] once the client is disconnected for good.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Message>, Error> {
        self.inbox.recv_timeout(timeout)
    }

    /// The next message if one is waiting, `Ok(None)` if not; never blocks.
    /// [`Error::Closed`] once the client is disconnected for good.
    pub fn try_recv(&self) -> Result<Option<Message>, Error> {
        self.inbox.try_recv()
    }

    /// A blocking iterator over the messages, ending when the client is
    /// disconnected for good.
    pub fn iter(&self) -> Iter<'_> {
        Iter { inbox: &self.inbox }
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = Message;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Messages {
    type Item = Message;
    type IntoIter = IntoIter;

    fn into_iter(self) -> IntoIter {
        IntoIter { inbox: self.inbox }
    }
}

/// Iterator over the messages of a [`Subscription`] or [`Messages`].
#[derive(Debug)]
pub struct Iter<'a> {
    inbox: &'a Inbox,
}

impl Iterator for Iter<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.inbox.recv().ok()
    }
}

/// Owning iterator over the messages of a [`Subscription`] (it unsubscribes when
/// dropped) or of [`Messages`].
#[derive(Debug)]
pub struct IntoIter {
    inbox: Inbox,
}

impl Iterator for IntoIter {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.inbox.recv().ok()
    }
}
