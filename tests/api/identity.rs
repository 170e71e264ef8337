//! Identities are exact (SPEC.md part two, "Claims, strictly"): configured `iss`/`aud` are
//! required, JWKS keys not meant for signatures never verify, user ids are visible and not the
//! server's own names, an older login token never undoes a later one, refusals say why in plain
//! words, and no address, name or title can cut a mail's headers.

use std::{path::Path, time::Duration};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use roleledger::{auth::LoginClaims, configuration::JwtKeys};
use serde_json::{json, Value};

use crate::{
    helpers::{held_in, login_token, shipped_workflow, spawn_app, spawn_app_on, spawn_app_with, TestApp, JWT_SECRET},
    support::{smtp::ReceivedMail, Backend},
};

const ISSUER: &str = "https://idp.example.org";
const AUDIENCE: &str = "roleledger";

/// A login token with exactly these claims, signed with the test servers' secret.
fn signed(claims: Value) -> String {
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("signed")
}

fn in_an_hour() -> i64 {
    chrono::Utc::now().timestamp() + 3600
}

/// Asserts a 401 whose detail says `words`.
#[track_caller]
fn assert_refused_saying(answer: &crate::helpers::Answer, words: &str) {
    answer.assert_problem(401, "unauthenticated");
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(words), "expected {words:?} in {detail:?}");
}

/// Asserts a 401 whose detail says `words` and nothing of a library's internals (serde_json's
/// "… at line 1 column 144", jsonwebtoken's `Error(InvalidToken)`).
#[track_caller]
fn assert_refused_in_plain_words(answer: &crate::helpers::Answer, words: &str) {
    assert_refused_saying(answer, words);
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    for internal in ["line", "column", "Error(", "ErrorKind", "InvalidToken", "JSON error"] {
        assert!(!detail.contains(internal), "library internals in {detail:?}");
    }
}

async fn me(app: &TestApp, token: &str) -> crate::helpers::Answer {
    app.call(Method::GET, "/api/v1/me", Some(token), None).await
}

async fn configured_issuer_and_audience_are_required(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.jwt.issuer = Some(ISSUER.into());
        settings.jwt.audience = Some(AUDIENCE.into());
    })
    .await;
    let head = app.head().await;
    let exp = in_an_hour();
    for (claims, words) in [
        (json!({"sub": "alice", "exp": exp, "aud": AUDIENCE}), "the token has no issuer (iss) but one is required"),
        (json!({"sub": "alice", "exp": exp, "iss": ISSUER}), "the token has no audience (aud) but one is required"),
        (json!({"sub": "alice", "exp": exp}), "but one is required"),
        (json!({"sub": "alice", "exp": exp, "iss": ISSUER, "aud": "other"}), "issued for another audience"),
        (json!({"sub": "alice", "exp": exp, "iss": "https://elsewhere", "aud": AUDIENCE}), "issued by another issuer"),
    ] {
        assert_refused_in_plain_words(&me(&app, &signed(claims)).await, words);
    }
    assert_eq!(app.head().await, head, "a refused token writes nothing");
    let good = me(&app, &signed(json!({"sub": "alice", "exp": exp, "iss": ISSUER, "aud": AUDIENCE}))).await;
    assert_eq!(good.status, 200, "{:?}", good.body);
}

/// An RSA key pair made with openssl: the private key in PEM, the public modulus base64url-encoded.
fn rsa_key(folder: &Path) -> (Vec<u8>, String) {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let private = folder.join("private.pem");
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl").args(args).output().expect("openssl runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let private_path = private.to_str().unwrap();
    openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private_path]);
    let modulus = openssl(&["rsa", "-in", private_path, "-modulus", "-noout"]);
    let hex_digits = modulus.trim().trim_start_matches("Modulus=");
    (std::fs::read(&private).unwrap(), URL_SAFE_NO_PAD.encode(hex::decode(hex_digits).unwrap()))
}

