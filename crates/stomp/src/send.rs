//! SEND: the destination resolved (and a `/queue/` declared, as RabbitMQ does), the
//! headers mapped to properties, a `/temp-queue/` in `reply-to` made real, the message
//! routed; RECEIPTs, held until the message is on disk when it is persistent and routed
//! to a durable queue (RabbitMQ sends a SEND's receipt on its publisher confirm).

use std::collections::VecDeque;
use std::sync::Arc;

use warren_amqp_codec::{FieldTable, FieldValue, PropertiesView, ShortStr};
use warren_core::vhost::QueueDeclare;
use warren_core::{BrokerError, Consumer, Credit};
use warren_stomp_codec::{Command, Frame, Version};
use warren_store::Message;
use warren_websocket::Outbound;

use crate::authz;
use crate::connection::{erl, write_frame, Conn, Fail};
use crate::delivery::SubInfo;
use crate::destination::{self, Destination, Invalid};
use crate::headers::{self, boolean};
use crate::transaction::TxAction;

/// RECEIPTs owed, in frame order; a SEND's may wait for a commit epoch.
#[derive(Default)]
pub(crate) struct Receipts {
    pending: VecDeque<(String, Option<u64>)>,
    waiting: usize,
}

impl Receipts {
    pub fn push(&mut self, id: String, epoch: Option<u64>) {
        self.waiting += usize::from(epoch.is_some());
        self.pending.push_back((id, epoch));
    }

    pub fn waiting(&self) -> bool {
        self.waiting > 0
    }

    pub fn flush(&mut self, out: &Outbound, version: Version, done: u64) {
        while let Some((_, epoch)) = self.pending.front() {
            if epoch.is_some_and(|e| e > done) {
                break;
            }
            let (id, epoch) = self.pending.pop_front().expect("front");
            self.waiting -= usize::from(epoch.is_some());
            write_frame(
                out,
                version,
                &Frame::new(Command::Receipt).with_header("receipt-id", id),
            );
        }
    }
}

/// The queue a destination declares, from its headers (RabbitMQ's `build_params`,
/// `build_arguments` and `queue_declare_method`).
pub(crate) fn queue_declare(
    f: &Frame,
    name: String,
    durable_default: bool,
    topic_like: bool,
) -> QueueDeclare {
    let durable = boolean(f, "persistent")
        .or(boolean(f, "durable"))
        .unwrap_or(durable_default);
    let (mut exclusive, mut auto_delete) = if durable {
        (false, false)
    } else {
        (true, true)
    };
    if topic_like {
        exclusive = false;
        auto_delete = true;
    }
    if let Some(e) = boolean(f, "exclusive") {
        exclusive = e;
    }
    if let Some(a) = boolean(f, "auto-delete") {
        auto_delete = a;
    }
    let mut arguments = FieldTable::new();
    for k in [
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-queue-type",
    ] {
        if let Some(v) = f.header_str(k) {
            arguments.insert(k, FieldValue::from(v.trim()));
        }
    }
    for k in [
        "x-expires",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-message-ttl",
    ] {
        if let Some(n) = f.header_str(k).and_then(|v| v.trim().parse::<i64>().ok()) {
            arguments.insert(k, FieldValue::I64(n));
        }
    }
    QueueDeclare {
        name,
        durable,
        exclusive,
        auto_delete,
        arguments,
        ..Default::default()
    }
}

/// Parses the `destination` header of `command`.
pub(crate) fn destination_of(f: &Frame, command: &str) -> Result<(String, Destination), Fail> {
    let Some(raw) = f.header_str("destination") else {
        return Err(Fail::error(
            "Missing destination",
            format!("{} must include a 'destination' header\n", erl(command)),
        ));
    };
    match destination::parse(raw) {
        Ok(d) => Ok((raw.to_string(), d)),
        Err(Invalid::Invalid { kind, content }) => Err(Fail::error(
            "Invalid destination",
            format!("'{content}' is not a valid {kind} destination\n"),
        )),
        Err(Invalid::Unknown(d)) => Err(Fail::error(
            "Unknown destination",
            format!(
                "'{d}' is not a valid destination.\nValid destination types are: {}.\n",
                destination::ALL_PREFIXES
            ),
        )),
    }
}

/// A message ready to publish (kept by a transaction until COMMIT).
pub(crate) struct Outgoing {
    pub exchange: String,
    pub msg: Arc<Message>,
}

