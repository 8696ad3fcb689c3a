//! `memory-proxy memory ...`: one scope's memories, on the backend config.yaml names,
//! from the command line: list, search, add, delete, export and import. It works on
//! the store itself (the database file, or Supermemory), so the gateway need not run;
//! while it runs, what the command changes is what its requests see.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::config::{Config, EmbeddingModel, MemoryBackend};
use crate::services::memory::supermemory::Supermemory;
use crate::services::memory::{self, Memories, MemoryStore, NewMemory, Scope, Stored};
use crate::storage::Database;

#[derive(Subcommand, Debug)]
pub enum MemoryCommand {
    /// The scope's newest memories.
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object a line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The scope's memories most relevant to a query, best first.
    Search {
        #[command(flatten)]
        scope: ScopeArgs,
        query: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Adds a memory to the scope.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        text: String,
    },
    /// Deletes one memory of the scope, or all of them with --all.
    Delete {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The memory's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every memory of the scope.
        #[arg(long)]
        all: bool,
    },
    /// Prints every memory of the scope, oldest first, one JSON object a line.
    Export {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Reads an export (a file, or - for standard input) into the scope.
    Import {
        #[command(flatten)]
        scope: ScopeArgs,
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct ScopeArgs {
    /// The user whose memories these are.
    #[arg(long)]
    user: String,
    /// The project (as the gateway records it, e.g. the working directory); none: the
    /// user's memories outside any project.
    #[arg(long)]
    project: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Scope {
        Scope { user: self.user.clone(), project: self.project.clone() }
    }
}

pub fn run(config: &Config, command: MemoryCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(execute(config, command, &mut std::io::stdout().lock()))
}

/// Runs `command`, writing what it prints to `out`.
pub async fn execute(config: &Config, command: MemoryCommand, out: &mut impl Write) -> anyhow::Result<()> {
    let database = Database::open(&config.database_path)?;
    let backend_config = config.memory.as_ref().map_or(&MemoryBackend::Local, |memory| &memory.backend);
    // Meaning needs the model only to search; what is added is embedded by the gateway.
    // An embedding model of model_list is the running gateway's to call: here, words.
    let searching = matches!(command, MemoryCommand::Search { .. });
    let model = config.memory.as_ref().map(|m| &m.embedding_model).filter(|_| searching);
    let embedder = match model {
        Some(EmbeddingModel::Local) if *backend_config == MemoryBackend::Local => memory::embedding::load_default(),
        Some(EmbeddingModel::Deployment(name)) => {
            eprintln!("note: searching by words only (the gateway calls the embedding model `{name}`)");
            None
        }
        _ => None,
    };
    let memories = Memories { local: MemoryStore::open(&database, embedder)?, supermemory: Supermemory::new() };
    let backend = memories.backend(backend_config);
    match command {
        MemoryCommand::List { scope, limit, json } => print(out, &backend.list(&scope.scope(), limit).await?, json)?,
        MemoryCommand::Search { scope, query, limit, json } => {
            print(out, &backend.search(&scope.scope(), &query, limit).await?, json)?;
        }
        MemoryCommand::Add { scope, text } => {
            let text = text.trim();
            if text.is_empty() {
                bail!("the memory has no text");
            }
            let id = backend.add(NewMemory::new(scope.scope(), None, None, text)).await?;
            writeln!(out, "{id}")?;
        }
        MemoryCommand::Delete { scope, id: Some(id), .. } => {
            if !backend.delete(&scope.scope(), id.clone()).await? {
                bail!("no memory `{id}` in {}", scope.scope().path());
            }
            writeln!(out, "deleted {id}")?;
        }
        MemoryCommand::Delete { scope, id: None, .. } => match backend.delete_scope(&scope.scope()).await? {
            Some(count) => writeln!(out, "deleted {count} memories of {}", scope.scope().path())?,
            None => writeln!(out, "deleted every memory of {}", scope.scope().path())?,
        },
        MemoryCommand::Export { scope } => {
            for memory in backend.all(&scope.scope()).await? {
                writeln!(out, "{}", serde_json::to_string(&memory)?)?;
            }
        }
        MemoryCommand::Import { scope, file } => {
            let mut lines = String::new();
            if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut lines)?;
            } else {
                lines = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            }
            let export = memory::read_export(&scope.scope(), &lines).map_err(anyhow::Error::msg)?;
            let read = export.memories.len();
            let imported = backend.import(export.memories).await?;
            writeln!(
                out,
                "imported {imported} memories into {} ({} there already, {} superseded left out)",
                scope.scope().path(),
                read - imported,
                export.superseded
            )?;
        }
    }
    Ok(())
}

/// Memories as JSON lines, or as a table: id, time, score, text on one line.
fn print(out: &mut impl Write, memories: &[Stored], json: bool) -> anyhow::Result<()> {
    for memory in memories {
        if json {
            writeln!(out, "{}", serde_json::to_string(memory)?)?;
            continue;
        }
        let when = crate::services::analytics::query::timestamp_of(memory.created_at);
        let score = memory.score.map_or_else(String::new, |s| format!(" {s:.2}"));
        let superseded = if memory.superseded_by.is_some() { " (superseded)" } else { "" };
        let text: String = memory.text.replace('\n', " ⏎ ").chars().take(160).collect();
        writeln!(out, "{}  {when}{score}{superseded}  {text}", memory.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(subcommand)]
        command: MemoryCommand,
    }

    fn command(args: &str) -> MemoryCommand {
        Args::try_parse_from(std::iter::once("memory").chain(args.split(' '))).unwrap().command
    }

    async fn run(config: &Config, args: &str) -> String {
        let mut out = Vec::new();
        execute(config, command(args), &mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn a_scope_is_managed_from_the_command_line() {
        let dir = std::env::temp_dir().join(format!("mp-cli-{}", uuid::Uuid::now_v7()));
        let yaml = format!(
            "general_settings: {{database_url: {}}}\nmemory: {{embedding_model: none}}\n",
            dir.join("m.db").display()
        );
        let config = Config::parse(&yaml, &|_| None, &dir).unwrap().config;

        let id = run(&config, "add --user ana --project /srv/shop Deploys_happen_on_Fridays").await;
        run(&config, "add --user ana --project /srv/shop The_cat_is_Miso").await;
        run(&config, "add --user bo Bo_drinks_tea").await;
        let listed = run(&config, "list --user ana --project /srv/shop").await;
        assert_eq!(listed.lines().count(), 2, "{listed}");
        assert!(listed.lines().next().unwrap().ends_with("The_cat_is_Miso"), "newest first: {listed}");
        assert!(run(&config, "list --user ana").await.is_empty(), "the project is part of the scope");
        let found = run(&config, "search --user ana --project /srv/shop fridays").await;
        assert!(found.lines().count() == 1 && found.contains("Deploys_happen_on_Fridays"), "{found}");

        let export = run(&config, "export --user ana --project /srv/shop").await;
        assert_eq!(export.lines().count(), 2);
        let file = dir.join("ana.jsonl");
        std::fs::write(&file, &export).unwrap();
        let imported = run(&config, &format!("import --user bo {}", file.display())).await;
        assert!(imported.starts_with("imported 2 memories into user/bo (0 there already"), "{imported}");
        let again = run(&config, &format!("import --user bo {}", file.display())).await;
        assert!(again.starts_with("imported 0 memories into user/bo (2 there already"), "{again}");
        assert_eq!(run(&config, "list --user bo --json").await.lines().count(), 3);

        run(&config, &format!("delete --user ana --project /srv/shop {}", id.trim())).await;
        let wrong_scope = execute(&config, command(&format!("delete --user bo {}", id.trim())), &mut Vec::new()).await;
        assert!(wrong_scope.is_err(), "another scope's id deletes nothing");
        assert_eq!(run(&config, "delete --user bo --all").await, "deleted 3 memories of user/bo\n");
        assert_eq!(run(&config, "list --user ana --project /srv/shop").await.lines().count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
