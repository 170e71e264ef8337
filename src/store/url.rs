use std::{fmt, str::FromStr};

use super::StoreError;

/// Where the log lives. Parsed once from `--database`, so the rest of the code never looks at URL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (created when missing); the text after `sqlite:` may carry `?mode=ro` and similar options.
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn default_sqlite() -> Self {
        DatabaseUrl::Sqlite("roleledger.db".into())
    }

    /// The SQLite file path, without URL options.
    pub fn sqlite_path(&self) -> Option<&str> {
        match self {
            DatabaseUrl::Sqlite(target) => Some(target.split('?').next().unwrap_or(target)),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(text.to_string()));
        }
        if let Some(rest) = text.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if !path.is_empty() {
                return Ok(DatabaseUrl::Sqlite(path.to_string()));
            }
        } else if !text.is_empty() && !text.contains("://") && !text.contains(':') {
            // A bare file path is the friendliest way to name a SQLite database.
            return Ok(DatabaseUrl::Sqlite(text.to_string()));
        }
        Err(StoreError::UnsupportedUrl(text.to_string()))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite:{path}"),
            // Never print a password that the URL may carry.
            DatabaseUrl::Postgres(url) => {
                let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
                match rest.rsplit_once('@') {
                    Some((credentials, host)) if credentials.contains(':') => {
                        let user = credentials.split(':').next().unwrap_or_default();
                        write!(f, "{scheme}://{user}:***@{host}")
                    }
                    _ => f.write_str(url),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_forms_and_refuses_others() {
        assert_eq!("sqlite:x.db".parse::<DatabaseUrl>().unwrap(), DatabaseUrl::Sqlite("x.db".into()));
        assert_eq!("sqlite://x.db".parse::<DatabaseUrl>().unwrap(), DatabaseUrl::Sqlite("x.db".into()));
        assert_eq!("./data/x.db".parse::<DatabaseUrl>().unwrap(), DatabaseUrl::Sqlite("./data/x.db".into()));
        assert!(matches!("postgres://u@h/db".parse::<DatabaseUrl>().unwrap(), DatabaseUrl::Postgres(_)));
        assert!(matches!("postgresql://u@h/db".parse::<DatabaseUrl>().unwrap(), DatabaseUrl::Postgres(_)));
        for bad in ["mysql://h/db", "", "sqlite:", "http://x"] {
            assert!(matches!(bad.parse::<DatabaseUrl>(), Err(StoreError::UnsupportedUrl(_))), "{bad}");
        }
    }

    #[test]
    fn display_hides_passwords() {
        let url: DatabaseUrl = "postgres://app:secret@db:5432/rl".parse().unwrap();
        assert_eq!(url.to_string(), "postgres://app:***@db:5432/rl");
        assert_eq!(DatabaseUrl::Sqlite("x.db".into()).to_string(), "sqlite:x.db");
    }
}
