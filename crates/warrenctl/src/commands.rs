//! The commands: which API calls each makes, its informational line, its columns, and
//! how the API's answers become rabbitmqctl's messages and exit codes.
//!
//! Warren has no Erlang pids: where rabbitmqctl shows a connection's or channel's pid
//! (`list_connections pid`, `list_channels pid`, `list_consumers channel_pid`), warrenctl
//! shows its name, which is also what `close_connection` takes.

use std::io::Read;

use serde_json::{json, Value};

use crate::client::{seg, Client, Response};
use crate::error::{Failure, Result, EX_DATAERR, EX_NOUSER, EX_SOFTWARE, EX_UNAVAILABLE, EX_USAGE};
use crate::format::{plain, Column, Kind, Out, Src};
use crate::Command;

const fn key(name: &'static str) -> Column {
    Column {
        name,
        src: Src::Key(name),
        kind: Kind::Plain,
    }
}

const fn from(name: &'static str, src: Src) -> Column {
    Column {
        name,
        src,
        kind: Kind::Plain,
    }
}

const fn table(name: &'static str) -> Column {
    Column {
        name,
        src: Src::Key(name),
        kind: Kind::Table,
    }
}

/// A listing's columns: those that can be asked for, and those shown by default.
struct Listing {
    columns: &'static [Column],
    default: &'static [&'static str],
}

const QUEUES: Listing = Listing {
    columns: &[
        table("arguments"),
        key("auto_delete"),
        key("consumer_capacity"),
        key("consumer_utilisation"),
        key("consumers"),
        key("durable"),
        key("exclusive"),
        key("exclusive_consumer_tag"),
        key("head_message_timestamp"),
        from("leader", Src::Key("node")),
        key("memory"),
        key("message_bytes"),
        key("message_bytes_persistent"),
        key("message_bytes_ram"),
        key("message_bytes_ready"),
        key("message_bytes_unacknowledged"),
        key("messages"),
        key("messages_persistent"),
        key("messages_ram"),
        key("messages_ready"),
        key("messages_ready_ram"),
        key("messages_unacknowledged"),
        key("messages_unacknowledged_ram"),
        key("name"),
        key("policy"),
        key("state"),
        key("type"),
    ],
    default: &["name", "messages"],
};

const EXCHANGES: Listing = Listing {
    columns: &[
        table("arguments"),
        key("auto_delete"),
        key("durable"),
        key("internal"),
        key("name"),
        key("policy"),
        key("type"),
    ],
    default: &["name", "type"],
};

const BINDINGS: Listing = Listing {
    columns: &[
        from("source_name", Src::Key("source")),
        from("source_kind", Src::Fixed("exchange")),
        from("destination_name", Src::Key("destination")),
        from("destination_kind", Src::Key("destination_type")),
        key("routing_key"),
        table("arguments"),
    ],
    default: &[
        "source_name",
        "source_kind",
        "destination_name",
        "destination_kind",
        "routing_key",
        "arguments",
    ],
};

const CONNECTIONS: Listing = Listing {
    columns: &[
        key("auth_mechanism"),
        key("channel_max"),
        key("channels"),
        table("client_properties"),
        key("connected_at"),
        key("frame_max"),
        key("host"),
        key("name"),
        key("peer_cert_issuer"),
        key("peer_cert_subject"),
        key("peer_cert_validity"),
        key("peer_host"),
        key("peer_port"),
        from("pid", Src::Key("name")),
        key("port"),
        key("protocol"),
        key("recv_cnt"),
        key("recv_oct"),
        key("send_cnt"),
        key("send_oct"),
        key("send_pend"),
        key("ssl"),
        key("ssl_cipher"),
        key("ssl_hash"),
        key("ssl_key_exchange"),
        key("ssl_protocol"),
        key("state"),
        key("timeout"),
        key("user"),
        key("vhost"),
    ],
    default: &["user", "peer_host", "peer_port", "state"],
};

const CHANNELS: Listing = Listing {
    columns: &[
        key("acks_uncommitted"),
        key("confirm"),
        from("connection", Src::Nested("connection_details", "name")),
        key("consumer_count"),
        key("global_prefetch_count"),
        key("messages_unacknowledged"),
        key("messages_uncommitted"),
        key("messages_unconfirmed"),
        key("name"),
        key("number"),
        from("pid", Src::Key("name")),
        key("prefetch_count"),
        key("transactional"),
        key("user"),
        key("vhost"),
    ],
    default: &["pid", "user", "consumer_count", "messages_unacknowledged"],
};

