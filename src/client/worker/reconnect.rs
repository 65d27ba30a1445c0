//! Losing the connection and getting it back: the backoff between attempts, the
//! retry limit, and what is sent again once the broker answers.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Token, Worker};
use crate::client::connection;
use crate::client::Error;
use crate::protocol::{Properties, SubscribeFilter};

impl Worker {
    pub(super) fn connection_lost(&mut self, reason: Error) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if let Some((reply, _)) = self.reauthenticating.take() {
            let _ = reply.send(Err(reason.duplicate()));
        }
        self.old_readers.retain(|reader| !reader.is_finished());
        self.old_readers.extend(connection.close());
        self.status.connected.store(false, Ordering::SeqCst);
        if self.closing.is_some() {
            return;
        }
        if self.options.reconnect.enabled {
            log::warn!(
                "Client {} lost its connection ({reason}); reconnecting",
                self.client_id
            );
            if self.connected_at.elapsed() >= self.options.reconnect.max_interval {
                self.backoff = 0;
            }
            self.next_attempt = Some(Instant::now() + self.options.reconnect.delay(self.backoff));
            self.backoff = self.backoff.saturating_add(1);
        } else {
            log::warn!("Client {} lost its connection: {reason}", self.client_id);
            self.dead = Some(reason);
        }
    }

    pub(super) fn reconnect(&mut self) {
        self.next_attempt = None;
        match connection::open(&self.options, &self.client_id) {
            Ok(opened) => {
                log::info!(
                    "Client {} reconnected to {} (session present: {})",
                    self.client_id,
                    self.options.address(),
                    opened.session_present
                );
                self.connection = Some(opened.link);
                // What this broker said of the connection: its Receive Maximum and
                // Server Keep Alive.
                self.terms = opened.terms;
                self.state
                    .set_max_inflight(super::inflight_window(&self.options, &self.terms));
                self.state
                    .set_keep_alive(self.options.ping_interval(self.terms.keep_alive));
                self.status.connected.store(true, Ordering::SeqCst);
                self.reconnect_attempt = 0;
                let now = Instant::now();
                self.connected_at = now;
                let resend = self.state.reconnected(opened.session_present, now);
                if !opened.session_present {
                    self.subscribe_again();
                }
                for packet in resend {
                    self.send(&packet);
                }
                self.deliver_pending();
            }
            Err(error) => {
                self.reconnect_attempt += 1;
                let reconnect = self.options.reconnect;
                if reconnect
                    .retries
                    .is_some_and(|retries| self.reconnect_attempt >= retries)
                {
                    log::error!(
                        "Client {} gave up reconnecting after {} attempts: {error}",
                        self.client_id,
                        self.reconnect_attempt
                    );
                    self.dead = Some(error);
                } else {
                    let delay = reconnect.delay(self.backoff);
                    self.backoff = self.backoff.saturating_add(1);
                    log::info!(
                        "Client {}: reconnect attempt {} failed ({error}); next in {delay:?}",
                        self.client_id,
                        self.reconnect_attempt
                    );
                    self.next_attempt = Some(Instant::now() + delay);
                }
            }
        }
    }

    /// Subscribes again to every filter the broker had granted, for a broker that
    /// kept no session: one SUBSCRIBE for the filters subscribed with the same
    /// properties (a subscription identifier must come back the same).
    fn subscribe_again(&mut self) {
        let mut groups: Vec<(Option<Box<Properties>>, Vec<SubscribeFilter>)> = Vec::new();
        for (filter, properties) in self.active.values() {
            match groups.iter_mut().find(|(p, _)| p == properties) {
                Some((_, filters)) => filters.push(filter.clone()),
                None => groups.push((properties.clone(), vec![filter.clone()])),
            }
        }
        for (properties, filters) in groups {
            let token = Token::Subscribe {
                reply: None,
                target: None,
                filters: filters.clone(),
                properties: properties.clone(),
            };
            match self.state.subscribe(filters, properties, token) {
                Ok(packet) => self.send(&packet),
                Err(error) => log::error!("Client {}: {error}", self.client_id),
            }
        }
    }
}
