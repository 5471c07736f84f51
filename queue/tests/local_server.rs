//! The test harness itself and the client's first contact, against a real server (see
//! `t2v_queue::local_server`; under CI a missing server fails instead of skipping).

use t2v_queue::local_server::LocalServer;
use t2v_queue::{QueueClient, QueueConfig};

#[test]
fn a_server_of_its_own_starts_restarts_on_its_port_and_stops() {
    let Some(mut server) = LocalServer::for_test() else {
        return;
    };
    let port = server.port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    server.restart().unwrap();
    assert_eq!(server.port(), port, "same port after a restart");
    let client = QueueClient::connect(QueueConfig::new(server.url())).unwrap();
    // No worker yet: the client is told so, with what to do.
    let e = client.model("demo").unwrap_err();
    assert!(e.message.contains("is a worker running?"), "{e}");
    assert!(client.records().unwrap().is_empty());
    server.stop();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn an_unreachable_server_and_a_bad_url_are_errors_a_user_can_act_on() {
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = QueueClient::connect(QueueConfig::new(format!("nats://127.0.0.1:{port}")))
        .err()
        .unwrap();
    assert!(e.message.contains("is it running"), "{e}");
    let mut bad_pool = QueueConfig::new("nats://127.0.0.1:1");
    bad_pool.pool = "a.b".into();
    let e = QueueClient::connect(bad_pool).err().unwrap();
    assert!(e.message.contains("pool `a.b` is not valid"), "{e}");
}
