//! Where the broker keeps things on disk, and the translation between the broker's
//! objects and the durable definitions.
//!
//! Layout under the data directory:
//! ```text
//! definitions.json, definitions.journal   durable definitions (RabbitMQ's format)
//! queues/<hash>/                          one durable queue: NNNNNNNN.seg, acks, meta.json
//! transient/<n>/                          non-durable queues' segments, wiped at start
//! ```
//!
//! Older versions kept topic permissions, runtime and global parameters and the cluster
//! name in `management.json`; [`Storage::take_legacy_management`] hands its content over
//! once, to be journaled, and the file goes.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use warren_amqp_codec::FieldTable;
use warren_store::acklog::Flusher;
use warren_store::committer::Committer;
use warren_store::definitions::{
    BindingDef, Definitions, DefinitionsStore, ExchangeDef, Op, QueueDef,
};
use warren_store::disk::{DiskOptions, DiskQueueStore};
use warren_store::json::{table_to_json, table_types};
use warren_store::priority::{LevelOpener, PriorityStore};
use warren_store::QueueStore;

use crate::exchange::{Destination, Exchange};
use crate::queue::Queue;
use crate::registry::QueueChurn;

pub struct Storage {
    pub data_dir: PathBuf,
    pub segment_size: u32,
    pub committer: Arc<Committer>,
    pub flusher: Arc<Flusher>,
    pub defs: DefinitionsStore,
    next_transient: AtomicU64,
    /// The last run did not end with a clean shutdown.
    pub after_crash: bool,
    /// Reply to a durable topology change only once it is on disk (`--sync-topology`).
    pub sync_topology: bool,
    /// Queue churn counters. Here because the storage handle is what every vhost shares
    /// with its broker; the registry reports them.
    pub queue_churn: Arc<QueueChurn>,
}

/// The file older versions kept part of the definitions in.
const LEGACY_MANAGEMENT: &str = "management.json";

/// Present while the broker is stopped cleanly; removed at start.
const CLEAN_MARKER: &str = "clean-shutdown";

