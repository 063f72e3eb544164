//! `warrenctl`, the rabbitmqctl of Warren: rabbitmqctl's commands, arguments, output and
//! exit codes, carried out over the management HTTP API (so it works against Warren and
//! against RabbitMQ's management plugin alike).
//!
//! This file owns the command line (clap) and the exit; [`commands`] carries the
//! commands out, [`client`] talks HTTP, [`format`] prints, [`config`] finds the broker.

mod client;
mod commands;
mod config;
mod error;
mod format;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::{Failure, EX_USAGE};
use crate::format::Out;

#[derive(Parser, Debug)]
#[command(
    name = "warrenctl",
    version,
    about = "Manage a Warren (or RabbitMQ) broker through its management HTTP API, as rabbitmqctl does.",
    after_help = "Connection settings come from --url/--user/--password, then WARRENCTL_URL/WARRENCTL_USER/WARRENCTL_PASSWORD, \
                  then the config file (--config, WARRENCTL_CONFIG, or ~/.config/warrenctl.toml: url = \"...\", user = \"...\", password = \"...\"), \
                  then http://localhost:15672 as guest/guest.\n\
                  Exit codes are rabbitmqctl's: 64 usage, 65 data error (e.g. missing vhost), 67 no such user, \
                  69 broker unavailable or operation refused, 70 internal error or already exists, 75 timeout, \
                  77 credentials refused or missing rights, 78 bad config file."
)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Base URL of the management HTTP API
    #[arg(long, global = true, env = "WARRENCTL_URL")]
    url: Option<String>,
    /// User to authenticate as
    #[arg(long, global = true, env = "WARRENCTL_USER")]
    user: Option<String>,
    /// Password of that user
    #[arg(
        long,
        global = true,
        env = "WARRENCTL_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,
    /// Config file with url, user and password
    #[arg(long, global = true, env = "WARRENCTL_CONFIG")]
    config: Option<PathBuf>,
    /// Virtual host of vhost-scoped commands
    #[arg(short = 'p', long = "vhost", global = true, default_value = "/")]
    vhost: String,
    /// Suppress informational messages
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Suppress informational messages and table header rows
    #[arg(short, long, global = true)]
    silent: bool,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Formatter::Table)]
    formatter: Formatter,
    /// Do not print the header row of tables
    #[arg(long, global = true)]
    no_table_headers: bool,
    /// How long to wait for each answer of the broker, in seconds
    #[arg(short = 't', long, global = true, default_value_t = 60)]
    timeout: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Formatter {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
#[command(rename_all = "snake_case")]
pub enum Command {
    /// Show the status of the node
    Status,
    /// List queues of a vhost (columns: name messages by default)
    ListQueues { columns: Vec<String> },
    /// List exchanges of a vhost (columns: name type by default)
    ListExchanges { columns: Vec<String> },
    /// List bindings of a vhost
    ListBindings { columns: Vec<String> },
    /// List client connections (pid is the connection's name)
    ListConnections { columns: Vec<String> },
    /// List channels (pid is the channel's name)
    ListChannels { columns: Vec<String> },
    /// List consumers of a vhost (channel_pid is the channel's name)
    ListConsumers { columns: Vec<String> },
    /// List users and their tags
    ListUsers,
    /// List virtual hosts (columns: name by default)
    ListVhosts { columns: Vec<String> },
    /// List the users' permissions in a vhost
    ListPermissions,
    /// List the policies of a vhost
    ListPolicies,
    /// Create a user
    AddUser {
        username: String,
        // Not `password`: that id is the global --password's.
        #[arg(value_name = "PASSWORD")]
        new_user_password: String,
    },
    /// Delete a user
    DeleteUser { username: String },
    /// Change a user's password
    ChangePassword {
        username: String,
        new_password: String,
    },
    /// Set a user's tags (none clears them)
    SetUserTags { username: String, tags: Vec<String> },
    /// Create a virtual host
    AddVhost {
        #[arg(value_name = "VHOST")]
        name: String,
        /// Description of the vhost
        #[arg(long)]
        description: Option<String>,
        /// Comma-separated tags of the vhost
        #[arg(long)]
        tags: Option<String>,
    },
    /// Delete a virtual host and everything in it
    DeleteVhost {
        #[arg(value_name = "VHOST")]
        name: String,
    },
    /// Set a user's configure, write and read permissions in a vhost
    SetPermissions {
        username: String,
        conf: String,
        write: String,
        read: String,
    },
    /// Revoke a user's permissions in a vhost
    ClearPermissions { username: String },
    /// Set a policy in a vhost
    SetPolicy {
        name: String,
        pattern: String,
        /// The policy's definition, a JSON object
        definition: String,
        /// Priority among the policies matching a name
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i64,
        /// What the policy applies to: queues, exchanges or all
        #[arg(long = "apply-to", default_value = "all")]
        apply_to: String,
    },
    /// Remove a policy from a vhost
    ClearPolicy { name: String },
    /// Remove every ready message of a queue
    PurgeQueue { queue: String },
    /// Delete a queue
    DeleteQueue {
        queue: String,
        /// Only if the queue has no consumers
        #[arg(short = 'u', long = "if-unused")]
        if_unused: bool,
        /// Only if the queue has no messages
        #[arg(short = 'e', long = "if-empty")]
        if_empty: bool,
    },
    /// Close a connection (named as list_connections name or pid shows it)
    CloseConnection {
        #[arg(value_name = "CONNECTION")]
        name: String,
        explanation: String,
    },
    /// Export definitions (users, vhosts, permissions, policies, queues, exchanges, bindings) to a file, or to standard output with -
    ExportDefinitions {
        path: String,
        /// Only json is supported
        #[arg(long, default_value = "json", value_parser = ["json"])]
        format: String,
    },
    /// Import definitions from a file, or from standard input with -
    ImportDefinitions {
        #[arg(default_value = "-")]
        path: String,
        /// Only json is supported
        #[arg(long, default_value = "json", value_parser = ["json"])]
        format: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let g = &cli.global;
    let json = g.formatter == Formatter::Json;
    let out = Out {
        json,
        info: !(g.quiet || g.silent),
        headers: !(g.silent || g.no_table_headers),
    };
    match run(&cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({"message": f.message, "result": "error"})
                );
            } else if f.invalid_arguments {
                eprintln!("Error (argument validation): {}", f.message);
            } else {
                eprintln!("Error:\n{}", f.message);
            }
            ExitCode::from(f.code as u8)
        }
    }
}

fn run(cli: &Cli, out: &Out) -> Result<(), Failure> {
    let g = &cli.global;
    let file = match config::locate(g.config.as_deref()) {
        Some(p) => config::load(&p)?,
        None => config::FileConfig::default(),
    };
    let url = g.url.clone().or(file.url);
    let user = g.user.clone().or(file.user);
    let password = g.password.clone().or(file.password);
    let client = client::Client::new(
        url.as_deref().unwrap_or(config::DEFAULT_URL),
        user.as_deref().unwrap_or("guest"),
        password.as_deref().unwrap_or("guest"),
        Duration::from_secs(g.timeout.max(1)),
    )?;
    commands::Ctx {
        client,
        out,
        vhost: g.vhost.clone(),
        timeout: g.timeout,
    }
    .run(&cli.command)
}
