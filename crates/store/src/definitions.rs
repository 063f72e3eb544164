//! The durable definitions — users, vhosts, permissions, topic permissions, policies,
//! runtime and global parameters, exchanges, queues, bindings — kept in RabbitMQ's
//! definitions JSON format, so the same document can be exported, imported into RabbitMQ,
//! and read back.
//!
//! On disk: `definitions.json`, a snapshot written atomically (temporary file, fsync,
//! rename, directory fsync), and `definitions.journal`, one JSON operation per line
//! appended since the snapshot. Journal lines are synced by the group committer, so a
//! publisher confirm for a message in a freshly declared durable queue is only sent once
//! the declaration is on disk too. The journal is folded into a new snapshot at start-up
//! and whenever it grows long.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::committer::{Committer, SyncFile};

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn default_hashing() -> String {
    "rabbit_password_hashing_sha256".into()
}

/// RabbitMQ 3.10 exports tags as "a,b", later versions as ["a","b"]: accept both.
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Tags>::deserialize(d)? {
        None => Vec::new(),
        Some(Tags::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        Some(Tags::Many(v)) => v,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDef {
    pub name: String,
    pub password_hash: String,
    #[serde(default = "default_hashing")]
    pub hashing_algorithm: String,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
    #[serde(default = "empty_object")]
    pub limits: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VhostDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "tags")]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PermissionDef {
    pub user: String,
    pub vhost: String,
    pub configure: String,
    pub write: String,
    pub read: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDef {
    pub name: String,
    pub vhost: String,
    pub durable: bool,
    pub auto_delete: bool,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Warren's own addition: AMQP types of arguments JSON would not preserve (RabbitMQ
    /// ignores the key on import).
    #[serde(
        default,
        rename = "x-warren-types",
        skip_serializing_if = "Option::is_none"
    )]
    pub argument_types: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeDef {
    pub name: String,
    pub vhost: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Warren's own addition: AMQP types of arguments JSON would not preserve (RabbitMQ
    /// ignores the key on import).
    #[serde(
        default,
        rename = "x-warren-types",
        skip_serializing_if = "Option::is_none"
    )]
    pub argument_types: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingDef {
    pub source: String,
    pub vhost: String,
    pub destination: String,
    pub destination_type: String,
    pub routing_key: String,
    #[serde(default = "empty_object")]
    pub arguments: Value,
    /// Warren's own addition: AMQP types of arguments JSON would not preserve (RabbitMQ
    /// ignores the key on import).
    #[serde(
        default,
        rename = "x-warren-types",
        skip_serializing_if = "Option::is_none"
    )]
    pub argument_types: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDef {
    pub vhost: String,
    pub name: String,
    pub pattern: String,
    #[serde(rename = "apply-to", default = "default_apply_to")]
    pub apply_to: String,
    #[serde(default = "empty_object")]
    pub definition: Value,
    #[serde(default)]
    pub priority: i64,
}

fn default_apply_to() -> String {
    "all".into()
}

/// A topic permission: what a user may publish (`write`) and bind or consume (`read`)
/// through one topic exchange, as routing-key expressions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPermissionDef {
    pub user: String,
    pub vhost: String,
    pub exchange: String,
    pub write: String,
    pub read: String,
}

/// A runtime parameter of a vhost (operator policies and vhost limits are parameters,
/// as in RabbitMQ). Fields in the order RabbitMQ exports them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterDef {
    pub value: Value,
    pub vhost: String,
    pub component: String,
    pub name: String,
}

/// A global runtime parameter (`cluster_name`, `internal_cluster_id`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalParameterDef {
    pub name: String,
    pub value: Value,
}

/// A definitions document, as `GET /api/definitions` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbit_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rabbitmq_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_version: Option<String>,
    #[serde(default)]
    pub users: Vec<UserDef>,
    #[serde(default)]
    pub vhosts: Vec<VhostDef>,
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
    #[serde(default)]
    pub topic_permissions: Vec<TopicPermissionDef>,
    #[serde(default)]
    pub parameters: Vec<ParameterDef>,
    #[serde(default)]
    pub global_parameters: Vec<GlobalParameterDef>,
    /// Kept as raw JSON (RabbitMQ's format); [`Definitions::policy_defs`] reads them.
    #[serde(default)]
    pub policies: Vec<Value>,
    #[serde(default)]
    pub queues: Vec<QueueDef>,
    #[serde(default)]
    pub exchanges: Vec<ExchangeDef>,
    #[serde(default)]
    pub bindings: Vec<BindingDef>,
}