const CONSUMERS: Listing = Listing {
    columns: &[
        key("ack_required"),
        key("active"),
        key("activity_status"),
        table("arguments"),
        from("channel_pid", Src::Nested("channel_details", "name")),
        key("consumer_tag"),
        key("prefetch_count"),
        from("queue_name", Src::Nested("queue", "name")),
    ],
    default: &[
        "queue_name",
        "channel_pid",
        "consumer_tag",
        "ack_required",
        "prefetch_count",
        "active",
        "arguments",
    ],
};

const VHOSTS: Listing = Listing {
    columns: &[
        key("cluster_state"),
        key("default_queue_type"),
        key("description"),
        key("name"),
        key("tags"),
        key("tracing"),
    ],
    default: &["name"],
};

const USERS: &[Column] = &[from("user", Src::Key("name")), key("tags")];

const PERMISSIONS: &[Column] = &[key("user"), key("configure"), key("write"), key("read")];

const POLICIES: &[Column] = &[
    key("vhost"),
    key("name"),
    key("pattern"),
    key("apply-to"),
    Column {
        name: "definition",
        src: Src::Key("definition"),
        kind: Kind::JsonText,
    },
    key("priority"),
];

impl Listing {
    /// The columns asked for, or rabbitmqctl's usage error naming those it lacks.
    fn select(&self, asked: &[String]) -> Result<Vec<Column>> {
        if asked.is_empty() {
            return Ok(self.default.iter().map(|n| self.find(n).unwrap()).collect());
        }
        // rabbitmqctl takes `name,messages` as well as `name messages`.
        let names: Vec<&str> = asked
            .iter()
            .flat_map(|a| a.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let unknown: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.find(n).is_none())
            .collect();
        if !unknown.is_empty() {
            let valid: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
            return Err(Failure::invalid_arguments(
                EX_USAGE,
                format!(
                    "Info key(s) {} are not supported\nColumns must be some of: {}",
                    unknown.join(","),
                    valid.join(", ")
                ),
            ));
        }
        Ok(names.iter().map(|n| self.find(n).unwrap()).collect())
    }

    fn find(&self, name: &str) -> Option<Column> {
        self.columns.iter().find(|c| c.name == name).copied()
    }
}

pub struct Ctx<'a> {
    pub client: Client,
    pub out: &'a Out,
    pub vhost: String,
    pub timeout: u64,
}

fn not_found(r: &Response) -> bool {
    r.status == 404
}

