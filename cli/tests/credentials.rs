//! Credentials as users write them, each against a server configured for
//! it: an NKey seed (a user made here with the `nkeys` crate), a `.creds`
//! file (operator, account and user JWTs made here) and TLS with a
//! private CA (certificates made here with `openssl`), the server's
//! certificate checked and a wrong CA refused, and a client certificate
//! the server requires. No secret shows in anything the worker prints, at
//! `--log trace`, nor on its `--metrics` page. (A token and a
//! user/password: in `streams.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use common::nats::*;

/// `torvyn run FLOW --idle-timeout 1 --log trace --metrics ADDRESS`: its
/// output, and both streams, which must not contain any of `secrets`; nor
/// may any `--metrics` page scraped while it ran. A run that connects must
/// have served at least one page (else the check saw nothing).
fn run(flow: &Path, secrets: &[&str]) -> (Output, String, String) {
    let address = format!("127.0.0.1:{}", common::free_port());
    // Files, not pipes: at `--log trace` a worker writes more than a pipe
    // holds while nobody reads it until the end.
    let logs = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| std::fs::File::create(logs.path().join(name)).expect("log file");
    let mut child = Command::new(TORVYN)
        .args(["run", "--quiet", "--idle-timeout", "1", "--log", "trace"])
        .args(["--metrics", &address])
        .arg(flow)
        .stdout(file("stdout"))
        .stderr(file("stderr"))
        .spawn()
        .expect("torvyn starts");
    let mut pages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the worker ran for over 60 s");
        if let Some(page) = common::metrics_page(&address) {
            pages.push(page);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = Output {
        status: child.wait().expect("status"),
        stdout: std::fs::read(logs.path().join("stdout")).expect("stdout"),
        stderr: std::fs::read(logs.path().join("stderr")).expect("stderr"),
    };
    let (stdout, stderr) = text(&output);
    for secret in secrets {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret shows in the output:\n{stdout}\n{stderr}"
        );
        for page in &pages {
            assert!(
                !page.contains(secret),
                "a secret shows on the metrics page:\n{page}"
            );
        }
    }
    if output.status.success() {
        assert!(
            pages.iter().any(|page| page.contains("torvyn_connector")),
            "no metrics page was served while the worker ran:\n{stdout}\n{stderr}"
        );
    }
    (output, stdout, stderr)
}

/// IN → uppercase → OUT at `url`, every node with `credentials`.
fn flow(dir: &Path, url: &str, credentials: &str) -> PathBuf {
    nats_flow(
        dir,
        "flow.toml",
        url,
        "bundled:uppercase",
        PROCESSOR,
        &format!(
            "stream = \"IN\"\nsubject = \"in\"\nconsumer = \"work\"\ncreate = true\n{credentials}"
        ),
        &format!("stream = \"OUT\"\nsubject = \"out\"\ncreate = true\n{credentials}"),
    )
}

/// The test's own client (`options` at `url`), the input stream `IN` and
/// five inputs in it.
fn five_inputs(
    options: async_nats::ConnectOptions,
    url: &str,
) -> (tokio::runtime::Runtime, jetstream::Context) {
    let rt = runtime();
    let js = rt
        .block_on(async { jetstream::new(options.connect(url).await.expect("the test connects")) });
    rt.block_on(make_stream(&js, "IN", &["in"]));
    let inputs: Vec<String> = (0..5).map(|i| format!("input {i}")).collect();
    rt.block_on(publish(&js, "in", &inputs));
    (rt, js)
}

#[test]
fn an_nkey_seed_authenticates_and_never_shows() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("a seed");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.conf");
    std::fs::write(
        &config,
        format!(
            "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}\n",
            user.public_key()
        ),
    )
    .unwrap();
    let server = Server::start(&["-c", config.to_str().unwrap()]);
    let (rt, js) = five_inputs(
        async_nats::ConnectOptions::with_nkey(seed.clone()),
        &server.url(),
    );
    std::fs::write(dir.path().join("user.nk"), &seed).unwrap();
    let flow = flow(dir.path(), &server.url(), "nkey_seed_file = \"user.nk\"");
    let (output, stdout, stderr) = run(&flow, &[&seed]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 5, "{stdout}");

    // Another user's seed: refused, naming the URL.
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    std::fs::write(dir.path().join("user.nk"), &stranger).unwrap();
    let (output, stdout, stderr) = run(&flow, &[&seed, &stranger]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {}", server.url())),
        "{stderr}"
    );
}