/// One change to the durable topology (a journal line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    PutVhost(VhostDef),
    DeleteVhost {
        name: String,
    },
    PutUser(UserDef),
    DeleteUser {
        name: String,
    },
    PutPermission(PermissionDef),
    DeletePermission {
        user: String,
        vhost: String,
    },
    PutQueue(QueueDef),
    DeleteQueue {
        vhost: String,
        name: String,
    },
    PutExchange(ExchangeDef),
    DeleteExchange {
        vhost: String,
        name: String,
    },
    PutBinding(BindingDef),
    DeleteBinding(BindingDef),
    PutPolicy(PolicyDef),
    DeletePolicy {
        vhost: String,
        name: String,
    },
    PutTopicPermission(TopicPermissionDef),
    /// One exchange's, or (`exchange` None) all of a user's in a vhost.
    DeleteTopicPermission {
        user: String,
        vhost: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exchange: Option<String>,
    },
    PutParameter(ParameterDef),
    DeleteParameter {
        vhost: String,
        component: String,
        name: String,
    },
    PutGlobalParameter(GlobalParameterDef),
    DeleteGlobalParameter {
        name: String,
    },
}

fn upsert<T>(v: &mut Vec<T>, item: T, same: impl Fn(&T) -> bool) {
    match v.iter_mut().find(|x| same(x)) {
        Some(slot) => *slot = item,
        None => v.push(item),
    }
}

impl Definitions {
    /// The policies that parse (others are skipped with a warning).
    pub fn policy_defs(&self) -> Vec<PolicyDef> {
        self.policies
            .iter()
            .filter_map(|v| match serde_json::from_value(v.clone()) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping a policy that does not parse");
                    None
                }
            })
            .collect()
    }

    pub fn apply(&mut self, op: Op) {
        match op {
            Op::PutVhost(d) => {
                let n = d.name.clone();
                upsert(&mut self.vhosts, d, |x| x.name == n)
            }
            Op::DeleteVhost { name } => {
                self.vhosts.retain(|x| x.name != name);
                self.permissions.retain(|x| x.vhost != name);
                self.topic_permissions.retain(|x| x.vhost != name);
                self.parameters.retain(|x| x.vhost != name);
                self.policies.retain(|x| x["vhost"] != name.as_str());
                self.queues.retain(|x| x.vhost != name);
                self.exchanges.retain(|x| x.vhost != name);
                self.bindings.retain(|x| x.vhost != name);
            }
            Op::PutUser(d) => {
                let n = d.name.clone();
                upsert(&mut self.users, d, |x| x.name == n)
            }
            Op::DeleteUser { name } => {
                self.users.retain(|x| x.name != name);
                self.permissions.retain(|x| x.user != name);
                self.topic_permissions.retain(|x| x.user != name);
            }
            Op::PutPermission(d) => {
                let (u, v) = (d.user.clone(), d.vhost.clone());
                upsert(&mut self.permissions, d, |x| x.user == u && x.vhost == v)
            }
            Op::DeletePermission { user, vhost } => self
                .permissions
                .retain(|x| !(x.user == user && x.vhost == vhost)),
            Op::PutQueue(d) => {
                let (n, v) = (d.name.clone(), d.vhost.clone());
                upsert(&mut self.queues, d, |x| x.name == n && x.vhost == v)
            }
            Op::DeleteQueue { vhost, name } => {
                self.queues
                    .retain(|x| !(x.name == name && x.vhost == vhost));
                self.bindings.retain(|b| {
                    !(b.vhost == vhost && b.destination_type == "queue" && b.destination == name)
                });
            }
            Op::PutExchange(d) => {
                let (n, v) = (d.name.clone(), d.vhost.clone());
                upsert(&mut self.exchanges, d, |x| x.name == n && x.vhost == v)
            }
            Op::DeleteExchange { vhost, name } => {
                self.exchanges
                    .retain(|x| !(x.name == name && x.vhost == vhost));
                self.bindings.retain(|b| {
                    !(b.vhost == vhost
                        && (b.source == name
                            || (b.destination_type == "exchange" && b.destination == name)))
                });
            }
            Op::PutBinding(d) => {
                if !self.bindings.contains(&d) {
                    self.bindings.push(d)
                }
            }
            Op::DeleteBinding(d) => self.bindings.retain(|x| *x != d),
            Op::PutPolicy(d) => {
                let same =
                    |x: &Value| x["name"] == d.name.as_str() && x["vhost"] == d.vhost.as_str();
                let v = serde_json::to_value(&d).expect("policy serialises");
                match self.policies.iter_mut().find(|x| same(x)) {
                    Some(slot) => *slot = v,
                    None => self.policies.push(v),
                }
            }
            Op::DeletePolicy { vhost, name } => self
                .policies
                .retain(|x| !(x["name"] == name.as_str() && x["vhost"] == vhost.as_str())),
            Op::PutTopicPermission(d) => {
                let (u, v, x) = (d.user.clone(), d.vhost.clone(), d.exchange.clone());
                upsert(&mut self.topic_permissions, d, |t| {
                    t.user == u && t.vhost == v && t.exchange == x
                })
            }
            Op::DeleteTopicPermission {
                user,
                vhost,
                exchange,
            } => self.topic_permissions.retain(|t| {
                !(t.user == user
                    && t.vhost == vhost
                    && exchange.as_ref().is_none_or(|x| *x == t.exchange))
            }),
            Op::PutParameter(d) => {
                let (v, c, n) = (d.vhost.clone(), d.component.clone(), d.name.clone());
                upsert(&mut self.parameters, d, |p| {
                    p.vhost == v && p.component == c && p.name == n
                })
            }
            Op::DeleteParameter {
                vhost,
                component,
                name,
            } => self
                .parameters
                .retain(|p| !(p.vhost == vhost && p.component == component && p.name == name)),
            Op::PutGlobalParameter(d) => {
                let n = d.name.clone();
                upsert(&mut self.global_parameters, d, |p| p.name == n)
            }
            Op::DeleteGlobalParameter { name } => self.global_parameters.retain(|p| p.name != name),
        }
    }
}

