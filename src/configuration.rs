//! Settings, layered: built-in defaults, then an optional TOML file (`--config`), then
//! `ROLELEDGER_*` environment variables, then command-line flags. Clap merges the last two
//! (a flag wins over its variable); this module lays the result over the file and the defaults.
//! The file and the flags are one struct, [`Options`], so a key and its flag cannot drift apart.

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
};

use serde::Deserialize;

use crate::{
    mail::RetryPolicy,
    store::{DatabaseUrl, StoreError},
    webhooks::WebhookSettings,
};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// The built-in EGI workflow (a name: a value with a `/` or ending in `.toml` is a file).
pub const DEFAULT_WORKFLOW: &str = crate::workflow::DEFAULT_BUILT_IN;
pub const DEFAULT_MAIL_DIR: &str = "mail";
pub const DEFAULT_MAIL_FROM: &str = "roleledger@localhost";
/// Mails a second per process: relays throttle senders that burst, and under a burst of requests
/// the server's CPU goes to the requests, while the outbox keeps their mail.
pub const DEFAULT_MAIL_RATE: u32 = 100;
/// Events between snapshots of the read model: at a million events a start folds at most this many.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_string()))
    }
}

/// Every setting, as given by the file, the environment or the flags (`None` where not given).
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    /// sqlite:PATH (default sqlite:roleledger.db) or postgres://USER@HOST[:PORT]/DB; several hosts
    /// as postgres://USER@H1:5432,H2:5432/DB?target_session_attrs=read-write (the one that accepts writes).
    #[arg(long, global = true, env = "ROLELEDGER_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, global = true, env = "ROLELEDGER_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// A built-in workflow (egi, clustercockpit, ucp, clarive, rancher) or a file (a value with a /
    /// or ending in .toml) [default: egi].
    #[arg(long, global = true, env = "ROLELEDGER_WORKFLOW", value_name = "NAME|FILE")]
    pub workflow: Option<PathBuf>,
    /// The server's address as users reach it, for links in mail [default: http://BIND].
    #[arg(long, global = true, env = "ROLELEDGER_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Mail server, e.g. smtp://127.0.0.1:2525 (without it, mail is written to --mail-dir).
    #[arg(long, global = true, env = "ROLELEDGER_SMTP", value_name = "URL")]
    pub smtp: Option<String>,
    /// Folder for .eml files when no --smtp is given [default: ./mail].
    #[arg(long, global = true, env = "ROLELEDGER_MAIL_DIR", value_name = "DIR")]
    pub mail_dir: Option<PathBuf>,
    /// Sender address of the mail [default: roleledger@localhost].
    #[arg(long, global = true, env = "ROLELEDGER_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Folder whose mail templates replace the built-in ones (same file names as templates/mail/).
    #[arg(long, global = true, env = "ROLELEDGER_MAIL_TEMPLATES", value_name = "DIR")]
    pub mail_templates: Option<PathBuf>,
    /// Most mails a second this process sends, 0 for no limit [default: 100]; the outbox keeps the rest.
    #[arg(long, global = true, env = "ROLELEDGER_MAIL_RATE", value_name = "N")]
    pub mail_rate: Option<u32>,
    /// Shared secret for HS256 login tokens.
    #[arg(long, global = true, env = "ROLELEDGER_JWT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// PEM file with the RSA or EC public key of RS256/ES256 login tokens.
    #[arg(long, global = true, env = "ROLELEDGER_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS with the public keys of RS256/ES256 login tokens: a file, or an http(s) URL (cached,
    /// fetched again on an unknown key id).
    #[arg(long, global = true, env = "ROLELEDGER_JWKS", value_name = "FILE|URL")]
    pub jwks: Option<PathBuf>,
    /// Required `iss` of login tokens.
    #[arg(long, global = true, env = "ROLELEDGER_JWT_ISSUER", value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of login tokens.
    #[arg(long, global = true, env = "ROLELEDGER_JWT_AUDIENCE", value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// The OpenID Connect provider people sign in with (discovery at URL/.well-known/openid-configuration).
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// This server's client secret at the provider (none: a public client, PKCE only).
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<Secret>,
    /// Scopes asked for at sign-in, separated by spaces [default: openid email profile].
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_SCOPES", value_name = "SCOPES")]
    pub oidc_scopes: Option<String>,
    /// The claim naming the user, one they cannot change [default: sub] (EGI Check-in: voperson_id).
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_USER_CLAIM", value_name = "CLAIM")]
    pub oidc_user_claim: Option<String>,
    /// A claim whose values are read like `roles` (only token-grantable roles count).
    #[arg(long, global = true, env = "ROLELEDGER_OIDC_ROLES_CLAIM", value_name = "CLAIM")]
    pub oidc_roles_claim: Option<String>,
    /// Webhooks may post to loopback, private and link-local addresses (tests, closed networks).
    #[arg(long, global = true, env = "ROLELEDGER_WEBHOOK_ALLOW_PRIVATE", value_name = "BOOL", num_args = 0..=1,
        require_equals = true, default_missing_value = "true")]
    pub webhook_allow_private: Option<bool>,
    /// A PostgreSQL hot standby of --database that the read model follows while it lags at most a
    /// second (postgres://USER@HOST[:PORT]/DB); writes always go to --database.
    #[arg(long, global = true, env = "ROLELEDGER_READ_DATABASE", value_name = "URL")]
    pub read_database: Option<String>,
    /// Store a snapshot of the read model every N events, 0 for none [default: 100000].
    #[arg(long, global = true, env = "ROLELEDGER_SNAPSHOT_EVERY", value_name = "N")]
    pub snapshot_every: Option<u64>,
    /// The key snapshots are sealed with (HMAC-SHA256), at least 16 characters [default: a
    /// generated key in a file beside the configuration file or the SQLite database].
    #[arg(long, global = true, env = "ROLELEDGER_SNAPSHOT_KEY", value_name = "KEY", hide_env_values = true)]
    pub snapshot_key: Option<Secret>,
}

