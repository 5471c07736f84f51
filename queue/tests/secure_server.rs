//! Credentials files and TLS against a real server started with a configuration file (see
//! `t2v_queue::local_server`; under CI a missing server fails instead of skipping). The private
//! CA, the certificates, the operator, accounts and users are all made here at test time:
//!
//! - TLS: a server certificate for 127.0.0.1 and localhost signed by a private CA. A client and a
//!   worker that trust the CA (`TlsOptions::ca_file`) run a job over `tls://`; one that does not
//!   is refused with an error saying what to check. A server that verifies clients admits the
//!   one with a certificate of the CA and refuses the one without.
//! - Credentials files: a server in operator mode (operator JWT, accounts preloaded with the
//!   `MEMORY` resolver, JetStream enabled for the account). A creds file of a user of that
//!   account runs a job; one of a user of another account, a garbled one and a missing one are
//!   refused with errors naming the credentials or the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use t2v_bridge::{DeviceChoice, ErrorKind, GenerationParams, ModelSpec, Service, ServiceConfig};
use t2v_queue::local_server::LocalServer;
use t2v_queue::{Credentials, QueueClient, QueueConfig, QueueWorker, RemoteRequest};

// ---------------------------------------------------------------- the queue, end to end

fn tiny_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/tests/fixtures/tiny-diffusers")
}

/// A worker and a client with this configuration: the worker registers its model, the client
/// submits a job and receives every frame.
fn a_job_round_trips(config: &QueueConfig) {
    let service = Service::new(ServiceConfig {
        device: DeviceChoice::Cpu,
        use_disk_cache: false,
        ..Default::default()
    })
    .unwrap();
    let models = BTreeMap::from([("tiny".to_string(), ModelSpec::folder(tiny_model()))]);
    let worker = QueueWorker::start(config.clone(), service, models).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let serving = std::thread::spawn(move || worker.serve(&flag));

    let client = QueueClient::connect(config.clone()).unwrap();
    assert_eq!(client.served_models(), ["tiny"]);
    let request = RemoteRequest {
        model_id: "tiny".into(),
        params: GenerationParams {
            prompt: "a red ball behind a locked door".into(),
            width: 64,
            height: 64,
            frames: 5,
            steps: 2,
            seed: 5,
            ..Default::default()
        },
        precision: Default::default(),
        image: None,
        decoder: Default::default(),
    };
    let job = client.submit(&request).unwrap();
    let clip = job
        .wait_timeout(Duration::from_secs(60))
        .expect("the job ends")
        .expect("the worker makes the clip");
    assert_eq!(clip.frames.len(), 5);
    stop.store(true, Ordering::SeqCst);
    serving.join().unwrap().unwrap();
}

/// The error connecting with this configuration (opening the queue's streams and buckets).
fn refused(config: QueueConfig) -> t2v_bridge::Error {
    match QueueClient::connect(config) {
        Ok(_) => panic!("the connection was accepted"),
        Err(e) => e,
    }
}

/// A string as the server's configuration format quotes it.
fn quoted(path: &Path) -> String {
    serde_json::to_string(path.to_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------- TLS

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A private CA, a server certificate for 127.0.0.1 and localhost and a client certificate,
    /// all signed by it, as PEM files.
    fn new() -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();

        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "t2v test studio CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        write("ca.pem", ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, stem: &str| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.distinguished_name.push(DnType::CommonName, stem);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{stem}-cert.pem"), cert.pem());
            write(&format!("{stem}-key.pem"), key.serialize_pem());
        };
        leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "server",
        );
        leaf(
            vec!["artist".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            "client",
        );
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's `tls` block; `verify_clients` asks every client for a certificate of the CA.
    fn server_config(&self, verify_clients: bool) -> String {
        let mut block = format!(
            "tls {{\n  cert_file: {}\n  key_file: {}\n",
            quoted(&self.path("server-cert.pem")),
            quoted(&self.path("server-key.pem"))
        );
        if verify_clients {
            block += &format!(
                "  ca_file: {}\n  verify: true\n",
                quoted(&self.path("ca.pem"))
            );
        }
        block + "  timeout: 5\n}\n"
    }

    /// A queue configuration for `tls://` that trusts the private CA.
    fn client_config(&self, server: &LocalServer) -> QueueConfig {
        let mut config = QueueConfig::new(format!("tls://127.0.0.1:{}", server.port()));
        config.tls.require = true;
        config.tls.ca_file = Some(self.path("ca.pem"));
        config
    }

    fn client_cert(&self) -> Option<(PathBuf, PathBuf)> {
        Some((self.path("client-cert.pem"), self.path("client-key.pem")))
    }
}