struct Journal {
    file: Arc<SyncFile>,
    lines: usize,
    defs: Definitions,
}

/// The durable topology on disk, and its in-memory mirror.
pub struct DefinitionsStore {
    dir: PathBuf,
    committer: Arc<Committer>,
    journal: Mutex<Journal>,
}

const SNAPSHOT: &str = "definitions.json";
const JOURNAL: &str = "definitions.journal";

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl DefinitionsStore {
    /// Loads the snapshot and replays the journal. `None` for a data directory that has
    /// never held definitions (first start).
    pub fn open(
        dir: &Path,
        committer: Arc<Committer>,
    ) -> io::Result<(DefinitionsStore, Option<Definitions>)> {
        fs::create_dir_all(dir)?;
        let snap = dir.join(SNAPSHOT);
        let jpath = dir.join(JOURNAL);
        let mut found = false;
        let mut defs = match fs::read(&snap) {
            Ok(raw) => {
                found = true;
                serde_json::from_slice(&raw).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", snap.display()),
                    )
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Definitions::default(),
            Err(e) => return Err(e),
        };
        if let Ok(f) = File::open(&jpath) {
            found = true;
            let mut n = 0;
            for (i, line) in BufReader::new(f).lines().enumerate() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Op>(&line) {
                    Ok(op) => {
                        defs.apply(op);
                        n += 1;
                    }
                    // Only the last line can be torn by a crash; anything after it would be
                    // unreadable too.
                    Err(e) => {
                        tracing::warn!(line = i + 1, error = %e, "ignoring a torn definitions journal line");
                        break;
                    }
                }
            }
            tracing::debug!(ops = n, "definitions journal replayed");
        }
        let store = DefinitionsStore {
            dir: dir.to_path_buf(),
            journal: Mutex::new(Journal {
                file: SyncFile::new(File::create(dir.join("definitions.journal.new"))?),
                lines: 0,
                defs: Definitions::default(),
            }),
            committer,
        };
        // Fold what was read into a fresh snapshot and start an empty journal.
        {
            let mut j = store.journal.lock();
            j.defs = defs.clone();
            store.compact_locked(&mut j)?;
        }
        let _ = fs::remove_file(dir.join("definitions.journal.new"));
        Ok((store, found.then_some(defs)))
    }

    /// Records a change. Returns the commit epoch after which it is on disk.
    pub fn append(&self, op: Op) -> io::Result<u64> {
        let mut line = serde_json::to_vec(&op).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut j = self.journal.lock();
        (&j.file.file).write_all(&line)?;
        j.defs.apply(op);
        j.lines += 1;
        let epoch = self.committer.mark(&j.file);
        if j.lines > 10_000 + 2 * (j.defs.queues.len() + j.defs.bindings.len()) {
            self.compact_locked(&mut j)?;
        }
        Ok(epoch)
    }

    /// The durable topology as it stands.
    pub fn current(&self) -> Definitions {
        self.journal.lock().defs.clone()
    }

    fn compact_locked(&self, j: &mut Journal) -> io::Result<()> {
        let raw = serde_json::to_vec_pretty(&j.defs).map_err(io::Error::other)?;
        write_atomic(&self.dir.join(SNAPSHOT), &raw)?;
        let jpath = self.dir.join(JOURNAL);
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&jpath)?;
        f.sync_all()?;
        j.file = SyncFile::new(OpenOptions::new().append(true).open(&jpath)?);
        j.lines = 0;
        Ok(())
    }

    /// Folds the journal into the snapshot (at shutdown).
    pub fn compact(&self) -> io::Result<()> {
        let mut j = self.journal.lock();
        self.compact_locked(&mut j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> QueueDef {
        QueueDef {
            name: name.into(),
            vhost: "/".into(),
            durable: true,
            auto_delete: false,
            arguments: serde_json::json!({"x-message-ttl": 1000}),
            argument_types: None,
        }
    }

    #[test]
    fn journal_survives_reopen_and_deletes_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let c = Committer::start();
        let (s, first) = DefinitionsStore::open(dir.path(), c.clone()).unwrap();
        assert!(first.is_none());
        s.append(Op::PutQueue(queue("a"))).unwrap();
        s.append(Op::PutQueue(queue("b"))).unwrap();
        s.append(Op::PutBinding(BindingDef {
            source: "amq.direct".into(),
            vhost: "/".into(),
            destination: "a".into(),
            destination_type: "queue".into(),
            routing_key: "k".into(),
            arguments: empty_object(),
            argument_types: None,
        }))
        .unwrap();
        s.append(Op::DeleteQueue {
            vhost: "/".into(),
            name: "a".into(),
        })
        .unwrap();
        c.sync_now();
        drop(s);
        let (_, defs) = DefinitionsStore::open(dir.path(), c.clone()).unwrap();
        let defs = defs.unwrap();
        assert_eq!(defs.queues, vec![queue("b")]);
        assert!(defs.bindings.is_empty());
        c.stop();
    }

    #[test]
    fn topic_permissions_and_parameters_replay_and_cascade() {
        let dir = tempfile::tempdir().unwrap();
        let c = Committer::start();
        let (s, _) = DefinitionsStore::open(dir.path(), c.clone()).unwrap();
        let tp = |user: &str, vhost: &str, x: &str| TopicPermissionDef {
            user: user.into(),
            vhost: vhost.into(),
            exchange: x.into(),
            write: "^w".into(),
            read: "^r".into(),
        };
        let param = |vhost: &str, name: &str, v: i64| ParameterDef {
            value: serde_json::json!({"max-connections": v}),
            vhost: vhost.into(),
            component: "vhost-limits".into(),
            name: name.into(),
        };
        for op in [
            Op::PutTopicPermission(tp("u", "/", "amq.topic")),
            Op::PutTopicPermission(tp("u", "/", "t2")),
            Op::PutTopicPermission(tp("u", "v", "amq.topic")),
            Op::PutTopicPermission(tp("w", "/", "amq.topic")),
            Op::DeleteTopicPermission {
                user: "u".into(),
                vhost: "/".into(),
                exchange: Some("t2".into()),
            },
            Op::DeleteUser { name: "w".into() },
            Op::PutParameter(param("/", "limits", 1)),
            Op::PutParameter(param("/", "limits", 2)),
            Op::PutParameter(param("v", "limits", 3)),
            Op::DeleteVhost { name: "v".into() },
            Op::PutGlobalParameter(GlobalParameterDef {
                name: "cluster_name".into(),
                value: "c1".into(),
            }),
            Op::PutGlobalParameter(GlobalParameterDef {
                name: "other".into(),
                value: 1.into(),
            }),
            Op::DeleteGlobalParameter {
                name: "other".into(),
            },
        ] {
            s.append(op).unwrap();
        }
        c.sync_now();
        drop(s);
        let (_, defs) = DefinitionsStore::open(dir.path(), c.clone()).unwrap();
        let defs = defs.unwrap();
        assert_eq!(defs.topic_permissions, vec![tp("u", "/", "amq.topic")]);
        assert_eq!(defs.parameters, vec![param("/", "limits", 2)]);
        assert_eq!(
            defs.global_parameters,
            vec![GlobalParameterDef {
                name: "cluster_name".into(),
                value: "c1".into()
            }]
        );
        c.stop();
    }

    #[test]
    fn rabbitmq_310_export_parses() {
        let raw = r#"{"rabbit_version":"3.10.8","users":[{"name":"guest",
            "password_hash":"x","hashing_algorithm":"rabbit_password_hashing_sha256",
            "tags":"administrator","limits":{}}],"vhosts":[{"name":"/"}],
            "permissions":[{"user":"guest","vhost":"/","configure":".*","write":".*","read":".*"}],
            "queues":[{"name":"q","vhost":"/","durable":true,"auto_delete":false,"arguments":{}}],
            "exchanges":[],"bindings":[]}"#;
        let d: Definitions = serde_json::from_str(raw).unwrap();
        assert_eq!(d.users[0].tags, vec!["administrator".to_string()]);
        assert_eq!(d.queues.len(), 1);
    }
}