impl Options {
    /// `self` where given, else `lower`.
    fn over(self, lower: Options) -> Options {
        Options {
            database: self.database.or(lower.database),
            bind: self.bind.or(lower.bind),
            workflow: self.workflow.or(lower.workflow),
            public_url: self.public_url.or(lower.public_url),
            smtp: self.smtp.or(lower.smtp),
            mail_dir: self.mail_dir.or(lower.mail_dir),
            mail_from: self.mail_from.or(lower.mail_from),
            mail_templates: self.mail_templates.or(lower.mail_templates),
            mail_rate: self.mail_rate.or(lower.mail_rate),
            jwt_secret: self.jwt_secret.or(lower.jwt_secret),
            jwt_public_key: self.jwt_public_key.or(lower.jwt_public_key),
            jwks: self.jwks.or(lower.jwks),
            jwt_issuer: self.jwt_issuer.or(lower.jwt_issuer),
            jwt_audience: self.jwt_audience.or(lower.jwt_audience),
            oidc_issuer: self.oidc_issuer.or(lower.oidc_issuer),
            oidc_client_id: self.oidc_client_id.or(lower.oidc_client_id),
            oidc_client_secret: self.oidc_client_secret.or(lower.oidc_client_secret),
            oidc_scopes: self.oidc_scopes.or(lower.oidc_scopes),
            oidc_user_claim: self.oidc_user_claim.or(lower.oidc_user_claim),
            oidc_roles_claim: self.oidc_roles_claim.or(lower.oidc_roles_claim),
            webhook_allow_private: self.webhook_allow_private.or(lower.webhook_allow_private),
            read_database: self.read_database.or(lower.read_database),
            snapshot_every: self.snapshot_every.or(lower.snapshot_every),
            snapshot_key: self.snapshot_key.or(lower.snapshot_key),
        }
    }
}

/// Where login tokens' keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKeys {
    /// HS256 with a configured shared secret.
    Secret(Secret),
    PublicKeyFile(PathBuf),
    JwksFile(PathBuf),
    /// A JWKS fetched over http(s): cached, fetched again on an unknown `kid` (at most once a minute).
    JwksUrl(String),
    /// No key of its own: only the OpenID Connect issuer's (its `jwks_uri`).
    Issuer,
    /// Nothing configured: a generated HS256 secret kept in this file next to the database.
    Development(PathBuf),
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub keys: JwtKeys,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// Which claims name the user and carry their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub user: String,
    pub roles: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames { user: "sub".into(), roles: None }
    }
}

pub const DEFAULT_OIDC_SCOPES: &str = "openid email profile";

