//! `concord-server`: run the relay (alone or as a cluster node), operate a cluster, or issue
//! access tokens.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use concord_server::auth::{issue, Claims};
use concord_server::ServerConfig;

#[derive(Parser)]
#[command(name = "concord-server", version, about = "Concord sync relay")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// TOML file with the settings below (flags override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8787].
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Where the SQLite database lives [default: ./concord-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Require signed access tokens (HS256) made with this secret.
    #[arg(long, env = "CONCORD_AUTH_SECRET")]
    auth_secret: Option<String>,
    /// Largest accepted frame in bytes [default: 4194304]. Larger frames get a
    /// frame_too_large error up to 64 MiB; above that the connection is closed (code 1009).
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Frames queued for one connection before it is closed as too slow [default: 4096].
    #[arg(long)]
    max_queue: Option<usize>,
    /// Take a document's checkpoint (its saved state, which loading starts from and
    /// catch-up snapshots are) after this many updates [default: 256].
    #[arg(long, alias = "snapshot-every")]
    checkpoint_every: Option<u64>,
    /// Serve the files of this directory on the client port (e.g. `web-demo`: the demo app
    /// at http://127.0.0.1:8787/).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// Close a connection that sends nothing (no frame, no pong to the relay's pings) for
    /// this many seconds, and a sync connection without a Hello by then [default: 45].
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay (the default). With a `[cluster]` section in --config, as a cluster node.
    Serve,
    /// Operate a cluster through a node's cluster port.
    Cluster {
        /// A node's cluster address, e.g. http://127.0.0.1:9801.
        #[arg(long, env = "CONCORD_CLUSTER_NODE")]
        node: String,
        /// The cluster's shared secret.
        #[arg(long, env = "CONCORD_CLUSTER_SECRET")]
        secret: String,
        #[command(subcommand)]
        op: ClusterOp,
    },
    /// Print a signed access token.
    Token {
        /// The secret the server runs with.
        #[arg(long, env = "CONCORD_AUTH_SECRET")]
        secret: String,
        /// Document ids or prefixes ending in '*', comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        docs: Vec<String>,
        /// read or write.
        #[arg(long, default_value = "write")]
        right: String,
        /// Lifetime in seconds (at least 1).
        #[arg(long, default_value_t = 86_400, value_name = "SECS", value_parser = parse_ttl)]
        ttl: u64,
        /// Subject (who the token is for).
        #[arg(long, default_value = "")]
        sub: String,
    },
    /// Print a JSON digest of a (stopped) node's database: per document its kind, version
    /// vector and every logged update as (log index, origin, seq, hash), for comparing
    /// replicas offline.
    Digest {
        /// The node's data dir (holding concord.db).
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum ClusterOp {
    /// Initialise a new cluster with the peers in that node's config.
    Init,
    /// Add a node: a learner until it has caught up, then a voter.
    Add {
        #[arg(long)]
        id: u64,
        /// Its client address (host:port).
        #[arg(long)]
        client: String,
        /// Its cluster address (host:port).
        #[arg(long)]
        cluster: String,
    },
    /// Remove a node from the voters.
    Remove {
        #[arg(long)]
        id: u64,
    },
    /// The node's view: role, term, leader, positions, followers' lag.
    Status,
    /// Ask node `id` to take over leadership.
    TransferLeader {
        #[arg(long)]
        id: u64,
    },
}

async fn operate(node: &str, secret: &str, op: ClusterOp) -> anyhow::Result<()> {
    use concord_server::cluster::{AddNode, NodeRef};
    use concord_server::operator::call;
    let none: Option<&()> = None;
    let answer = match op {
        ClusterOp::Init => call(node, secret, "/admin/init", Some(&())).await?,
        ClusterOp::Add {
            id,
            client,
            cluster,
        } => {
            let add = AddNode {
                id,
                client,
                cluster,
            };
            call(node, secret, "/admin/add", Some(&add)).await?
        }
        ClusterOp::Remove { id } => {
            call(node, secret, "/admin/remove", Some(&NodeRef { id })).await?
        }
        ClusterOp::Status => call(node, secret, "/cluster", none).await?,
        ClusterOp::TransferLeader { id } => {
            call(
                node,
                secret,
                "/admin/transfer-leader",
                Some(&NodeRef { id }),
            )
            .await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

/// `--ttl`: a whole number of seconds, at least 1 (a token with no lifetime is expired
/// before it is used).
fn parse_ttl(raw: &str) -> Result<u64, String> {
    match raw.parse::<u64>() {
        Ok(0) => Err("the token lifetime must be at least 1 second".into()),
        Ok(ttl) => Ok(ttl),
        Err(_) => Err("expected a whole number of seconds (at least 1)".into()),
    }
}

fn server_config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = &args.data_dir {
        config.data_dir = v.clone();
    }
    if let Some(v) = &args.auth_secret {
        config.auth_secret = Some(v.clone());
    }
    if let Some(v) = args.max_frame_bytes {
        config.max_frame_bytes = v;
    }
    if let Some(v) = args.max_queue {
        config.max_queue = v;
    }
    if let Some(v) = args.checkpoint_every {
        config.checkpoint_every = v;
    }
    if let Some(v) = &args.static_dir {
        config.static_dir = Some(v.clone());
    }
    if let Some(v) = args.idle_timeout_secs {
        config.idle_timeout_secs = v;
    }
    Ok(config)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what service managers send).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("can listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| concord_server::cluster::DEFAULT_LOG_FILTER.into()),
                )
                .init();
            let config = server_config(&cli.serve)?;
            Ok(concord_server::serve(config, shutdown_signal()).await?)
        }
        Command::Cluster { node, secret, op } => operate(&node, &secret, op).await,
        Command::Token {
            secret,
            docs,
            right,
            ttl,
            sub,
        } => {
            anyhow::ensure!(
                right == "read" || right == "write",
                "--right must be read or write"
            );
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let token = issue(
                secret.as_bytes(),
                &Claims {
                    sub,
                    docs,
                    right,
                    exp: now.saturating_add(ttl),
                },
            )
            .context("cannot sign token")?;
            println!("{token}");
            Ok(())
        }
        Command::Digest { data_dir } => {
            let db = data_dir.join("concord.db");
            anyhow::ensure!(db.is_file(), "no database at {}", db.display());
            let digest = concord_server::storage::Storage::digest_file(&db)
                .with_context(|| format!("cannot read {}", db.display()))?;
            println!("{}", serde_json::to_string(&digest)?);
            Ok(())
        }
    }
}