impl Ctx<'_> {
    pub fn run(&self, cmd: &Command) -> Result<()> {
        let v = self.vhost.as_str();
        let vs = seg(v);
        match cmd {
            Command::Status => self.status(),
            Command::ListQueues { columns } => {
                let cols = QUEUES.select(columns)?;
                self.out
                    .info(&format!("Timeout: {:.1} seconds ...", self.timeout as f64));
                self.out.info(&format!("Listing queues for vhost {v} ..."));
                self.list_in_vhost(&format!("/api/queues/{vs}"), &cols)
            }
            Command::ListExchanges { columns } => {
                let cols = EXCHANGES.select(columns)?;
                self.out
                    .info(&format!("Listing exchanges for vhost {v} ..."));
                self.list_in_vhost(&format!("/api/exchanges/{vs}"), &cols)
            }
            Command::ListBindings { columns } => {
                let cols = BINDINGS.select(columns)?;
                self.out.info(&format!("Listing bindings for vhost {v}..."));
                self.list_in_vhost(&format!("/api/bindings/{vs}"), &cols)
            }
            Command::ListConnections { columns } => {
                let cols = CONNECTIONS.select(columns)?;
                self.out.info("Listing connections ...");
                self.list("/api/connections", &cols)
            }
            Command::ListChannels { columns } => {
                let cols = CHANNELS.select(columns)?;
                self.out.info("Listing channels ...");
                self.list("/api/channels", &cols)
            }
            Command::ListConsumers { columns } => {
                let cols = CONSUMERS.select(columns)?;
                self.out
                    .info(&format!("Listing consumers in vhost {v} ..."));
                self.list_in_vhost(&format!("/api/consumers/{vs}"), &cols)
            }
            Command::ListUsers => {
                self.out.info("Listing users ...");
                self.list("/api/users", USERS)
            }
            Command::ListVhosts { columns } => {
                let cols = VHOSTS.select(columns)?;
                self.out.info("Listing vhosts ...");
                self.list("/api/vhosts", &cols)
            }
            Command::ListPermissions => {
                self.out
                    .info(&format!("Listing permissions for vhost \"{v}\" ..."));
                self.list_in_vhost(&format!("/api/vhosts/{vs}/permissions"), PERMISSIONS)
            }
            Command::ListPolicies => {
                self.out
                    .info(&format!("Listing policies for vhost \"{v}\" ..."));
                self.list_in_vhost(&format!("/api/policies/{vs}"), POLICIES)
            }
            Command::AddUser {
                username,
                new_user_password,
            } => self.add_user(username, new_user_password),
            Command::DeleteUser { username } => {
                self.out.info(&format!("Deleting user \"{username}\" ..."));
                let r = self
                    .client
                    .delete(&format!("/api/users/{}", seg(username)))?;
                self.expect_done(&r, || no_user(username))
            }
            Command::ChangePassword {
                username,
                new_password,
            } => {
                self.out
                    .info(&format!("Changing password for user \"{username}\" ..."));
                let user = self.user(username)?;
                let body = json!({"password": new_password, "tags": user["tags"]});
                let r = self
                    .client
                    .put(&format!("/api/users/{}", seg(username)), &body)?;
                self.expect_done(&r, || no_user(username))
            }
            Command::SetUserTags { username, tags } => self.set_user_tags(username, tags),
            Command::AddVhost {
                name,
                description,
                tags,
            } => {
                self.out.info(&format!("Adding vhost \"{name}\" ..."));
                let mut body = json!({});
                if let Some(d) = description {
                    body["description"] = json!(d);
                }
                if let Some(t) = tags {
                    body["tags"] = json!(t);
                }
                let r = self
                    .client
                    .put(&format!("/api/vhosts/{}", seg(name)), &body)?;
                self.expect_done(&r, || r.unexpected())
            }
            Command::DeleteVhost { name } => {
                self.out.info(&format!("Deleting vhost \"{name}\" ..."));
                let r = self.client.delete(&format!("/api/vhosts/{}", seg(name)))?;
                self.expect_done(&r, || no_vhost(name))
            }
            Command::SetPermissions {
                username,
                conf,
                write,
                read,
            } => {
                self.out.info(&format!(
                    "Setting permissions for user \"{username}\" in vhost \"{v}\" ..."
                ));
                let body = json!({"configure": conf, "write": write, "read": read});
                let r = self
                    .client
                    .put(&format!("/api/permissions/{vs}/{}", seg(username)), &body)?;
                if r.ok() {
                    return self.done();
                }
                if r.status == 400 && r.reason().contains("vhost_or_user_not_found")
                    || not_found(&r)
                {
                    return Err(self.which_is_missing(username, EX_UNAVAILABLE)?);
                }
                Err(r.unexpected())
            }
            Command::ClearPermissions { username } => {
                self.out.info(&format!(
                    "Clearing permissions for user \"{username}\" in vhost \"{v}\" ..."
                ));
                let r = self
                    .client
                    .delete(&format!("/api/permissions/{vs}/{}", seg(username)))?;
                if r.ok() {
                    return self.done();
                }
                if not_found(&r) {
                    // Nothing to clear is success, as in rabbitmqctl, when both exist.
                    self.which_is_missing(username, EX_DATAERR)
                        .map_or_else(Err, |_| self.done())
                } else {
                    Err(r.unexpected())
                }
            }
            Command::SetPolicy {
                name,
                pattern,
                definition,
                priority,
                apply_to,
            } => {
                self.out.info(&format!(
                    "Setting policy \"{name}\" for pattern \"{pattern}\" to \"{definition}\" \
                     with priority \"{priority}\" for vhost \"{v}\" ..."
                ));
                let def: Value = serde_json::from_str(definition).map_err(|e| {
                    Failure::new(EX_UNAVAILABLE, format!("JSON decoding error. Reason: {e}"))
                })?;
                let body = json!({
                    "pattern": pattern,
                    "definition": def,
                    "priority": priority,
                    "apply-to": apply_to,
                });
                let r = self
                    .client
                    .put(&format!("/api/policies/{vs}/{}", seg(name)), &body)?;
                if r.ok() {
                    return self.done();
                }
                if not_found(&r) || !self.vhost_exists(v)? {
                    return Err(no_vhost(v));
                }
                Err(r.unexpected())
            }
            Command::ClearPolicy { name } => {
                self.out
                    .info(&format!("Clearing policy \"{name}\" on vhost \"{v}\" ..."));
                let r = self
                    .client
                    .delete(&format!("/api/policies/{vs}/{}", seg(name)))?;
                if r.ok() {
                    return self.done();
                }
                if not_found(&r) {
                    if !self.vhost_exists(v)? {
                        return Err(no_vhost(v));
                    }
                    return Err(Failure::new(
                        EX_UNAVAILABLE,
                        format!("Policy \"{name}\" does not exist in vhost \"{v}\""),
                    ));
                }
                Err(r.unexpected())
            }
            Command::PurgeQueue { queue } => {
                self.out
                    .info(&format!("Purging queue '{queue}' in vhost '{v}' ..."));
                let r = self
                    .client
                    .delete(&format!("/api/queues/{vs}/{}/contents", seg(queue)))?;
                self.expect_done(&r, || no_queue(queue, v, EX_UNAVAILABLE))
            }
            Command::DeleteQueue {
                queue,
                if_unused,
                if_empty,
            } => self.delete_queue(queue, *if_unused, *if_empty),
            Command::CloseConnection { name, explanation } => {
                self.out.info(&format!(
                    "Closing connection {name}, reason: {explanation}..."
                ));
                let r = self
                    .client
                    .delete_with_reason(&format!("/api/connections/{}", seg(name)), explanation)?;
                self.expect_done(&r, || {
                    Failure::new(
                        EX_UNAVAILABLE,
                        format!("Connection \"{name}\" does not exist (see list_connections name)"),
                    )
                })
            }
            Command::ExportDefinitions { path, .. } => self.export_definitions(path),
            Command::ImportDefinitions { path, .. } => self.import_definitions(path),
        }
    }

    /// A listing that may span vhosts.
    fn list(&self, path: &str, cols: &[Column]) -> Result<()> {
        let body = self.client.get_ok(path)?;
        self.out.rows(cols, rows_of(&body));
        Ok(())
    }

    /// A listing of one vhost; as rabbitmqctl, a vhost that does not exist has nothing
    /// to list.
    fn list_in_vhost(&self, path: &str, cols: &[Column]) -> Result<()> {
        let r = self.client.get(path)?;
        if not_found(&r) {
            self.out.rows(cols, &[]);
            return Ok(());
        }
        if !r.ok() {
            return Err(r.unexpected());
        }
        self.out.rows(cols, rows_of(&r.body));
        Ok(())
    }

    /// Success of a command that returns nothing (`{"result":"ok"}` in JSON).
    fn done(&self) -> Result<()> {
        if self.out.json {
            println!("{}", json!({"result": "ok"}));
        }
        Ok(())
    }

    fn expect_done(&self, r: &Response, missing: impl FnOnce() -> Failure) -> Result<()> {
        if r.ok() {
            self.done()
        } else if not_found(r) {
            Err(missing())
        } else {
            Err(r.unexpected())
        }
    }

    fn user(&self, name: &str) -> Result<Value> {
        let r = self.client.get(&format!("/api/users/{}", seg(name)))?;
        if not_found(&r) {
            return Err(no_user(name));
        }
        if !r.ok() {
            return Err(r.unexpected());
        }
        Ok(r.body)
    }

    fn vhost_exists(&self, name: &str) -> Result<bool> {
        let r = self.client.get(&format!("/api/vhosts/{}", seg(name)))?;
        if r.ok() || not_found(&r) {
            Ok(r.ok())
        } else {
            Err(r.unexpected())
        }
    }

    /// After the API said "vhost or user not found": which one, as rabbitmqctl says it
    /// (`Ok` when both exist).
    fn which_is_missing(&self, user: &str, vhost_code: i32) -> Result<Failure> {
        if !self.vhost_exists(&self.vhost)? {
            return Err(Failure::new(
                vhost_code,
                format!("Virtual host {} does not exist", self.vhost),
            ));
        }
        self.user(user)?;
        Ok(Failure::new(
            EX_UNAVAILABLE,
            format!("no permissions of user {user} in vhost {}", self.vhost),
        ))
    }

    fn add_user(&self, name: &str, password: &str) -> Result<()> {
        self.out.info(&format!("Adding user \"{name}\" ..."));
        let path = format!("/api/users/{}", seg(name));
        // The API's PUT would update an existing user; rabbitmqctl refuses instead.
        let existing = self.client.get(&path)?;
        if existing.ok() {
            return Err(Failure::new(
                EX_SOFTWARE,
                format!("User \"{name}\" already exists"),
            ));
        }
        let r = self
            .client
            .put(&path, &json!({"password": password, "tags": ""}))?;
        if !r.ok() {
            return Err(r.unexpected());
        }
        self.out.info(
            "Done. Don't forget to grant the user permissions to some virtual hosts! \
             See 'warrenctl help set_permissions' to learn more.",
        );
        self.done()
    }

    fn set_user_tags(&self, name: &str, tags: &[String]) -> Result<()> {
        self.out.info(&format!(
            "Setting tags for user \"{name}\" to [{}] ...",
            tags.join(", ")
        ));
        let user = self.user(name)?;
        // Carry the password hash over: a PUT without one would change the credentials.
        let body = json!({
            "password_hash": user["password_hash"],
            "hashing_algorithm": user["hashing_algorithm"],
            "tags": tags.join(","),
        });
        let r = self
            .client
            .put(&format!("/api/users/{}", seg(name)), &body)?;
        self.expect_done(&r, || no_user(name))
    }

    fn delete_queue(&self, queue: &str, if_unused: bool, if_empty: bool) -> Result<()> {
        let v = &self.vhost;
        let conditions: Vec<&str> = [
            (if_empty, " if queue is empty"),
            (if_unused, " if queue is unused"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| *s)
        .collect();
        self.out.info(&format!(
            "Deleting queue '{queue}' on vhost '{v}'{} ...",
            conditions.join(" and")
        ));
        let path = format!("/api/queues/{}/{}", seg(v), seg(queue));
        let before = self.client.get(&path)?;
        if not_found(&before) {
            return Err(no_queue(queue, v, EX_USAGE));
        }
        if !before.ok() {
            return Err(before.unexpected());
        }
        let mut query = Vec::new();
        if if_unused {
            query.push("if-unused=true");
        }
        if if_empty {
            query.push("if-empty=true");
        }
        let url = if query.is_empty() {
            path
        } else {
            format!("{path}?{}", query.join("&"))
        };
        let r = self.client.delete(&url)?;
        if not_found(&r) {
            return Err(no_queue(queue, v, EX_USAGE));
        }
        if r.status == 400 {
            // In use or not empty: rabbitmqctl's code for these is 64.
            return Err(Failure::new(EX_USAGE, r.reason()));
        }
        if !r.ok() {
            return Err(r.unexpected());
        }
        let ready = before.body["messages_ready"].as_u64().unwrap_or(0);
        if self.out.json {
            println!("{}", json!({"result": "ok", "messages": ready}));
        } else {
            println!("Queue was successfully deleted with {ready} ready messages");
        }
        Ok(())
    }

    fn export_definitions(&self, path: &str) -> Result<()> {
        let defs = self.client.get_ok("/api/definitions")?;
        let text = defs.to_string();
        if path == "-" {
            println!("{text}");
            return Ok(());
        }
        self.out.info(&format!(
            "Exporting definitions in JSON to a file at \"{path}\" ..."
        ));
        std::fs::write(path, text).map_err(|e| {
            Failure::new(EX_DATAERR, format!("Could not write to file {path}: {e}"))
        })?;
        self.done()
    }

    fn import_definitions(&self, path: &str) -> Result<()> {
        let text = if path == "-" {
            self.out
                .info("Importing definitions in JSON from standard input ...");
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map_err(|e| {
                Failure::new(EX_DATAERR, format!("Could not read standard input: {e}"))
            })?;
            s
        } else {
            let s = std::fs::read_to_string(path).map_err(|e| {
                Failure::invalid_arguments(
                    EX_DATAERR,
                    format!("Bad argument: File {path} cannot be read: {e}"),
                )
            })?;
            self.out.info(&format!(
                "Importing definitions in JSON from a file at \"{path}\" ..."
            ));
            s
        };
        let defs: Value = serde_json::from_str(&text).map_err(|e| {
            Failure::new(
                EX_DATAERR,
                format!("Failed to deserialise input (format: JSON) (error: {e})"),
            )
        })?;
        if !defs.is_object() {
            return Err(Failure::new(
                EX_DATAERR,
                "Failed to deserialise input (format: JSON) (error: not a JSON object)",
            ));
        }
        let r = self.client.post("/api/definitions", &defs)?;
        if !r.ok() {
            return Err(r.unexpected());
        }
        self.out.info("Successfully imported definitions.");
        self.done()
    }

    fn status(&self) -> Result<()> {
        let ov = self.client.get_ok("/api/overview")?;
        let node_name = ov["node"].as_str().unwrap_or_default().to_string();
        let node = self
            .client
            .get_ok(&format!("/api/nodes/{}", seg(&node_name)))?;
        let vhosts = self.client.get_ok("/api/vhosts")?;
        let vhost_count = vhosts.as_array().map_or(0, Vec::len);
        let listeners: Vec<Value> = ov["listeners"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let protocol = l["protocol"].as_str().unwrap_or_default();
                json!({
                    "interface": l["ip_address"],
                    "node": l["node"],
                    "port": l["port"],
                    "protocol": protocol,
                    "purpose": purpose(protocol),
                })
            })
            .collect();
        let mut alarms = Vec::new();
        if node["mem_alarm"].as_bool() == Some(true) {
            alarms.push(json!({"type": "resource", "resource": "memory", "node": node_name}));
        }
        if node["disk_free_alarm"].as_bool() == Some(true) {
            alarms.push(json!({"type": "resource", "resource": "disk", "node": node_name}));
        }
        let os_pid = node["os_pid"]
            .as_str()
            .and_then(|p| p.parse::<u64>().ok())
            .map_or(node["os_pid"].clone(), Value::from);
        let status = json!({
            "pid": os_pid,
            "uptime": node["uptime"].as_u64().unwrap_or(0) / 1000,
            "product_name": ov["product_name"],
            "product_version": ov["product_version"],
            "rabbitmq_version": ov["rabbitmq_version"],
            "release_series_support_status": ov["release_series_support_status"],
            "cluster_name": ov["cluster_name"],
            "node": node_name,
            "processes": {"limit": node["proc_total"], "used": node["proc_used"]},
            "run_queue": node["run_queue"],
            "net_ticktime": node["net_ticktime"],
            "active_plugins": node["enabled_plugins"],
            "data_directory": node["db_dir"],
            "config_files": node["config_files"],
            "log_files": node["log_files"],
            "alarms": alarms,
            "memory": {"total": {"rss": node["mem_used"]}},
            "vm_memory_calculation_strategy": node["mem_calculation_strategy"],
            "vm_memory_high_watermark_limit": node["mem_limit"],
            "file_descriptors": {
                "total_limit": node["fd_total"],
                "total_used": node["fd_used"],
                "sockets_limit": node["sockets_total"],
                "sockets_used": node["sockets_used"],
            },
            "disk_free_limit": node["disk_free_limit"],
            "disk_free": node["disk_free"],
            "totals": {
                "virtual_host_count": vhost_count,
                "connection_count": ov["object_totals"]["connections"],
                "queue_count": ov["object_totals"]["queues"],
            },
            "listeners": listeners,
        });
        if self.out.json {
            println!("{status}");
            return Ok(());
        }
        self.out.info(&format!("Status of node {node_name} ..."));
        print!("{}", status_text(&status));
        Ok(())
    }
}