/// Sign-in through an OpenID Connect provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// As configured, without a trailing slash added or removed (it is compared byte for byte with `iss`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    /// `{public-url}/ui/oidc/callback`.
    pub redirect_uri: String,
    /// `{public-url}/ui/signin`, where the provider sends the browser back after sign-out.
    pub post_logout_redirect_uri: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub database: DatabaseUrl,
    pub workflow: PathBuf,
    pub public_url: String,
    pub smtp: Option<String>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub mail_templates: Option<PathBuf>,
    /// Its rate is `--mail-rate`; the rest is not a flag: tests shorten it.
    pub mail_retry: RetryPolicy,
    pub jwt: JwtSettings,
    pub claims: ClaimNames,
    pub oidc: Option<OidcSettings>,
    /// How often keys fetched over http(s) are fetched again (not a flag: tests shorten it).
    pub key_refresh: std::time::Duration,
    /// `--webhook-allow-private`, and the deliveries' backoff (tests shorten it).
    pub webhooks: WebhookSettings,
    /// `--read-database`: the hot standby the read model follows.
    pub read_database: Option<DatabaseUrl>,
    pub snapshots: SnapshotSettings,
}

/// Snapshots of the read model: how often, and the key they are sealed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// Events between snapshots; 0: none are made or read.
    pub every: u64,
    pub key: SnapshotKey,
}

/// Where the snapshots' key comes from. It is kept outside the database, so that someone who can
/// write the database cannot make a snapshot the server would load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotKey {
    Given(Secret),
    /// A generated key kept in this file (made at the first start, readable by its owner only).
    File(PathBuf),
}

impl SnapshotKey {
    /// The key's bytes; a missing file is made when `create`, else there is no key (None).
    pub fn load(&self, create: bool) -> Result<Option<Vec<u8>>, ConfigError> {
        let file = match self {
            SnapshotKey::Given(secret) => return Ok(Some(secret.expose().as_bytes().to_vec())),
            SnapshotKey::File(file) => file,
        };
        let invalid = |problem: String| ConfigError::Invalid(format!("snapshot key {}: {problem}", file.display()));
        match std::fs::read_to_string(file) {
            Ok(text) if text.trim().len() >= 32 => Ok(Some(text.trim().as_bytes().to_vec())),
            Ok(_) => Err(invalid("shorter than 32 characters".into())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = [0u8; 32];
                getrandom::getrandom(&mut key).expect("the system's random source");
                let key = hex::encode(key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut out = options.open(file).map_err(|e| invalid(e.to_string()))?;
                std::io::Write::write_all(&mut out, key.as_bytes()).map_err(|e| invalid(e.to_string()))?;
                Ok(Some(key.into_bytes()))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(invalid(error.to_string())),
        }
    }
}

/// How often keys fetched over http(s) are fetched again, besides on an unknown key id.
pub const DEFAULT_KEY_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);

impl Settings {
    pub fn load(config_file: Option<&Path>, flags: Options) -> Result<Self, ConfigError> {
        let file = match config_file {
            Some(path) => read_file(path)?,
            None => Options::default(),
        };
        let mut settings = Self::from_options(flags.over(file))?;
        // The generated key goes beside the configuration file, when there is one.
        if let (SnapshotKey::File(key_file), Some(config)) = (&mut settings.snapshots.key, config_file) {
            *key_file = PathBuf::from(format!("{}.snapshot-key", config.display()));
        }
        Ok(settings)
    }