fn hex_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Storage {
    /// Opens the data directory; returns the durable definitions found there (`None` on a
    /// first start).
    pub fn open(
        data_dir: &Path,
        segment_size: u32,
        sync_topology: bool,
    ) -> io::Result<(Arc<Storage>, Option<Definitions>)> {
        fs::create_dir_all(data_dir)?;
        let transient = data_dir.join("transient");
        if transient.exists() {
            fs::remove_dir_all(&transient)?;
        }
        fs::create_dir_all(&transient)?;
        fs::create_dir_all(data_dir.join("queues"))?;
        let marker = data_dir.join(CLEAN_MARKER);
        let first_start = !data_dir.join("definitions.json").exists();
        let after_crash = !first_start && !marker.exists();
        if marker.exists() {
            fs::remove_file(&marker)?;
        }
        if after_crash {
            tracing::warn!(dir = %data_dir.display(), "the broker did not stop cleanly last time: recovering");
        }
        let committer = Committer::start();
        let flusher = Flusher::start(Duration::from_millis(20));
        let (defs, found) = DefinitionsStore::open(data_dir, committer.clone())?;
        Ok((
            Arc::new(Storage {
                data_dir: data_dir.to_path_buf(),
                segment_size,
                committer,
                flusher,
                defs,
                next_transient: AtomicU64::new(1),
                after_crash,
                sync_topology,
                queue_churn: Default::default(),
            }),
            found,
        ))
    }

    /// The content of an older version's `management.json`, if there is one (JSON with
    /// `cluster_name`, `topic_permissions`, `parameters`, `global_parameters`). The caller
    /// journals it, then calls [`Storage::legacy_management_migrated`].
    pub fn take_legacy_management(&self) -> Option<serde_json::Value> {
        let path = self.data_dir.join(LEGACY_MANAGEMENT);
        let raw = fs::read(&path).ok()?;
        match serde_json::from_slice(&raw) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read the old management state; leaving it in place");
                None
            }
        }
    }

    /// Removes `management.json` once what it held is in the journal (and on disk).
    pub fn legacy_management_migrated(&self) {
        self.committer.sync_now();
        let path = self.data_dir.join(LEGACY_MANAGEMENT);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "old management state moved into the definitions journal")
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot remove the old management state")
            }
        }
    }

    pub fn durable_queue_dir(&self, vhost: &str, name: &str) -> PathBuf {
        self.data_dir.join("queues").join(hex_hash(&[vhost, name]))
    }

    /// Opens the store for a queue: a durable one recovers what its directory holds. A
    /// priority queue gets one store per level, in `p<level>` subdirectories.
    pub fn queue_store(
        &self,
        vhost: &str,
        name: &str,
        durable: bool,
        max_priority: Option<u8>,
    ) -> io::Result<Box<dyn QueueStore>> {
        let dir = if durable {
            self.durable_queue_dir(vhost, name)
        } else {
            let n = self.next_transient.fetch_add(1, Ordering::Relaxed);
            self.data_dir.join("transient").join(n.to_string())
        };
        let opts = DiskOptions {
            segment_size: self.segment_size,
            durable,
            committer: durable.then(|| self.committer.clone()),
            flusher: durable.then(|| self.flusher.clone()),
            after_crash: self.after_crash,
            memory_tail: true,
        };
        if !durable && dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir_all(&dir)?;
        if durable {
            let meta = serde_json::json!({"vhost": vhost, "name": name});
            fs::write(dir.join("meta.json"), meta.to_string())?;
        }
        let Some(max) = max_priority else {
            return Ok(Box::new(DiskQueueStore::open(&dir, opts)?));
        };
        let existing: Vec<u8> = fs::read_dir(&dir)?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix('p')?.parse().ok())
            .collect();
        let opener: LevelOpener = Box::new(move |level| {
            Ok(Box::new(DiskQueueStore::open(
                &dir.join(format!("p{level}")),
                opts.clone(),
            )?) as Box<dyn QueueStore>)
        });
        Ok(Box::new(PriorityStore::open(max, &existing, opener)?))
    }

    /// Opens (recovering) a stream queue's log. Streams are durable, and every append is
    /// synced by the committer before its confirm.
    pub fn stream_log(
        &self,
        vhost: &str,
        name: &str,
        settings: &crate::settings::QueueSettings,
    ) -> io::Result<warren_store::stream::StreamLog> {
        let dir = self.durable_queue_dir(vhost, name);
        fs::create_dir_all(&dir)?;
        let meta = serde_json::json!({"vhost": vhost, "name": name, "type": "stream"});
        fs::write(dir.join("meta.json"), meta.to_string())?;
        warren_store::stream::StreamLog::open(
            &dir,
            warren_store::stream::StreamOptions {
                segment_bytes: settings.stream_segment,
                committer: Some(self.committer.clone()),
            },
            settings.stream_retention,
        )
    }

    /// Options for a store under `dir` that never keeps messages in memory (delayed
    /// messages), durable or not.
    pub fn disk_options(&self, durable: bool, memory_tail: bool) -> DiskOptions {
        DiskOptions {
            segment_size: self.segment_size,
            durable,
            committer: durable.then(|| self.committer.clone()),
            flusher: durable.then(|| self.flusher.clone()),
            after_crash: self.after_crash,
            memory_tail,
        }
    }

    /// Where a delayed-message exchange keeps its pending messages.
    pub fn delayed_dir(&self, vhost: &str, exchange: &str, durable: bool) -> PathBuf {
        if durable {
            self.data_dir
                .join("delayed")
                .join(hex_hash(&[vhost, exchange]))
        } else {
            let n = self.next_transient.fetch_add(1, Ordering::Relaxed);
            self.data_dir.join("transient").join(format!("delayed-{n}"))
        }
    }

    /// Removes durable queue and delayed-exchange directories no definition refers to
    /// (left by a queue, exchange or vhost deleted while the broker was down, or by a
    /// crash between the two steps).
    pub fn remove_orphans(&self, defs: &Definitions) {
        let queues: HashSet<String> = defs
            .queues
            .iter()
            .map(|q| hex_hash(&[&q.vhost, &q.name]))
            .collect();
        let delayed: HashSet<String> = defs
            .exchanges
            .iter()
            .filter(|x| x.kind == "x-delayed-message")
            .map(|x| hex_hash(&[&x.vhost, &x.name]))
            .collect();
        for (sub, keep, what) in [
            ("queues", &queues, "queue"),
            ("delayed", &delayed, "delayed exchange"),
        ] {
            let Ok(entries) = fs::read_dir(self.data_dir.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    tracing::warn!(dir = %e.path().display(), "removing the files of a {what} that no longer exists");
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Records a durable topology change. A failure is logged: the change stands in
    /// memory, and the error surfaces again at the next write.
    pub fn journal(&self, op: Op) {
        match self.defs.append(op) {
            Err(e) => tracing::error!(error = %e, "cannot write the definitions journal"),
            // By default a change becomes durable with the next commit round, before any
            // confirm that depends on it; with `sync_topology` the caller waits for it
            // (declarations are rare, and this is the setting for those who want the
            // reply itself to mean "on disk").
            Ok(epoch) if self.sync_topology => self.committer.wait_for(epoch),
            Ok(_) => {}
        }
    }

    /// Makes everything durable before the process exits.
    pub fn shutdown(&self) {
        self.flusher.flush_all();
        self.committer.stop();
        if let Err(e) = self.defs.compact() {
            tracing::error!(error = %e, "cannot write the definitions snapshot");
            return;
        }
        if let Err(e) = fs::write(self.data_dir.join(CLEAN_MARKER), b"") {
            tracing::error!(error = %e, "cannot mark the clean shutdown");
        }
    }
}

pub fn queue_def(q: &Queue) -> QueueDef {
    QueueDef {
        name: q.name.clone(),
        vhost: q.vhost.clone(),
        durable: q.durable,
        auto_delete: q.auto_delete,
        arguments: table_to_json(&q.arguments),
        argument_types: table_types(&q.arguments),
    }
}

pub fn exchange_def(e: &Exchange) -> ExchangeDef {
    ExchangeDef {
        name: e.name.clone(),
        vhost: e.vhost.clone(),
        kind: e.type_name().into(),
        durable: e.durable,
        auto_delete: e.auto_delete,
        internal: e.internal,
        arguments: table_to_json(&e.arguments),
        argument_types: table_types(&e.arguments),
    }
}

pub fn binding_def(
    source: &Exchange,
    dest: &Destination,
    routing_key: &str,
    args: &FieldTable,
) -> BindingDef {
    BindingDef {
        source: source.name.clone(),
        vhost: source.vhost.clone(),
        destination: dest.name().to_string(),
        destination_type: dest.kind().into(),
        routing_key: routing_key.into(),
        arguments: table_to_json(args),
        argument_types: table_types(args),
    }
}

/// A binding is durable when both its ends are (as in RabbitMQ).
pub fn binding_is_durable(source: &Exchange, dest: &Destination) -> bool {
    source.durable
        && match dest {
            Destination::Queue(q) => q.durable,
            Destination::Exchange(e) => e.durable,
        }
}