fn rows_of(body: &Value) -> &[Value] {
    body.as_array().map_or(&[], Vec::as_slice)
}

fn no_user(name: &str) -> Failure {
    Failure::new(EX_NOUSER, format!("User \"{name}\" does not exist"))
}

fn no_vhost(name: &str) -> Failure {
    Failure::new(EX_DATAERR, format!("Virtual host '{name}' does not exist"))
}

fn no_queue(queue: &str, vhost: &str, code: i32) -> Failure {
    Failure::new(
        code,
        format!("Queue not found: '{queue}' in vhost '{vhost}'"),
    )
}

/// RabbitMQ's description of a listener's protocol in `status`.
fn purpose(protocol: &str) -> &'static str {
    match protocol {
        "amqp" => "AMQP 0-9-1 and AMQP 1.0",
        "amqp/ssl" => "AMQP 0-9-1 and AMQP 1.0 over TLS",
        "http" => "HTTP API",
        "http/prometheus" => "Prometheus exporter API over HTTP",
        "mqtt" => "MQTT",
        "stomp" => "STOMP",
        "http/web-mqtt" => "MQTT over WebSockets",
        "http/web-stomp" => "STOMP over WebSockets",
        _ => "",
    }
}

fn gb(bytes: &Value) -> String {
    let b = bytes.as_f64().unwrap_or(0.0);
    format!("{} gb", (b / 1e9 * 10000.0).round() / 10000.0)
}

