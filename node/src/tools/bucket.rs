//! `skein tools bucket ls | inspect | verify`: look at the blocks of a
//! bucket as the store role sees them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use skein_actors::store::tools::{BlockState, inspect_block, list_blocks, verify_block};
use skein_objstore::{Bucket, ObjstoreConfig, ObjstoreMetrics, Ulid};

#[derive(Debug, Args)]
pub struct BucketArgs {
    /// The bucket's objstore.yml (Thanos format: type + config).
    #[arg(
        long = "objstore.config-file",
        env = "SKEIN_OBJSTORE_CONFIG_FILE",
        value_name = "FILE"
    )]
    pub objstore_config_file: PathBuf,

    #[command(subcommand)]
    pub command: BucketCommand,
}

#[derive(Debug, Subcommand)]
pub enum BucketCommand {
    /// List blocks: id, time range, external labels, size, state (partial,
    /// marked for deletion).
    Ls,
    /// Show one block's meta.json, index summary and files.
    Inspect {
        #[arg(value_name = "ULID")]
        id: String,
    },
    /// Check blocks: index structure, every chunk's CRC and samples, and the
    /// counts in meta.json. Exits non-zero if any block is broken.
    Verify {
        /// Blocks to check; all complete blocks when none is given.
        #[arg(value_name = "ULID")]
        ids: Vec<String>,
    },
}

fn parse_id(s: &str) -> anyhow::Result<Ulid> {
    s.parse::<Ulid>()
        .map_err(|e| anyhow::anyhow!("{s:?} is not a block id (ULID): {e}"))
}

pub fn run(a: BucketArgs) -> anyhow::Result<()> {
    let cfg = ObjstoreConfig::from_file(&a.objstore_config_file)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let bucket = Bucket::from_config(&cfg, ObjstoreMetrics::register(&mut Default::default()))?;
        match a.command {
            BucketCommand::Ls => ls(&bucket).await,
            BucketCommand::Inspect { id } => {
                let r = inspect_block(&bucket, parse_id(&id)?).await?;
                println!("{r}");
                Ok(())
            }
            BucketCommand::Verify { ids } => verify(&bucket, ids).await,
        }
    })
}

async fn ls(bucket: &Bucket) -> anyhow::Result<()> {
    let blocks = list_blocks(bucket).await?;
    for b in &blocks {
        println!("{b}");
    }
    println!("{} block(s)", blocks.len());
    Ok(())
}

async fn verify(bucket: &Bucket, ids: Vec<String>) -> anyhow::Result<()> {
    let ids: Vec<Ulid> = if ids.is_empty() {
        list_blocks(bucket)
            .await?
            .into_iter()
            .filter(|b| b.state == BlockState::Complete)
            .map(|b| b.id)
            .collect()
    } else {
        ids.iter().map(|s| parse_id(s)).collect::<Result<_, _>>()?
    };
    let mut broken = 0;
    for id in &ids {
        match verify_block(bucket, *id).await {
            Ok(r) => {
                if !r.is_ok() {
                    broken += 1;
                }
                println!("{r}");
            }
            Err(e) => {
                broken += 1;
                println!("{id}: cannot verify: {e}");
            }
        }
    }
    println!("{} block(s) checked, {broken} broken", ids.len());
    if broken > 0 {
        anyhow::bail!("{broken} broken block(s)");
    }
    Ok(())
}