impl Conn {
    pub(crate) fn send(&mut self, f: Frame) -> Result<Option<u64>, Fail> {
        if f.header("message-id").is_some() {
            return Err(Fail::error(
                "Invalid header",
                "'message-id' is not allowed on 'SEND'.\n",
            ));
        }
        let (raw, dest) = destination_of(&f, "SEND")?;
        match &dest {
            Destination::Queue(n) if n.is_empty() => {
                return Err(Fail::error(
                    "Invalid destination",
                    "Destination cannot be blank",
                ))
            }
            // Declared once per connection, as RabbitMQ's route state does.
            Destination::Queue(n) if !self.declared.contains(n) => {
                let d = queue_declare(&f, n.clone(), true, false);
                self.vhost
                    .declare_queue_checked(
                        &d,
                        self.id,
                        &authz::declare_check(&self.access, &d.arguments),
                    )
                    .map_err(Fail::broker)?;
                self.declared.insert(n.clone());
            }
            Destination::TempQueue(_) => {
                return Err(Fail::error(
                    "Invalid destination",
                    format!("'{raw}' is not a valid destination for 'SEND'\n"),
                ))
            }
            _ => {}
        }
        let reply_to = self.ensure_reply_to(&f)?;
        let (exchange, key) = dest.routing();
        let props = headers::to_properties(&f, reply_to.as_deref()).to_bytes();
        let view = PropertiesView::parse(&props).unwrap_or_default();
        if let Some(exp) = &view.expiration {
            if exp.parse::<u64>().is_err() {
                return Err(Fail::broker(BrokerError::precondition_failed(format!(
                    "invalid expiration '{exp}': no_integer"
                ))));
            }
        }
        if key.len() > 255 {
            return Err(Fail::error(
                "Invalid destination",
                "routing key longer than 255 bytes",
            ));
        }
        let msg = Arc::new(Message::new(
            ShortStr::from(exchange.as_str()),
            ShortStr::from(key.as_str()),
            props,
            &view,
            f.body.clone(),
        ));
        let out = Outgoing { exchange, msg };
        if let Some(tx) = f.header_str("transaction") {
            let Some(actions) = self.transactions.get_mut(tx) else {
                return Err(Fail::error(
                    "Bad transaction",
                    format!("Invalid transaction identifier: {}\n", erl(tx)),
                ));
            };
            actions.push(TxAction::Send(
                out,
                f.header_str("receipt").map(str::to_string),
            ));
            return Ok(None);
        }
        self.publish(out)
    }

    /// Routes a message. `Ok(Some(epoch))`: it is on disk once that epoch is done.
    pub(crate) fn publish(&mut self, o: Outgoing) -> Result<Option<u64>, Fail> {
        // `basic.publish`, in RabbitMQ's order: write permission, the exchange, internal,
        // topic permission.
        authz::check_write(&self.access, &o.exchange).map_err(Fail::broker)?;
        let exchange = self.vhost.exchange(&o.exchange).map_err(Fail::broker)?;
        if exchange.internal {
            return Err(Fail::broker(BrokerError::access_refused(format!(
                "cannot publish to internal exchange '{}' in vhost '{}'",
                o.exchange, self.vhost.name
            ))));
        }
        authz::check_topic_write(&self.access, &exchange, o.msg.routing_key.as_str())
            .map_err(Fail::broker)?;
        self.channel.count_publish();
        let p = self.vhost.publish(&exchange, o.msg, &mut self.route_buf);
        Ok(p.sync)
    }

    /// A `/temp-queue/<id>` in `reply-to` becomes a private queue this connection
    /// consumes, and the header its name (RabbitMQ's `ensure_reply_to`).
    fn ensure_reply_to(&mut self, f: &Frame) -> Result<Option<String>, Fail> {
        let Some(Ok(Destination::TempQueue(id))) = f.header_str("reply-to").map(destination::parse)
        else {
            return Ok(None);
        };
        if let Some(q) = self.reply_queues.get(&id) {
            return Ok(Some(q.clone()));
        }
        let d = QueueDeclare {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let (q, _, _) = self
            .vhost
            .declare_queue_checked(
                &d,
                self.id,
                &authz::declare_check(&self.access, &d.arguments),
            )
            .map_err(Fail::broker)?;
        if let Err(e) = authz::check_consume(&self.access, &q.name) {
            let _ = self.vhost.delete_queue(&q.name, false, false, self.id);
            return Err(e);
        }
        let ctag = format!("T_/temp-queue/{id}");
        self.sink.state.lock().subs.insert(
            ctag.clone(),
            SubInfo {
                id: Some(format!("/temp-queue/{id}")),
                client_ack: false,
            },
        );
        let consumer = Arc::new(Consumer {
            tag: ShortStr::from(ctag.as_str()),
            connection: self.id,
            channel: 1,
            no_ack: true,
            exclusive: false,
            priority: 0,
            arguments: Default::default(),
            credit: Credit::new(0),
            channel_credit: Arc::new(Credit::new(0)),
            sink: self.sink.clone(),
        });
        self.vhost
            .consume(&q, consumer.clone())
            .map_err(Fail::broker)?;
        self.out.add_consumed_queue(q.clone());
        self.subs.insert(
            ctag,
            crate::connection::Sub {
                dest_hdr: format!("/temp-queue/{id}"),
                queue: q.clone(),
                multi_ack: false,
            },
        );
        self.reply_queues.insert(id, q.name.clone());
        q.dispatch();
        Ok(Some(q.name.clone()))
    }
}
