//! SUBSCRIBE and UNSUBSCRIBE, with RabbitMQ's endpoints: a `/queue/` is declared and
//! consumed, a `/topic/` or `/exchange/` subscription gets its own queue bound to the
//! exchange (durable and named after the subscription id when the SUBSCRIBE says
//! `durable:true`), an `/amq/queue/` is consumed as it is.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use warren_amqp_codec::{FieldTable, ShortStr};
use warren_core::access::{Kind, Perm};
use warren_core::{Consumer, Credit, Queue};
use warren_stomp_codec::Frame;

use crate::authz;
use crate::connection::{erl, Conn, Fail, Sub};
use crate::delivery::SubInfo;
use crate::destination::Destination;
use crate::headers::boolean;
use crate::send::{destination_of, queue_declare};

fn has_durable_header(f: &Frame) -> bool {
    boolean(f, "durable") == Some(true) || boolean(f, "persistent") == Some(true)
}

/// A topic or exchange subscription's queue name: from `x-queue-name`, else derived from
/// the destination and the subscription id (random unless durable), as RabbitMQ does.
fn subscription_queue_name(f: &Frame, name: &str) -> String {
    if let Some(n) = f.header_str("x-queue-name") {
        return n.to_string();
    }
    let id = if has_durable_header(f) {
        f.header_str("id").unwrap_or_default().to_string()
    } else {
        format!("{:032x}", rand::random::<u128>())
    };
    let digest = Sha256::digest(format!("{name}\0{id}").as_bytes());
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::from("stomp-subscription-");
    let (mut acc, mut bits) = (0u32, 0);
    for &b in &digest[..16] {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            s.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    s.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    s
}

/// The consumer tag of a SUBSCRIBE or UNSUBSCRIBE (RabbitMQ's `consumer_tag/1`), with
/// the description its errors use.
fn consumer_tag(f: &Frame) -> Result<(String, String), Fail> {
    if let Some(id) = f.header_str("id") {
        if id.starts_with("/temp-queue/") {
            return Err(Fail::error(
                "Invalid id",
                "UNSUBSCRIBE 'id' may not start with /temp-queue/\n",
            ));
        }
        return Ok((format!("T_{id}"), format!("id='{id}'")));
    }
    if let Some(d) = f.header_str("destination") {
        return Ok((format!("Q_{d}"), format!("destination='{d}'")));
    }
    Err(Fail::error(
        "Missing destination or id",
        "UNSUBSCRIBE must include a 'destination' or 'id' header",
    ))
}

impl Conn {
    pub(crate) fn subscribe(&mut self, f: Frame) -> Result<(), Fail> {
        if has_durable_header(&f) && f.header("id").is_none() {
            return Err(Fail::error(
                "Missing Header",
                "Header 'id' is required for durable subscriptions",
            ));
        }
        let (raw, dest) = destination_of(&f, "SUBSCRIBE")?;
        let (no_ack, multi_ack) = match f.header_str("ack").unwrap_or("auto") {
            "client" => (false, true),
            "client-individual" => (false, false),
            _ => (true, false),
        };
        if let Some(n) = f
            .header_str("prefetch-count")
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.prefetch = n;
            self.channel
                .prefetch
                .store(n, std::sync::atomic::Ordering::Relaxed);
        }
        let (queue, binding, server_named): (Arc<Queue>, Option<(String, String)>, bool) =
            match &dest {
                Destination::Queue(n) if n.is_empty() => {
                    return Err(Fail::error(
                        "Invalid destination",
                        "Destination cannot be blank",
                    ))
                }
                Destination::Queue(n) => {
                    let d = queue_declare(&f, n.clone(), true, false);
                    let (q, _, _) = self
                        .vhost
                        .declare_queue_checked(
                            &d,
                            self.id,
                            &authz::declare_check(&self.access, &d.arguments),
                        )
                        .map_err(Fail::broker)?;
                    self.declared.insert(n.clone());
                    (q, None, false)
                }
                Destination::Topic(name) | Destination::Exchange(name, _) => {
                    let qname = subscription_queue_name(&f, name);
                    let d = queue_declare(&f, qname, false, true);
                    let (q, _, _) = self
                        .vhost
                        .declare_queue_checked(
                            &d,
                            self.id,
                            &authz::declare_check(&self.access, &d.arguments),
                        )
                        .map_err(Fail::broker)?;
                    (q, Some(dest.routing()), true)
                }
                Destination::AmqQueue(n) | Destination::ReplyQueue(n) => (
                    self.vhost.queue(n, self.id).map_err(Fail::broker)?,
                    None,
                    false,
                ),
                Destination::TempQueue(_) => {
                    return Err(Fail::error(
                        "Invalid destination",
                        format!("'{raw}' is not a valid destination for 'SUBSCRIBE'\n"),
                    ))
                }
            };
        let (ctag, _) = consumer_tag(&f)?;
        if self.subs.contains_key(&ctag) {
            return Err(Fail::Fatal {
                message: "Duplicated subscription identifier".into(),
                detail: format!("A subscription identified by '{ctag}' already exists."),
            });
        }
        // As RabbitMQ's plugin: bind, then consume, each with its permissions.
        if let Err(e) = self.bind_and_consume(&queue, binding.as_ref(), &ctag, no_ack) {
            if server_named {
                // Declared by us for this subscription: safe to remove.
                let _ = self.vhost.delete_queue(&queue.name, false, false, self.id);
            }
            return Err(e);
        }
        self.out.add_consumed_queue(queue.clone());
        self.subs.insert(
            ctag,
            Sub {
                dest_hdr: raw,
                queue: queue.clone(),
                multi_ack,
            },
        );
        queue.dispatch();
        Ok(())
    }

    fn bind_and_consume(
        &mut self,
        queue: &Arc<Queue>,
        binding: Option<&(String, String)>,
        ctag: &str,
        no_ack: bool,
    ) -> Result<(), Fail> {
        if let Some((x, key)) = binding.filter(|(x, _)| !x.is_empty()) {
            authz::check_bind(&self.access, &queue.name, x)?;
            let exchange = self.vhost.exchange(x).map_err(Fail::broker)?;
            authz::check_bind_topic(&self.access, &exchange, key)?;
            self.vhost
                .bind_queue(&queue.name, x, key, &FieldTable::new(), self.id)
                .map_err(Fail::broker)?;
        }
        authz::check_consume(&self.access, &queue.name)?;
        self.sink.state.lock().subs.insert(
            ctag.to_string(),
            SubInfo {
                id: ctag.strip_prefix("T_").map(str::to_string),
                client_ack: !no_ack,
            },
        );
        let consumer = Arc::new(Consumer {
            tag: ShortStr::from(ctag),
            connection: self.id,
            channel: 1,
            no_ack,
            exclusive: false,
            priority: 0,
            arguments: FieldTable::new(),
            credit: Credit::new(self.prefetch),
            channel_credit: Arc::new(Credit::new(0)),
            sink: self.sink.clone(),
        });
        if let Err(e) = self.vhost.consume(queue, consumer) {
            self.sink.state.lock().subs.remove(ctag);
            return Err(Fail::broker(e));
        }
        Ok(())
    }

    pub(crate) fn unsubscribe(&mut self, f: Frame) -> Result<(), Fail> {
        let (ctag, description) = consumer_tag(&f)?;
        let Some(sub) = self.subs.remove(&ctag) else {
            return Err(Fail::error(
                "No subscription found",
                format!(
                    "UNSUBSCRIBE must refer to an existing subscription.\nSubscription to {} not found.\n",
                    erl(&description)
                ),
            ));
        };
        self.sink.state.lock().subs.remove(&ctag);
        self.out.remove_consumed_queue(&sub.queue);
        self.vhost.cancel(&sub.queue, self.id, &ctag);
        // UNSUBSCRIBE with durable:true ends a durable topic subscription
        // (`queue.delete`: configure on its queue).
        if let Ok(Destination::Topic(_)) = crate::destination::parse(&sub.dest_hdr) {
            if has_durable_header(&f) {
                self.access
                    .check(Kind::Queue, &sub.queue.name, Perm::Configure)
                    .map_err(Fail::broker)?;
                let _ = self
                    .vhost
                    .delete_queue(&sub.queue.name, false, false, self.id);
            }
        }
        Ok(())
    }
}
