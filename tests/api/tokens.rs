//! Login tokens keep profiles and token-carried roles current; API tokens are created, shown once,
//! listed without their secret and revoked with effect on every server process.

use std::path::PathBuf;

use reqwest::Method;
use roleledger::auth::LoginClaims;
use serde_json::json;

use crate::{
    helpers::{login_token, spawn_app, spawn_app_with},
    support::Backend,
};

fn claims(user: &str, email: &str, roles: &[&str]) -> LoginClaims {
    LoginClaims {
        sub: user.into(),
        exp: chrono::Utc::now().timestamp() + 3600,
        email: Some(email.into()),
        name: Some("Alice".into()),
        roles: Some(roles.iter().map(|r| r.to_string()).collect()),
    }
}

async fn profile_changes_are_recorded_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = login_token(claims("alice", "alice@example.org", &[]));
    let me = app.call(Method::GET, "/api/v1/me", Some(&first), None).await;
    assert_eq!(me.body["email"], "alice@example.org");
    let head = app.head().await;
    let again = login_token(LoginClaims {
        exp: chrono::Utc::now().timestamp() + 7200,
        ..claims("alice", "alice@example.org", &[])
    });
    app.call(Method::GET, "/api/v1/me", Some(&again), None).await;
    assert_eq!(app.head().await, head, "an unchanged profile writes nothing");
    let moved = login_token(claims("alice", "alice@new.example.org", &[]));
    let me = app.call(Method::GET, "/api/v1/me", Some(&moved), None).await;
    assert_eq!(me.body["email"], "alice@new.example.org");
    let events = app.store.read_stream("user-alice", 1).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["UserRegistered", "UserProfileChanged"]);
}

/// ClusterCockpit: a login token may carry user, manager and support, never admin or api.
async fn token_roles_are_honoured_only_where_token_grantable(backend: Backend) {
    let workflow = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("workflows/clustercockpit.toml");
    let app = spawn_app_with(backend, |settings| settings.workflow = workflow).await;
    let token = login_token(claims("carl", "carl@example.org", &["support", "admin", "api"]));
    let me = app.call(Method::GET, "/api/v1/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["admin"], false);
    let mut roles: Vec<&str> =
        me.body["grants"].as_array().unwrap().iter().map(|g| g["role"].as_str().unwrap()).collect();
    roles.sort();
    assert_eq!(roles, ["support", "user"], "the default role, and support from the token");
    // A later token without `support` takes it away.
    let token = login_token(claims("carl", "carl@example.org", &[]));
    let me = app.call(Method::GET, "/api/v1/me", Some(&token), None).await;
    let roles: Vec<&str> = me.body["grants"].as_array().unwrap().iter().map(|g| g["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user"]);
}

async fn api_tokens_are_shown_once_and_revoked_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    app.bootstrap_admin("root").await;
    app.sign_in("alice").await;
    app.sign_in("prog").await;
    let created = app.post_as("root", "/api/v1/tokens", json!({"user": "prog", "name": "monitoring"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().unwrap().to_string();
    let id = created.body["id"].as_str().unwrap().to_string();

    // A program may ask about anyone.
    let check = "/api/v1/check?user=alice&permission=scope.edit&scope=global";
    let answer = app.call(Method::GET, check, Some(&secret), None).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["allowed"], false);

    // Listed without the secret, and the log keeps only its hash.
    let listed = app.get_as("root", "/api/v1/tokens").await;
    assert_eq!(listed.body["items"][0]["id"], id.as_str());
    assert!(!listed.body.to_string().contains(&secret));
    let events = app.store.read_stream(&format!("token-{id}"), 1).await.unwrap();
    assert!(!serde_json::to_string(&events).unwrap().contains(&secret));

    // Users without an API role cannot make tokens, not even for themselves.
    app.post_as("alice", "/api/v1/tokens", json!({"name": "mine"})).await.assert_problem(403, "forbidden");

    // Revoked on one process, refused by another on the same database within a second.
    let other = app.second_process().await;
    assert_eq!(other.call(Method::GET, check, Some(&secret), None).await.status, 200);
    let revoked = app.delete_as("root", &format!("/api/v1/tokens/{id}")).await;
    assert_eq!(revoked.status, 204);
    assert_eq!(app.call(Method::GET, check, Some(&secret), None).await.status, 401);
    // The other process hears of the revocation through the log.
    let refused = || async { other.call(Method::GET, check, Some(&secret), None).await.status == 401 };
    crate::support::eventually("the second process to refuse the revoked token", 10, refused).await;
    // Unknown API tokens are refused too.
    let fake = format!("rl_{}", "0".repeat(64));
    assert_eq!(app.call(Method::GET, check, Some(&fake), None).await.status, 401);
}

/// A server that trusts an RSA or EC public key accepts tokens signed with the private key, and
/// refuses an HS256 token "signed" with the public key as a shared secret (algorithm confusion).
async fn public_keys_admit_their_own_algorithm_only(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    for (generate, algorithm) in [
        (vec!["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], jsonwebtoken::Algorithm::RS256),
        (vec!["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], jsonwebtoken::Algorithm::ES256),
    ] {
        let private = folder.path().join("private.pem");
        let public = folder.path().join("public.pem");
        let openssl = |args: &[&str]| {
            let status = std::process::Command::new("openssl").args(args).status().expect("openssl runs");
            assert!(status.success());
        };
        let mut args = generate.clone();
        args.extend(["-out", private.to_str().unwrap()]);
        openssl(&args);
        openssl(&["pkey", "-in", private.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
        let key_file = public.clone();
        let app = spawn_app_with(backend, move |settings| {
            settings.jwt.keys = roleledger::configuration::JwtKeys::PublicKeyFile(key_file);
        })
        .await;
        let claims = claims("alice", "alice@example.org", &[]);
        let private_pem = std::fs::read(&private).unwrap();
        let key = match algorithm {
            jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&private_pem).unwrap(),
            _ => jsonwebtoken::EncodingKey::from_ec_pem(&private_pem).unwrap(),
        };
        let good = jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &key).unwrap();
        let answer = app.call(Method::GET, "/api/v1/me", Some(&good), None).await;
        assert_eq!(answer.status, 200, "{algorithm:?}: {:?}", answer.body);
        let public_pem = std::fs::read(&public).unwrap();
        let confused = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&public_pem),
        )
        .unwrap();
        let answer = app.call(Method::GET, "/api/v1/me", Some(&confused), None).await;
        assert_eq!(answer.status, 401, "{algorithm:?} confusion: {:?}", answer.body);
        // The HS256 test secret means nothing to this server either.
        let answer = app.call(Method::GET, "/api/v1/me", Some(&login_token(claims.clone())), None).await;
        assert_eq!(answer.status, 401);
    }
}

on_both_backends!(
    profile_changes_are_recorded_once,
    token_roles_are_honoured_only_where_token_grantable,
    api_tokens_are_shown_once_and_revoked_everywhere,
    public_keys_admit_their_own_algorithm_only,
);