#[test]
fn over_tls_with_the_private_ca_a_job_round_trips() {
    let pki = Pki::new();
    let Some(server) = LocalServer::for_test_with_config(&pki.server_config(false)) else {
        return;
    };
    a_job_round_trips(&pki.client_config(&server));

    // `nats://` to the same server: the server asks for TLS and the client upgrades.
    let mut plain_url = pki.client_config(&server);
    plain_url.url = server.url();
    assert!(QueueClient::connect(plain_url).is_ok());
}

#[test]
fn without_the_private_ca_tls_is_refused_with_what_to_check() {
    let pki = Pki::new();
    let Some(server) = LocalServer::for_test_with_config(&pki.server_config(false)) else {
        return;
    };
    // The system's roots do not know the private CA.
    let mut config = pki.client_config(&server);
    config.tls.ca_file = None;
    let e = refused(config);
    eprintln!("without the CA: {e}");
    assert!(e.message.contains("TLS with the queue server"), "{e}");
    assert!(e.message.contains("give the CA file"), "{e}");
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");

    // A CA file without the CA (here: the server's key).
    let mut config = pki.client_config(&server);
    let key = pki.path("server-key.pem");
    config.tls.ca_file = Some(key.clone());
    let e = refused(config);
    eprintln!("a key as the CA: {e}");
    assert!(
        e.message
            .contains(&format!("not signed by the CA in {}", key.display())),
        "{e}"
    );

    // A missing CA file, client certificate or key.
    for missing in ["ca", "cert", "key"] {
        let mut config = pki.client_config(&server);
        config.tls.client_cert = pki.client_cert();
        let file = pki.path("no-such-file.pem");
        match missing {
            "ca" => config.tls.ca_file = Some(file.clone()),
            "cert" => config.tls.client_cert.as_mut().unwrap().0 = file.clone(),
            _ => config.tls.client_cert.as_mut().unwrap().1 = file.clone(),
        }
        let e = refused(config);
        eprintln!("a missing {missing} file: {e}");
        assert!(e.message.contains(&file.display().to_string()), "{e}");
        assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
    }
}

#[test]
fn a_client_that_requires_tls_refuses_a_server_without_it() {
    let Some(server) = LocalServer::for_test() else {
        return;
    };
    let mut config = QueueConfig::new(server.url());
    config.tls.require = true;
    let e = refused(config);
    eprintln!("TLS required, plain server: {e}");
    assert!(e.message.contains("does the server offer TLS"), "{e}");
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
}

#[test]
fn a_server_that_verifies_clients_admits_only_a_certificate_of_its_ca() {
    let pki = Pki::new();
    let Some(server) = LocalServer::for_test_with_config(&pki.server_config(true)) else {
        return;
    };
    let mut with_cert = pki.client_config(&server);
    with_cert.tls.client_cert = pki.client_cert();
    a_job_round_trips(&with_cert);

    let e = refused(pki.client_config(&server));
    eprintln!("no client certificate: {e}");
    assert!(e.message.contains("TLS with the queue server"), "{e}");
    assert!(e.message.contains("give a client certificate"), "{e}");
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");

    // A certificate the server's CA did not sign (self-signed).
    let own = rcgen::generate_simple_self_signed(vec!["artist".to_string()]).unwrap();
    std::fs::write(pki.path("own-cert.pem"), own.cert.pem()).unwrap();
    std::fs::write(pki.path("own-key.pem"), own.signing_key.serialize_pem()).unwrap();
    let mut other = pki.client_config(&server);
    other.tls.client_cert = Some((pki.path("own-cert.pem"), pki.path("own-key.pem")));
    let e = refused(other);
    eprintln!("a client certificate of another CA: {e}");
    assert!(e.message.contains("give a client certificate"), "{e}");
}

// ---------------------------------------------------------------- credentials files

/// base64url without padding, as JWTs are encoded.
fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// A NATS JWT (v2) for `subject`, signed by `issuer`: the `nats` object says what it is.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use sha2::Digest;
    let header = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = serde_json::json!({
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
    });
    // The id is the hash of the other standard claims, as the NATS tools make it.
    let hash = sha2::Sha512_256::digest(claims.to_string().as_bytes());
    claims["jti"] = data_encoding::BASE32_NOPAD.encode(&hash).into();
    claims["nats"] = nats;
    let signed = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let signature = issuer.sign(signed.as_bytes()).unwrap();
    format!("{signed}.{}", b64(&signature))
}

/// An account's JWT; `jetstream` gives it unlimited JetStream storage (without, JetStream is off
/// for it, as the server requires of the system account).
fn account_jwt(
    operator: &nkeys::KeyPair,
    account: &nkeys::KeyPair,
    name: &str,
    jetstream: bool,
) -> String {
    let mut limits = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1,
        "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream {
        for limit in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[limit] = (-1).into();
        }
    }
    let nats = serde_json::json!({"type": "account", "version": 2, "limits": limits});
    jwt(operator, &account.public_key(), name, nats)
}