    fn from_options(options: Options) -> Result<Self, ConfigError> {
        let database = match options.database {
            Some(text) => text.parse()?,
            None => DatabaseUrl::default_sqlite(),
        };
        let read_database = match options.read_database.filter(|url| !url.trim().is_empty()) {
            None => None,
            Some(text) => match (text.parse()?, &database) {
                (standby @ DatabaseUrl::Postgres(_), DatabaseUrl::Postgres(_)) => Some(standby),
                _ => {
                    return Err(ConfigError::Invalid(
                        "--read-database is a PostgreSQL hot standby of a PostgreSQL --database".into(),
                    ))
                }
            },
        };
        let oidc_issuer = options.oidc_issuer.clone().filter(|issuer| !issuer.trim().is_empty());
        let keys = match (options.jwt_secret, options.jwt_public_key, options.jwks) {
            (Some(secret), None, None) if secret.expose().len() < 16 => {
                return Err(ConfigError::Invalid("the JWT secret must be at least 16 characters".into()))
            }
            (Some(secret), None, None) => JwtKeys::Secret(secret),
            (None, Some(file), None) => JwtKeys::PublicKeyFile(file),
            (None, None, Some(location)) => match location.to_str() {
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    if oidc_issuer.is_some() {
                        return Err(ConfigError::Invalid(
                            "--jwks URL and --oidc-issuer: the issuer's keys come from its jwks_uri; give one".into(),
                        ));
                    }
                    JwtKeys::JwksUrl(url.to_string())
                }
                _ => JwtKeys::JwksFile(location),
            },
            // With an issuer, the development secret is off: one identity namespace.
            (None, None, None) if oidc_issuer.is_some() => JwtKeys::Issuer,
            (None, None, None) => JwtKeys::Development(development_secret_file(&database)),
            _ => {
                return Err(ConfigError::Invalid(
                    "give one of --jwt-secret, --jwt-public-key and --jwks, not several".into(),
                ))
            }
        };
        let snapshot_key = match options.snapshot_key {
            Some(key) if key.expose().len() < 16 => {
                return Err(ConfigError::Invalid("the snapshot key must be at least 16 characters".into()))
            }
            Some(key) => SnapshotKey::Given(key),
            None => SnapshotKey::File(beside_database(&database, "snapshot-key")),
        };
        let bind = options.bind.unwrap_or_else(|| DEFAULT_BIND.to_string());
        let public_url = options.public_url.unwrap_or_else(|| format!("http://{bind}"));
        let public_url = public_url.trim_end_matches('/').to_string();
        let claims = ClaimNames {
            user: options.oidc_user_claim.map(|c| c.trim().to_string()).unwrap_or_else(|| "sub".into()),
            roles: options.oidc_roles_claim.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        };
        match claims.user.as_str() {
            "" => return Err(ConfigError::Invalid("--oidc-user-claim names no claim".into())),
            "email" | "email_verified" | "name" | "preferred_username" => {
                return Err(ConfigError::Invalid(format!(
                    "--oidc-user-claim {}: the user claim must be one the user cannot change (sub, or e.g. \
                     voperson_id), never a mail address or a name",
                    claims.user
                )))
            }
            _ => {}
        }
        let mut issuer = options.jwt_issuer;
        let mut audience = options.jwt_audience;
        let oidc = match oidc_issuer {
            None => None,
            Some(oidc_issuer) => {
                if !(oidc_issuer.starts_with("https://") || oidc_issuer.starts_with("http://")) {
                    return Err(ConfigError::Invalid(format!("--oidc-issuer {oidc_issuer}: not an http(s) URL")));
                }
                let client_id = options.oidc_client_id.filter(|id| !id.is_empty()).ok_or_else(|| {
                    ConfigError::Invalid(
                        "--oidc-issuer needs --oidc-client-id (this server's client at the provider)".into(),
                    )
                })?;
                match &issuer {
                    Some(jwt_issuer) if *jwt_issuer != oidc_issuer => {
                        return Err(ConfigError::Invalid(format!(
                            "--jwt-issuer {jwt_issuer} differs from --oidc-issuer {oidc_issuer}: with an issuer \
                             configured, login tokens are accepted from that issuer only"
                        )))
                    }
                    _ => issuer = Some(oidc_issuer.clone()),
                }
                audience = audience.or_else(|| Some(client_id.clone()));
                let scopes = options.oidc_scopes.unwrap_or_else(|| DEFAULT_OIDC_SCOPES.to_string());
                let mut scopes: Vec<String> = scopes.split_whitespace().map(String::from).collect();
                if !scopes.iter().any(|s| s == "openid") {
                    scopes.insert(0, "openid".into());
                }
                Some(OidcSettings {
                    issuer: oidc_issuer,
                    client_id,
                    client_secret: options.oidc_client_secret.filter(|s| !s.expose().is_empty()),
                    scopes,
                    redirect_uri: format!("{public_url}/ui/oidc/callback"),
                    post_logout_redirect_uri: format!("{public_url}/ui/signin"),
                })
            }
        };
        Ok(Settings {
            bind,
            database,
            workflow: options.workflow.unwrap_or_else(|| PathBuf::from(DEFAULT_WORKFLOW)),
            public_url,
            smtp: options.smtp,
            mail_dir: options.mail_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_MAIL_DIR)),
            mail_from: options.mail_from.unwrap_or_else(|| DEFAULT_MAIL_FROM.to_string()),
            mail_templates: options.mail_templates,
            mail_retry: RetryPolicy {
                rate: std::num::NonZeroU32::new(options.mail_rate.unwrap_or(DEFAULT_MAIL_RATE)),
                ..RetryPolicy::default()
            },
            jwt: JwtSettings { keys, issuer, audience },
            claims,
            oidc,
            key_refresh: DEFAULT_KEY_REFRESH,
            webhooks: WebhookSettings {
                allow_private: options.webhook_allow_private.unwrap_or(false),
                ..WebhookSettings::default()
            },
            read_database,
            snapshots: SnapshotSettings {
                every: options.snapshot_every.unwrap_or(DEFAULT_SNAPSHOT_EVERY),
                key: snapshot_key,
            },
        })
    }

    /// Settings for tests and tools: the given database and workflow, a shared secret, port 0.
    pub fn for_tests(database: DatabaseUrl, workflow: PathBuf, jwt_secret: &str) -> Self {
        let options = Options {
            bind: Some("127.0.0.1:0".into()),
            workflow: Some(workflow),
            jwt_secret: Some(Secret::new(jwt_secret)),
            // Given, so that tests leave no key file behind; restarts over one database share it.
            snapshot_key: Some(Secret::new(TEST_SNAPSHOT_KEY)),
            ..Options::default()
        };
        let mut settings = Self::from_options(options).expect("valid test settings");
        settings.database = database;
        settings
    }
}

