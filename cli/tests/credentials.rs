//! Credentials as users write them, each against a server configured for
//! it: an NKey seed (a user made here with the `nkeys` crate) and TLS with a
//! private CA (certificates made here with `openssl`), the server's
//! certificate checked and a wrong CA refused. No secret shows in anything
//! the worker prints, at `--log trace`. (A token and a user/password: in
//! `streams.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use async_nats::jetstream;
use common::nats::*;

/// `torvyn run FLOW --idle-timeout 1 --log trace`: its output, and both
/// streams, which must not contain any of `secrets`.
fn run(flow: &Path, secrets: &[&str]) -> (Output, String, String) {
    let output = Command::new(TORVYN)
        .args(["run", "--quiet", "--idle-timeout", "1", "--log", "trace"])
        .arg(flow)
        .output()
        .expect("torvyn runs");
    let (stdout, stderr) = text(&output);
    for secret in secrets {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "a secret shows in the output:\n{stdout}\n{stderr}"
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

#[test]
fn tls_with_a_private_ca_checks_the_server_and_refuses_a_wrong_ca() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path();
    certificate_authority(at, "ca");
    certificate_authority(at, "other-ca");
    // The server's certificate, for 127.0.0.1, signed by `ca`.
    openssl(
        at,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(at.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        at,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let path = |name: &str| at.join(name).to_str().unwrap().to_string();
    let server = Server::start(&[
        "--tls",
        "--tlscert",
        &path("server.pem"),
        "--tlskey",
        &path("server.key"),
    ]);
    let url = format!("tls://127.0.0.1:{}", server.port);
    let (rt, js) = five_inputs(
        async_nats::ConnectOptions::new()
            .add_root_certificates(at.join("ca.pem"))
            .require_tls(true),
        &url,
    );

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