async fn jwks_keys_not_meant_for_signatures_never_verify(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let (private_pem, modulus) = rsa_key(folder.path());
    let key = |extra: Value| {
        let mut jwk = json!({"kty": "RSA", "n": modulus, "e": "AQAB"});
        jwk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        jwk
    };
    let serve_keys = |keys: Vec<Value>, name: &str| {
        let file = folder.path().join(name);
        std::fs::write(&file, json!({ "keys": keys }).to_string()).unwrap();
        move |settings: &mut roleledger::configuration::Settings| settings.jwt.keys = JwtKeys::JwksFile(file)
    };
    let token = |kid: Option<&str>| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(String::from);
        let key = EncodingKey::from_rsa_pem(&private_pem).unwrap();
        jsonwebtoken::encode(&header, &json!({"sub": "alice", "exp": in_an_hour()}), &key).unwrap()
    };

    // The same key, published for encryption only, beside a signing key of someone else's.
    let other_signing_key = json!({"kty": "RSA", "kid": "sig", "use": "sig", "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
    let keys = vec![
        key(json!({"kid": "enc", "use": "enc"})),
        key(json!({"kid": "wrap", "key_ops": ["encrypt", "wrapKey"]})),
        other_signing_key,
    ];
    let app = spawn_app_with(backend, serve_keys(keys, "enc.json")).await;
    let head = app.head().await;
    assert_refused_in_plain_words(&me(&app, &token(Some("enc"))).await, "unknown key id");
    assert_refused_in_plain_words(&me(&app, &token(Some("wrap"))).await, "unknown key id");
    assert_refused_in_plain_words(&me(&app, &token(None)).await, "the signature does not verify");
    assert_eq!(app.head().await, head, "a refused token writes nothing");

    // Published for signatures, the same key verifies the same tokens.
    let app = spawn_app_with(backend, serve_keys(vec![key(json!({"kid": "enc", "use": "sig"}))], "sig.json")).await;
    let answer = me(&app, &token(Some("enc"))).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

async fn user_ids_are_visible_and_not_the_servers_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let exp = in_an_hour();
    let root = me(&app, &signed(json!({"sub": "root", "exp": exp}))).await;
    assert_eq!(root.status, 200, "{:?}", root.body);
    let head = app.head().await;
    let long = "x".repeat(256);
    for (sub, words) in [
        ("", "the user id is empty"),
        (long.as_str(), "longer than 255 characters"),
        ("root\u{200B}", "invisible formatting character (U+200B)"),
        ("\u{FEFF}root", "invisible formatting character (U+FEFF)"),
        ("ad\u{202E}nimr", "invisible formatting character (U+202E)"),
        ("ro ot", "whitespace"),
        ("root\n", "whitespace"),
        ("ro\u{0}ot", "control character"),
        ("ro\u{1B}ot", "control character"),
        ("command-line", "reserved"),
        ("expiry", "reserved"),
        ("scheduler", "reserved"),
        ("system", "reserved"),
        ("system:mail", "reserved"),
    ] {
        assert_refused_saying(&me(&app, &signed(json!({"sub": sub, "exp": exp}))).await, words);
    }
    assert_eq!(app.head().await, head, "nobody was registered");

    // Nor on the command line: exit 2 with one `error:` line, nothing written.
    for args in [
        vec!["bootstrap-admin", "system"],
        vec!["bootstrap-admin", "root\u{200B}"],
        vec!["token", "--user", "expiry", "--jwt-secret", JWT_SECRET],
        vec!["token", "--user", "", "--jwt-secret", JWT_SECRET],
    ] {
        let output = app.cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: the user id"), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: no token printed");
    }
    assert_eq!(app.head().await, head, "the command line wrote nothing");
}