/// `openssl` in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA `name` (`name.pem`, `name.key`) in `dir`.
fn certificate_authority(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A key `name.key` and a certificate `name.pem` for `subject` with the
/// extension `extension`, signed by the CA `ca` in `dir`.
fn signed_by_ca(dir: &Path, name: &str, subject: &str, extension: &str) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    std::fs::write(dir.join(&ext), format!("{extension}\n")).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

/// A server on TLS with the certificate `server.pem` (signed by `ca` in
/// `at`), requiring client certificates signed by `ca` when
/// `verify_clients`; its `tls://` URL, and the test's client (trusting
/// `ca`, presenting `client.pem` when `verify_clients`) with five inputs.
fn tls_server(
    at: &Path,
    verify_clients: bool,
) -> (Server, String, tokio::runtime::Runtime, jetstream::Context) {
    let path = |name: &str| at.join(name).to_str().unwrap().to_string();
    let mut args = vec![
        "--tlscert".to_string(),
        path("server.pem"),
        "--tlskey".to_string(),
        path("server.key"),
    ];
    if verify_clients {
        args.extend([
            "--tlsverify".to_string(),
            "--tlscacert".to_string(),
            path("ca.pem"),
        ]);
    } else {
        args.push("--tls".to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&args);
    let url = format!("tls://127.0.0.1:{}", server.port);
    let mut options = async_nats::ConnectOptions::new()
        .add_root_certificates(at.join("ca.pem"))
        .require_tls(true);
    if verify_clients {
        options = options.add_client_certificate(at.join("client.pem"), at.join("client.key"));
    }
    let (rt, js) = five_inputs(options, &url);
    (server, url, rt, js)
}

#[test]
fn tls_with_a_private_ca_checks_the_server_and_refuses_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    certificate_authority(at, "ca");
    certificate_authority(at, "other-ca");
    signed_by_ca(at, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
    let (_server, url, rt, js) = tls_server(at, false);

    let flow = flow(at, &url, "tls_ca_file = \"ca.pem\"");
    let (output, stdout, stderr) = run(&flow, &[]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 5, "{stdout}");

    // A CA that did not sign the server's certificate: refused at once,
    // naming the URL and the certificate.
    let flow = self::flow(at, &url, "tls_ca_file = \"other-ca.pem\"");
    let (output, stdout, stderr) = run(&flow, &[]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {url}")),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}

#[test]
fn a_client_certificate_the_server_requires_is_presented_and_its_key_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    certificate_authority(at, "ca");
    signed_by_ca(at, "server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1");
    signed_by_ca(at, "client", "/CN=worker", "extendedKeyUsage=clientAuth");
    let (_server, url, rt, js) = tls_server(at, true);
    // The private key's body: it must show nowhere.
    let key = std::fs::read_to_string(at.join("client.key")).unwrap();
    let secret = key
        .lines()
        .find(|line| !line.starts_with("-----"))
        .expect("a PEM body")
        .to_string();

    let flow = flow(
        at,
        &url,
        "tls_ca_file = \"ca.pem\"\ntls_cert_file = \"client.pem\"\ntls_key_file = \"client.key\"",
    );
    let (output, stdout, stderr) = run(&flow, &[&secret]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 5, "{stdout}");

    // Without the client certificate the server refuses the worker, and
    // the worker says which server.
    let flow = self::flow(at, &url, "tls_ca_file = \"ca.pem\"");
    let (output, stdout, stderr) = run(&flow, &[&secret]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {url}")),
        "{stderr}"
    );
}

/// base64url without padding, as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A NATS JWT (`ed25519-nkey`) for `subject`, issued and signed by
/// `issuer`, with `nats` as its NATS claims.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = base64url(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let issued = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{subject}{issued}"),
        "iat": issued,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let claims = base64url(claims.to_string().as_bytes());
    let signature = issuer
        .sign(format!("{header}.{claims}").as_bytes())
        .expect("signed");
    format!("{header}.{claims}.{}", base64url(&signature))
}

/// A new user of `account`, allowed everything: its JWT and its seed.
fn user_of(account: &nkeys::KeyPair, name: &str) -> (String, String) {
    let user = nkeys::KeyPair::new_user();
    let claims = serde_json::json!({
        "type": "user", "version": 2, "pub": {}, "sub": {},
        "subs": -1, "data": -1, "payload": -1,
    });
    let jwt = jwt(account, &user.public_key(), name, claims);
    (jwt, user.seed().expect("a seed"))
}

/// Decentralized auth as `nsc` sets it up: an operator, an account it
/// signs (JetStream allowed), the system account, a user the account
/// signs, and the user's `.creds` file (its JWT and its seed). The server trusts the operator and
/// knows the account (a memory resolver); the worker authenticates with
/// `creds_file`, and neither the seed nor the JWT shows anywhere.
#[test]
fn a_creds_file_authenticates_and_never_shows() {
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "torvyn-test",
        serde_json::json!({ "type": "operator", "version": 2 }),
    );
    let unlimited = serde_json::json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
        "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
    });
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "streams",
        serde_json::json!({ "type": "account", "version": 2, "limits": unlimited }),
    );
    // JetStream needs the server's own (system) account.
    let system = nkeys::KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        serde_json::json!({ "type": "account", "version": 2 }),
    );
    let (user_jwt, seed) = user_of(&account, "worker");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.conf");
    std::fs::write(
        &config,
        format!(
            "operator: \"{operator_jwt}\"\nsystem_account: {}\nresolver: MEMORY\n\
             resolver_preload: {{\n  {}: \"{account_jwt}\"\n  {}: \"{system_jwt}\"\n}}\n",
            system.public_key(),
            account.public_key(),
            system.public_key()
        ),
    )
    .unwrap();
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    );
    std::fs::write(dir.path().join("worker.creds"), &creds).unwrap();
    let server = Server::start(&["-c", config.to_str().unwrap()]);
    let options = runtime()
        .block_on(async_nats::ConnectOptions::with_credentials_file(
            dir.path().join("worker.creds"),
        ))
        .expect("the creds file reads");
    let (rt, js) = five_inputs(options, &server.url());

    let flow = flow(dir.path(), &server.url(), "creds_file = \"worker.creds\"");
    let (output, stdout, stderr) = run(&flow, &[&seed, &user_jwt]);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rt.block_on(count(&js, "OUT")), 5, "{stdout}");

    // Another account's user (not known to the server): refused, named.
    let (stranger_jwt, stranger_seed) = user_of(&nkeys::KeyPair::new_account(), "stranger");
    std::fs::write(
        dir.path().join("worker.creds"),
        creds
            .replace(&user_jwt, &stranger_jwt)
            .replace(&seed, &stranger_seed),
    )
    .unwrap();
    let (output, stdout, stderr) = run(&flow, &[&seed, &stranger_seed]);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to {}", server.url())),
        "{stderr}"
    );
}
