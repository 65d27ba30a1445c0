//! MQTT 5 re-authentication (section 4.12.1): the client sends AUTH 0x19 with its
//! method, answers each AUTH 0x18 challenge with its
//! [`Authenticator`](crate::client::Authenticator), and is done at the broker's
//! AUTH 0x00. A broker that refuses ends the connection with a DISCONNECT, which
//! reaches the caller as its error.

use crossbeam_channel::Sender;

use super::Worker;
use crate::client::connection::answer_challenge;
use crate::client::Error;
use crate::protocol::{Auth, Packet, Properties, ProtocolVersion, ReasonCode};

impl Worker {
    pub(super) fn reauthenticate(&mut self, reply: Sender<Result<(), Error>>) {
        let authenticator = match &self.options.authenticator {
            Some(handle) if self.options.protocol == ProtocolVersion::V5 => handle.0.clone(),
            _ => {
                let _ = reply.send(Err(Error::InvalidOptions(
                    "re-authentication needs MQTT 5 and an authenticator (with_authenticator)"
                        .into(),
                )));
                return;
            }
        };
        if self.reauthenticating.is_some() {
            let _ = reply.send(Err(Error::InvalidOptions(
                "a re-authentication is already under way".into(),
            )));
            return;
        }
        if self.connection.is_none() {
            let _ = reply.send(Err(Error::Disconnected(None)));
            return;
        }
        let mut auth = Auth::new(ReasonCode::RE_AUTHENTICATE);
        auth.properties = Some(Box::new(Properties {
            authentication_method: Some(authenticator.method().to_owned()),
            authentication_data: authenticator.initial_data(),
            ..Properties::new()
        }));
        self.reauthenticating = Some((reply, 0));
        self.send(&Packet::Auth(auth));
    }

    /// An AUTH from the broker: a challenge to answer, or the end of the
    /// exchange. One the client did not ask for breaks the protocol.
    pub(super) fn on_auth(&mut self, auth: Auth) {
        let Some((reply, rounds)) = self.reauthenticating.take() else {
            self.connection_lost(Error::UnexpectedPacket(crate::protocol::PacketType::Auth));
            return;
        };
        match auth.reason_code {
            ReasonCode::SUCCESS => {
                let _ = reply.send(Ok(()));
            }
            ReasonCode::CONTINUE_AUTHENTICATION => {
                match answer_challenge(&self.options, &auth, rounds + 1) {
                    Ok(answer) => {
                        self.reauthenticating = Some((reply, rounds + 1));
                        self.send(&Packet::Auth(answer));
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error.duplicate()));
                        self.connection_lost(error);
                    }
                }
            }
            _ => {
                let error = Error::UnexpectedPacket(crate::protocol::PacketType::Auth);
                let _ = reply.send(Err(error.duplicate()));
                self.connection_lost(error);
            }
        }
    }
}
