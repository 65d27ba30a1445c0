//! The `wren-broker` program starts the bridges of its configuration file.

mod bridge_support;
mod common;

use wren::client::Client;
use wren::protocol::QoS;

use bridge_support::{next, subscriber};
use common::wren_broker::WrenBrokerProgram;
use common::WrenBroker;

#[test]
fn wren_broker_starts_the_bridges_of_its_configuration_file() {
    let remote = WrenBroker::start();
    let (_r, at_remote) = subscriber(&remote.url(), "r", "edge/#", QoS::AtLeastOnce);
    let yaml = format!(
        "listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{{port}}\n\
         bridges:\n  cloud:\n    url: {}\n    client-id: edge-1\n    topics:\n\
         \x20     - {{filter: 'edge/#', direction: out, qos: 1}}\n",
        remote.url()
    );
    let program = WrenBrokerProgram::with_yaml(&yaml);
    program
        .lines()
        .until(|line| line.contains("Bridge cloud connected"))
        .expect("the bridge connects");
    let publisher = Client::connect(format!("mqtt://{}", program.address()).as_str()).unwrap();
    publisher
        .publish("edge/temperature", "21", QoS::AtLeastOnce, false)
        .unwrap();
    let message = next(&at_remote);
    assert_eq!(message.topic(), "edge/temperature");
    assert_eq!(message.payload_str().unwrap(), "21");
}
