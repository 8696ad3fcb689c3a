//! The embedded database: one SQLite file in WAL mode holding the virtual keys, the
//! analytics databank and the local memory store. Requests never wait for a write:
//! records and captured memories go through the batching [`writer`]; key changes and
//! queries use their own connections off the request path.

pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

/// The schema, one migration per version; applied in order, never edited once shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/v1.sql"),
    include_str!("migrations/v2.sql"),
    include_str!("migrations/v3.sql"),
    include_str!("migrations/v4.sql"),
    include_str!("migrations/v5.sql"),
    include_str!("migrations/v6.sql"),
];

/// Where the database lives.
#[derive(Debug, Clone)]
pub struct Database {
    path: PathBuf,
}

impl Database {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let database = Self { path: path.to_owned() };
        let mut connection = database.connect()?;
        migrate(&mut connection)?;
        Ok(database)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new connection. WAL lets readers and the one writer work at the same time;
    /// `busy_timeout` makes a second writer (key changes) wait instead of failing.
    pub fn connect(&self) -> anyhow::Result<Connection> {
        let connection =
            Connection::open(&self.path).with_context(|| format!("cannot open {}", self.path.display()))?;
        connection.busy_timeout(Duration::from_secs(5))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // With WAL, NORMAL loses no committed transaction on a process crash (only on
        // a power loss before the next checkpoint) and avoids an fsync per commit.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        Ok(connection)
    }

    /// Runs `work` on a fresh connection on the blocking pool.
    pub async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let database = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = database.connect()?;
            work(&mut connection)
        })
        .await
        .context("database task failed")?
    }
}

/// Read connections kept between queries (opening one costs more than a search), used
/// on the blocking pool.
pub struct Readers {
    database: Database,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(database: &Database) -> Self {
        Self { database: database.clone(), idle: std::sync::Mutex::new(Vec::new()) }
    }

    /// Runs `work` on a pooled read connection, on the blocking pool.
    pub async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => self.database.connect()?,
        };
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = work(&connection);
            (connection, result)
        })
        .await?;
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(connection);
        result
    }
}

fn migrate(connection: &mut Connection) -> anyhow::Result<()> {
    connection.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 =
        connection.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration).with_context(|| format!("schema migration {version} failed"))?;
        transaction.execute("INSERT INTO schema_version (version) VALUES (?1)", [version])?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once() {
        let dir = std::env::temp_dir().join(format!("mp-storage-{}", std::process::id()));
        let database = Database::open(&dir.join("test.db")).unwrap();
        let again = Database::open(database.path()).unwrap();
        let version: i64 =
            again.connect().unwrap().query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let _ = std::fs::remove_dir_all(dir);
    }
}