/// A credentials file, as `nsc generate creds` writes it.
fn creds(account: &nkeys::KeyPair, user: &nkeys::KeyPair, name: &str) -> String {
    let nats = serde_json::json!({
        "type": "user", "version": 2,
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
    });
    let jwt = jwt(account, &user.public_key(), name, nats);
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        user.seed().unwrap()
    )
}

/// An operator with a system account and a studio account (JetStream on), known to the
/// server through the `MEMORY` resolver; users of the studio account get in.
struct Operator {
    dir: tempfile::TempDir,
    studio: nkeys::KeyPair,
    config: String,
}

impl Operator {
    fn new() -> Operator {
        let dir = tempfile::tempdir().unwrap();
        let operator = nkeys::KeyPair::new_operator();
        let system = nkeys::KeyPair::new_account();
        let studio = nkeys::KeyPair::new_account();
        let operator_jwt = jwt(
            &operator,
            &operator.public_key(),
            "t2v-test-operator",
            serde_json::json!({
                "type": "operator", "version": 2, "system_account": system.public_key(),
            }),
        );
        let operator_file = dir.path().join("operator.jwt");
        std::fs::write(&operator_file, operator_jwt).unwrap();
        let config = format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  \
             {}: {}\n  {}: {}\n}}\n",
            quoted(&operator_file),
            system.public_key(),
            system.public_key(),
            serde_json::to_string(&account_jwt(&operator, &system, "SYS", false)).unwrap(),
            studio.public_key(),
            serde_json::to_string(&account_jwt(&operator, &studio, "studio", true)).unwrap(),
        );
        Operator {
            dir,
            studio,
            config,
        }
    }

    /// A credentials file for a new user signed by `account`.
    fn creds_file(&self, account: &nkeys::KeyPair, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.creds"));
        let user = nkeys::KeyPair::new_user();
        std::fs::write(&path, creds(account, &user, name)).unwrap();
        path
    }

    fn queue_config(server: &LocalServer, creds: PathBuf) -> QueueConfig {
        let mut config = QueueConfig::new(server.url());
        config.credentials = Credentials::File(creds);
        config
    }
}

#[test]
fn a_creds_file_of_the_studio_account_runs_a_job() {
    let operator = Operator::new();
    let Some(server) = LocalServer::for_test_with_config(&operator.config) else {
        return;
    };
    let creds = operator.creds_file(&operator.studio, "worker");
    a_job_round_trips(&Operator::queue_config(&server, creds));

    // Without credentials the server in operator mode lets nobody in.
    let e = refused(QueueConfig::new(server.url()));
    eprintln!("no credentials: {e}");
    assert!(e.message.contains("refused these credentials"), "{e}");
    assert!(e.message.contains("the server needs credentials"), "{e}");
}

#[test]
fn a_creds_file_of_another_account_a_garbled_or_a_missing_one_is_refused() {
    let operator = Operator::new();
    let Some(server) = LocalServer::for_test_with_config(&operator.config) else {
        return;
    };
    // A user of an account the operator never signed.
    let stranger = nkeys::KeyPair::new_account();
    let stranger_creds = operator.creds_file(&stranger, "stranger");
    let e = refused(Operator::queue_config(&server, stranger_creds.clone()));
    eprintln!("another account: {e}");
    assert!(e.message.contains("refused these credentials"), "{e}");
    assert!(
        e.message.contains(&format!(
            "check the credentials file {}",
            stranger_creds.display()
        )),
        "{e}"
    );
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");

    // A file that is not a credentials file.
    let garbled = operator.dir.path().join("garbled.creds");
    std::fs::write(
        &garbled,
        "-----BEGIN NATS USER JWT-----\nnot a jwt at all\n",
    )
    .unwrap();
    let e = refused(Operator::queue_config(&server, garbled.clone()));
    eprintln!("garbled: {e}");
    assert!(e.message.contains(&garbled.display().to_string()), "{e}");
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");

    // A good file whose JWT was tampered with (its signature no longer matches).
    let good = operator.creds_file(&operator.studio, "tampered");
    let text = std::fs::read_to_string(&good).unwrap();
    let jwt_line = text.lines().nth(1).unwrap().to_string();
    let mut chars: Vec<char> = jwt_line.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    std::fs::write(&good, text.replace(&jwt_line, &tampered)).unwrap();
    let e = refused(Operator::queue_config(&server, good));
    eprintln!("tampered: {e}");
    assert!(e.message.contains("refused these credentials"), "{e}");

    // A file that is not there.
    let missing = operator.dir.path().join("missing.creds");
    let e = refused(Operator::queue_config(&server, missing.clone()));
    eprintln!("missing: {e}");
    assert!(e.message.contains(&missing.display().to_string()), "{e}");
    assert_eq!(e.kind, ErrorKind::BadInput, "{e}");
}