/// ClusterCockpit's `support` is token-grantable: token B, issued after token A, drops it; A,
/// presented only afterwards, does not bring it back, on this server or one started afresh.
async fn an_older_login_token_never_restores_what_a_later_one_dropped(backend: Backend) {
    let app = spawn_app_on(backend, "clustercockpit").await;
    let now = chrono::Utc::now().timestamp();
    let token = |issued_ago: i64, roles: &[&str]| {
        signed(json!({"sub": "carl", "exp": now + 3600, "iat": now - issued_ago, "roles": roles}))
    };
    let held = |answer: crate::helpers::Answer| {
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        held_in(&answer.body)
    };
    assert_eq!(held(me(&app, &token(300, &["support"])).await), ["support@global", "user@global"]);
    assert_eq!(held(me(&app, &token(100, &[])).await), ["user@global"], "B drops support");
    let head = app.head().await;
    assert_eq!(held(me(&app, &token(200, &["support"])).await), ["user@global"], "A is older than B");
    assert_eq!(app.head().await, head, "the older token wrote nothing");

    let restarted = app.second_process_with(|settings| settings.workflow = shipped_workflow("clustercockpit")).await;
    assert_eq!(held(me(&restarted, &token(150, &["support"])).await), ["user@global"], "after a restart too");
    assert_eq!(restarted.head().await, head);
    // A later token still syncs, and so does one without `iat`.
    assert_eq!(held(me(&restarted, &token(10, &["support"])).await), ["support@global", "user@global"]);
    let without_iat = signed(json!({"sub": "carl", "exp": now + 3600, "roles": []}));
    assert_eq!(held(me(&restarted, &without_iat).await), ["user@global"]);
    let types: Vec<String> =
        app.store.read_stream("user-carl", 1).await.unwrap().into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, ["UserRegistered", "TokenRolesSynced", "TokenRolesSynced", "TokenRolesSynced"]);
}