/// The snapshots' key of `Settings::for_tests`.
pub const TEST_SNAPSHOT_KEY: &str = "test-snapshot-key-0123456789abcdef";

/// The development secret lives next to a SQLite database (`roleledger.db.jwt-secret`), and in the
/// working directory for PostgreSQL, so that `roleledger token` run in the same place finds it.
fn development_secret_file(database: &DatabaseUrl) -> PathBuf {
    beside_database(database, "jwt-secret")
}

/// A file of the server's own next to a SQLite database (`roleledger.db.{suffix}`), else in the
/// working directory (`roleledger.{suffix}`).
fn beside_database(database: &DatabaseUrl, suffix: &str) -> PathBuf {
    match database.sqlite_path() {
        Some(path) => PathBuf::from(format!("{path}.{suffix}")),
        None => PathBuf::from(format!("roleledger.{suffix}")),
    }
}

fn read_file(path: &Path) -> Result<Options, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    toml::from_str(&text)
        .map_err(|error| ConfigError::Parse { path: path.into(), message: error.to_string().replace('\n', " ") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn defaults_apply_without_file_or_overrides() {
        let settings = Settings::load(None, Options::default()).unwrap();
        assert_eq!(settings.bind, DEFAULT_BIND);
        assert_eq!(settings.database, DatabaseUrl::default_sqlite());
        assert_eq!(settings.workflow, PathBuf::from(DEFAULT_WORKFLOW));
        assert_eq!(settings.public_url, "http://127.0.0.1:8080");
        assert_eq!(settings.mail_dir, PathBuf::from("mail"));
        assert_eq!(settings.jwt.keys, JwtKeys::Development("roleledger.db.jwt-secret".into()));
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let file = file_with(
            "bind = \"0.0.0.0:9000\"\ndatabase = \"sqlite:from-file.db\"\njwt-secret = \"0123456789abcdef\"\n",
        );
        let settings = Settings::load(Some(file.path()), Options::default()).unwrap();
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.database, DatabaseUrl::Sqlite("from-file.db".into()));
        assert_eq!(settings.jwt.keys, JwtKeys::Secret(Secret::new("0123456789abcdef")));
        let flags = Options { database: Some("postgres://x@y/z".into()), ..Options::default() };
        let settings = Settings::load(Some(file.path()), flags).unwrap();
        assert_eq!(settings.bind, "0.0.0.0:9000");
        assert_eq!(settings.database, DatabaseUrl::Postgres("postgres://x@y/z".into()));
    }

    #[test]
    fn unknown_keys_bad_urls_and_conflicting_keys_are_refused() {
        let file = file_with("bnd = \"x\"\n");
        let error = Settings::load(Some(file.path()), Options::default()).unwrap_err();
        assert!(error.to_string().contains("unknown field `bnd`"), "{error}");
        let flags = Options { database: Some("mysql://h/db".into()), ..Options::default() };
        assert!(matches!(Settings::load(None, flags), Err(ConfigError::Database(StoreError::UnsupportedUrl(_)))));
        let both = Options {
            jwt_secret: Some(Secret::new("0123456789abcdef")),
            jwks: Some("keys.json".into()),
            ..Options::default()
        };
        assert!(matches!(Settings::load(None, both), Err(ConfigError::Invalid(_))));
        let short = Options { jwt_secret: Some(Secret::new("short")), ..Options::default() };
        assert!(matches!(Settings::load(None, short), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn mail_rate_defaults_to_a_hundred_a_second_and_zero_lifts_it() {
        assert_eq!(
            Settings::load(None, Options::default()).unwrap().mail_retry.rate.map(|r| r.get()),
            Some(DEFAULT_MAIL_RATE)
        );
        let unlimited = Options { mail_rate: Some(0), ..Options::default() };
        assert_eq!(Settings::load(None, unlimited).unwrap().mail_retry.rate, None);
        let file = file_with("mail-rate = 7\n");
        assert_eq!(
            Settings::load(Some(file.path()), Options::default()).unwrap().mail_retry.rate.map(|r| r.get()),
            Some(7)
        );
    }

    #[test]
    fn webhooks_keep_to_public_addresses_unless_allowed() {
        assert!(!Settings::load(None, Options::default()).unwrap().webhooks.allow_private);
        let file = file_with("webhook-allow-private = true\n");
        assert!(Settings::load(Some(file.path()), Options::default()).unwrap().webhooks.allow_private);
        let flag = Options { webhook_allow_private: Some(false), ..Options::default() };
        assert!(!Settings::load(Some(file.path()), flag).unwrap().webhooks.allow_private);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let options = Options {
            jwt_secret: Some(Secret::new("super-secret-value")),
            oidc_client_secret: Some(Secret::new("client-secret-value")),
            ..Options::default()
        };
        assert!(!format!("{options:?}").contains("super-secret-value"));
        assert!(!format!("{options:?}").contains("client-secret-value"));
    }

    fn oidc_options() -> Options {
        Options {
            oidc_issuer: Some("https://idp.example.org/realms/main".into()),
            oidc_client_id: Some("roleledger".into()),
            public_url: Some("https://roles.example.org/".into()),
            ..Options::default()
        }
    }

    #[test]
    fn an_issuer_names_the_keys_the_audience_and_the_redirect_uri() {
        let settings = Settings::load(None, oidc_options()).unwrap();
        assert_eq!(settings.jwt.keys, JwtKeys::Issuer, "no development secret with an issuer");
        assert_eq!(settings.jwt.issuer.as_deref(), Some("https://idp.example.org/realms/main"));
        assert_eq!(settings.jwt.audience.as_deref(), Some("roleledger"));
        let oidc = settings.oidc.unwrap();
        assert_eq!(oidc.redirect_uri, "https://roles.example.org/ui/oidc/callback");
        assert_eq!(oidc.post_logout_redirect_uri, "https://roles.example.org/ui/signin");
        assert_eq!(oidc.scopes, ["openid", "email", "profile"]);
        assert_eq!(settings.claims, ClaimNames::default());
        let file = file_with("oidc-client-secret = \"from-the-file\"\noidc-user-claim = \"voperson_id\"\n");
        let settings = Settings::load(Some(file.path()), oidc_options()).unwrap();
        assert_eq!(settings.oidc.unwrap().client_secret.unwrap().expose(), "from-the-file");
        assert_eq!(settings.claims.user, "voperson_id");
        // An explicit secret stays on beside the issuer; the audience given wins over the client id.
        let both = Options {
            jwt_secret: Some(Secret::new("0123456789abcdef")),
            jwt_audience: Some("api".into()),
            ..oidc_options()
        };
        let settings = Settings::load(None, both).unwrap();
        assert!(matches!(settings.jwt.keys, JwtKeys::Secret(_)));
        assert_eq!(settings.jwt.audience.as_deref(), Some("api"));
        let url = Options { jwks: Some("https://idp.example.org/keys".into()), ..Options::default() };
        assert_eq!(
            Settings::load(None, url).unwrap().jwt.keys,
            JwtKeys::JwksUrl("https://idp.example.org/keys".into())
        );
    }

    #[test]
    fn mutable_user_claims_and_half_configurations_are_refused() {
        for claim in ["email", "name", ""] {
            let options = Options { oidc_user_claim: Some(claim.into()), ..oidc_options() };
            assert!(matches!(Settings::load(None, options), Err(ConfigError::Invalid(_))), "{claim}");
        }
        let no_client = Options { oidc_client_id: None, ..oidc_options() };
        assert!(matches!(Settings::load(None, no_client), Err(ConfigError::Invalid(_))));
        let other_issuer = Options { jwt_issuer: Some("https://elsewhere".into()), ..oidc_options() };
        assert!(matches!(Settings::load(None, other_issuer), Err(ConfigError::Invalid(_))));
        let url_and_issuer = Options { jwks: Some("https://idp.example.org/keys".into()), ..oidc_options() };
        assert!(matches!(Settings::load(None, url_and_issuer), Err(ConfigError::Invalid(_))));
    }
}