/// `status` in rabbitmqctl's sections (those the API can fill).
fn status_text(s: &Value) -> String {
    let mut o = String::new();
    let mut line = |l: String| {
        o.push_str(&l);
        o.push('\n');
    };
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| format!(" * {}", plain(x)))
            .collect()
    };
    line("Runtime\n".into());
    line(format!("OS PID: {}", plain(&s["pid"])));
    line(format!("Uptime (seconds): {}", plain(&s["uptime"])));
    line(format!(
        "Product: {} {}",
        plain(&s["product_name"]),
        plain(&s["product_version"])
    ));
    line(format!(
        "RabbitMQ version: {}",
        plain(&s["rabbitmq_version"])
    ));
    line(format!(
        "RabbitMQ release series support status: {}",
        plain(&s["release_series_support_status"])
    ));
    line(format!("Node name: {}", plain(&s["node"])));
    line(format!("Cluster name: {}", plain(&s["cluster_name"])));
    line(format!(
        "Threads: {} used, {} limit",
        plain(&s["processes"]["used"]),
        plain(&s["processes"]["limit"])
    ));
    line(format!(
        "Cluster heartbeat timeout (net_ticktime): {}",
        plain(&s["net_ticktime"])
    ));
    line("\nPlugins\n".into());
    line("Enabled plugins:\n".into());
    list(&s["active_plugins"]).into_iter().for_each(&mut line);
    line("\nData directory\n".into());
    line(format!(
        "Node data directory: {}",
        plain(&s["data_directory"])
    ));
    line("\nConfig files\n".into());
    let configs = list(&s["config_files"]);
    if configs.is_empty() {
        line("(none)".into());
    }
    configs.into_iter().for_each(&mut line);
    line("\nLog file(s)\n".into());
    list(&s["log_files"]).into_iter().for_each(&mut line);
    line("\nAlarms\n".into());
    let alarms = s["alarms"].as_array().cloned().unwrap_or_default();
    if alarms.is_empty() {
        line("(none)".into());
    }
    for a in alarms {
        line(format!(
            "Free {} space alarm on node {}",
            if a["resource"] == "disk" {
                "disk"
            } else {
                "memory"
            },
            plain(&a["node"])
        ));
    }
    line("\nMemory\n".into());
    line(format!(
        "Total memory used: {}",
        gb(&s["memory"]["total"]["rss"])
    ));
    line(format!(
        "Calculation strategy: {}",
        plain(&s["vm_memory_calculation_strategy"])
    ));
    line(format!(
        "Memory high watermark: {}",
        gb(&s["vm_memory_high_watermark_limit"])
    ));
    let fd = &s["file_descriptors"];
    line("\nFile Descriptors\n".into());
    line(format!(
        "Total: {}, limit: {}",
        plain(&fd["total_used"]),
        plain(&fd["total_limit"])
    ));
    line(format!(
        "Sockets: {}, limit: {}",
        plain(&fd["sockets_used"]),
        plain(&fd["sockets_limit"])
    ));
    line("\nFree Disk Space\n".into());
    line(format!(
        "Low free disk space watermark: {}",
        gb(&s["disk_free_limit"])
    ));
    line(format!("Free disk space: {}", gb(&s["disk_free"])));
    let t = &s["totals"];
    line("\nTotals\n".into());
    line(format!(
        "Connection count: {}",
        plain(&t["connection_count"])
    ));
    line(format!("Queue count: {}", plain(&t["queue_count"])));
    line(format!(
        "Virtual host count: {}",
        plain(&t["virtual_host_count"])
    ));
    line("\nListeners\n".into());
    for l in s["listeners"].as_array().into_iter().flatten() {
        line(format!(
            "Interface: {}, port: {}, protocol: {}, purpose: {}",
            plain(&l["interface"]),
            plain(&l["port"]),
            plain(&l["protocol"]),
            plain(&l["purpose"])
        ));
    }
    o
}