async fn malformed_tokens_are_refused_in_plain_words(backend: Backend) {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let app = spawn_app(backend).await;
    let head = app.head().await;
    let part = |json: &str| URL_SAFE_NO_PAD.encode(json.as_bytes());
    let exp = in_an_hour();
    let not_json_claims = format!("{}.{}.x", part(r#"{"alg":"HS256"}"#), part("{not json"));
    for (token, words) in [
        ("garbage".to_string(), "the token is not a JWT"),
        ("a.b.c".to_string(), "the token is not a JWT"),
        (format!("{}.{}.", part(r#"{"alg":"none"}"#), part(r#"{"sub":"root"}"#)), "alg none is refused"),
        (format!("{}.{}.x", part(r#"{"alg":"RS256"}"#), part(r#"{"sub":"root"}"#)), "no key here accepts"),
        (not_json_claims, "the signature does not verify"),
        (signed(json!({"sub": "alice"})), "no expiry time (exp)"),
        (signed(json!({"exp": exp})), "no subject (sub)"),
        (
            signed(json!({"sub": "alice", "exp": exp, "roles": {"admin": true}})),
            "the token's claims have the wrong types",
        ),
        (signed(json!({"sub": "alice", "exp": exp, "iat": now_plus_a_day()})), "issue time (iat) is in the future"),
    ] {
        assert_refused_in_plain_words(&me(&app, &token).await, words);
    }
    assert_eq!(app.head().await, head, "a refused token writes nothing");
}

fn now_plus_a_day() -> i64 {
    chrono::Utc::now().timestamp() + 86_400
}

async fn control_characters_in_mail_addresses_are_refused(backend: Backend) {
    let app = spawn_app_on(backend, "clarive").await;
    app.bootstrap_admin("root").await;
    app.sign_in("root").await;
    let head = app.head().await;
    let injected = "ops@example.org\r\nBcc: victim@example.org";
    let scope = json!({"id": "alm", "kind": "project", "title": "ALM", "mailbox": injected});
    let answer = app.post_as("root", "/api/v1/scopes", scope).await;
    answer.assert_problem(422, "invalid");
    assert!(answer.body["detail"].as_str().unwrap().contains("control character"), "{:?}", answer.body);
    let mut role = app.get_as("root", "/api/v1/roles/developer").await.body;
    role["mailbox"] = json!("{scope}-dev@example.org\nBcc: victim@example.org");
    app.put_as("root", "/api/v1/roles/developer", Some(role.clone())).await.assert_problem(422, "invalid");
    role["id"] = json!("tester");
    app.post_as("root", "/api/v1/roles", role).await.assert_problem(422, "invalid");
    assert_eq!(app.head().await, head, "nothing was written");

    // A login token's email claim with a line break signs in, without that email; the address
    // known before stays.
    let claims = |email: &str| LoginClaims {
        sub: "dev".into(),
        exp: in_an_hour(),
        email: Some(email.into()),
        name: None,
        roles: None,
    };
    let answer = me(&app, &login_token(claims(injected))).await;
    assert_eq!((answer.status, &answer.body["email"]), (200, &Value::Null), "{:?}", answer.body);
    assert_eq!(me(&app, &login_token(claims("dev@example.org"))).await.body["email"], "dev@example.org");
    let answer = me(&app, &login_token(claims("dev@example.org\r\n"))).await;
    assert_eq!((answer.status, &answer.body["email"]), (200, &json!("dev@example.org")), "{:?}", answer.body);
}

/// The .eml files the server has written, once there are at least `count`.
async fn written_mail(app: &TestApp, count: usize) -> Vec<ReceivedMail> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mails = written_mail_now(app);
        if mails.len() >= count {
            return mails;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} mails written, {count} expected", mails.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The .eml files the server has written so far.
pub(crate) fn written_mail_now(app: &TestApp) -> Vec<ReceivedMail> {
    std::fs::read_dir(app.mail_dir.path())
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .filter(|path| path.extension().is_some_and(|extension| extension == "eml"))
                .filter_map(|path| std::fs::read_to_string(path).ok())
                .map(|data| ReceivedMail { to: Vec::new(), data })
                .collect()
        })
        .unwrap_or_default()
}

/// A requester whose name, a scope whose title and a reason hold CR/LF: the subject stays one
/// line, no header is injected, the HTML part links to the request, and the mail says it was sent
/// by a program.
async fn line_breaks_never_cut_a_mails_headers(backend: Backend) {
    let app = spawn_app_with(backend, |settings| settings.public_url = "https://roles.example.org".into()).await;
    app.bootstrap_admin("root").await;
    for (id, kind, parents, title) in [
        ("EGI", "project", vec![], "EGI"),
        ("NGI_A", "ngi", vec!["EGI"], "NGI A"),
        ("SITE_A", "site", vec!["NGI_A"], "Site A\r\nX-Injected: title"),
    ] {
        let body = json!({"id": id, "kind": kind, "parents": parents, "title": title});
        assert_eq!(app.post_as("root", "/api/v1/scopes", body).await.status, 201);
    }
    app.assign("root", "manager", "site-operations-manager", "SITE_A").await;
    let claims = |user: &str, name: &str| LoginClaims {
        sub: user.into(),
        exp: in_an_hour(),
        email: Some(format!("{user}@example.org")),
        name: Some(name.into()),
        roles: None,
    };
    assert_eq!(me(&app, &login_token(claims("manager", "Manager"))).await.status, 200);
    let alice = login_token(claims("alice", "Eve\r\nBcc: victim@example.org\r\n\r\nbody"));
    let body = json!({"role": "site-administrator", "scope": "SITE_A", "reason": "run\r\nX-Injected: reason"});
    let asked = app.call(Method::POST, "/api/v1/requests", Some(&alice), Some(body)).await;
    assert_eq!(asked.status, 201, "{:?}", asked.body);
    let request = asked.body["id"].as_str().unwrap();

    let mails = written_mail(&app, 1).await;
    for mail in &mails {
        let head = mail.data.split("\r\n\r\n").next().unwrap();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        for line in unfolded.split("\r\n") {
            let name = line.split_once(':').map(|(name, _)| name.to_ascii_lowercase()).unwrap_or_default();
            assert!(!["bcc", "x-injected"].contains(&name.as_str()), "injected header {line:?} in\n{head}");
        }
        let subject = mail.header("Subject").expect("a subject");
        assert_eq!(
            subject,
            "[roleledger] Eve Bcc: victim@example.org body asks for Site Administrator on Site A X-Injected: title"
        );
        assert_eq!(mail.header("Auto-Submitted").as_deref(), Some("auto-generated"), "{head}");
        let link = format!("https://roles.example.org/ui/requests/{request}");
        assert!(mail.text().contains(&format!("<a href=\"{link}\">{link}</a>")), "{}", mail.text());
    }
}

on_both_backends!(
    configured_issuer_and_audience_are_required,
    jwks_keys_not_meant_for_signatures_never_verify,
    user_ids_are_visible_and_not_the_servers_own,
    an_older_login_token_never_restores_what_a_later_one_dropped,
    malformed_tokens_are_refused_in_plain_words,
    control_characters_in_mail_addresses_are_refused,
    line_breaks_never_cut_a_mails_headers,
);
