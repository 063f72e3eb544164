//! SUBSCRIBE and UNSUBSCRIBE: a subscription is a binding from the MQTT exchange to the
//! session's queue, whose arguments record the MQTT filter, the granted QoS and the
//! MQTT 5 options. Retained messages matching a new subscription follow its SUBACK.

use warren_amqp_codec::{PropertiesView, ShortStr};
use warren_core::access::{Kind, Perm};
use warren_core::scheduler::now_ms;
use warren_mqtt_codec::topic::parse_shared;
use warren_mqtt_codec::{
    ByteStr, Packet, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    UnsubAck, Unsubscribe,
};

use crate::authz;
use crate::connection::{Conn, End};
use crate::delivery::{Inflight, Sub};
use crate::props;
use crate::topic::mqtt_to_amqp;

impl Conn {
    pub(crate) fn subscribe(&mut self, s: Subscribe) -> Result<(), End> {
        let v5 = self.version == ProtocolVersion::V5;
        let sub_id = s.properties.subscription_identifiers.first().copied();
        let mut codes = Vec::with_capacity(s.subscriptions.len());
        // (filter, granted QoS, retain handling, existed before, subscription id)
        let mut retained_for = Vec::new();
        // What a refused filter gets in the SUBACK.
        let refused_code = if v5 {
            ReasonCode::NOT_AUTHORIZED
        } else {
            ReasonCode::UNSPECIFIED_ERROR // 0x80, Failure
        };
        let mut refused = false;
        for sub in &s.subscriptions {
            if refused && self.mqtt.cfg.disconnect_on_unauthorized {
                // As RabbitMQ: once one is refused, the rest fail too (the connection is
                // about to close).
                codes.push(refused_code);
                continue;
            }
            let filter = sub.filter.as_str();
            if v5 && parse_shared(filter).is_some() {
                // As RabbitMQ: no shared subscriptions (CONNACK says so too).
                codes.push(ReasonCode::SHARED_SUBSCRIPTIONS_NOT_SUPPORTED);
                continue;
            }
            let Some(key) = mqtt_to_amqp(sub.filter.as_bytes()) else {
                codes.push(ReasonCode::TOPIC_FILTER_INVALID);
                continue;
            };
            // QoS 2 is granted as QoS 1, as RabbitMQ does.
            let qos = sub.options.qos.min(QoS::AtLeastOnce);
            let new = Sub {
                filter: filter.to_string(),
                key,
                qos,
                no_local: sub.options.no_local,
                retain_as_published: sub.options.retain_as_published,
                id: sub_id,
            };
            match self.check_subscribe(&new.key).and_then(|_| self.bind(new)) {
                Ok(existed) => {
                    codes.push(if qos == QoS::AtMostOnce {
                        ReasonCode::GRANTED_QOS_0
                    } else {
                        ReasonCode::GRANTED_QOS_1
                    });
                    retained_for.push((
                        filter.to_string(),
                        qos,
                        sub.options.retain_handling,
                        existed,
                        sub_id,
                    ));
                }
                Err(e) if authz::is_refusal(&e) => {
                    tracing::warn!(client_id = %self.client_id, connection = self.id, filter, "MQTT subscribe refused: {}", e.message);
                    codes.push(refused_code);
                    refused = true;
                }
                Err(e) => {
                    tracing::warn!(client_id = %self.client_id, filter, error = %e, "MQTT subscribe failed");
                    codes.push(ReasonCode::UNSPECIFIED_ERROR);
                }
            }
        }
        if refused && self.mqtt.cfg.disconnect_on_unauthorized {
            self.send(&Packet::SubAck(SubAck {
                packet_id: s.packet_id,
                properties: Default::default(),
                reason_codes: codes,
            }));
            return Err(End::unauthorized(None));
        }
        if let Err(e) = self.ensure_consumer() {
            tracing::error!(client_id = %self.client_id, error = %e, "cannot consume the MQTT session queue");
            return Err(End::error(ReasonCode::UNSPECIFIED_ERROR, e.to_string()));
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: s.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        }));
        for (filter, qos, handling, existed, id) in retained_for {
            let send = match handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNewSubscription => !existed,
                RetainHandling::DoNotSend => false,
            };
            if send {
                self.send_retained(&filter, qos, id);
            }
        }
        // Not `if let` on the lock: its guard would live through `dispatch`.
        let q = self.session.state.lock().queue.clone();
        if let Some(q) = q {
            q.dispatch();
        }
        Ok(())
    }

    /// The permissions a new subscription with binding key `key` needs, checked before
    /// anything changes: configure on the session queue if it is to be created, the
    /// binding's (write on the queue, read on the exchange, topic read), and read on the
    /// queue if it is not consumed yet.
    fn check_subscribe(&self, key: &str) -> warren_core::Result<()> {
        let (has_queue, has_consumer) = {
            let st = self.session.state.lock();
            (st.queue.is_some(), st.consumer.is_some())
        };
        let a = &self.access;
        if !has_queue && self.vhost.queue(&self.queue_name, self.id).is_err() {
            a.check(Kind::Queue, &self.queue_name, Perm::Configure)?;
        }
        let exchange = self.vhost.exchange(&self.mqtt.cfg.exchange)?;
        authz::check_bind(a, &self.queue_name, &exchange, key)?;
        if !has_consumer {
            a.check(Kind::Queue, &self.queue_name, Perm::Read)?;
        }
        Ok(())
    }

    /// Binds (or re-binds with new options) one subscription. Returns whether a
    /// subscription with this filter existed.
    fn bind(&mut self, new: Sub) -> warren_core::Result<bool> {
        let q = self.ensure_queue()?;
        let old = {
            let st = self.session.state.lock();
            st.subs.iter().find(|s| s.filter == new.filter).cloned()
        };
        let exchange = self.mqtt.cfg.exchange.clone();
        if let Some(old) = &old {
            if *old == new {
                return Ok(true);
            }
            self.vhost
                .unbind_queue(&q.name, &exchange, &old.key, &old.arguments(), self.id)?;
        }
        self.vhost
            .bind_queue(&q.name, &exchange, &new.key, &new.arguments(), self.id)?;
        let mut st = self.session.state.lock();
        let mut subs: Vec<Sub> = st
            .subs
            .iter()
            .filter(|s| s.filter != new.filter)
            .cloned()
            .collect();
        subs.push(new);
        st.set_subs(subs);
        Ok(old.is_some())
    }

    /// Sends the retained messages matching a new subscription, with RETAIN set, at the
    /// lower of the subscription's and the message's QoS (as RabbitMQ and Mosquitto do).
    fn send_retained(&mut self, filter: &str, sub_qos: QoS, id: Option<u32>) {
        let now = now_ms();
        for (topic, e) in self.mqtt.retained.matching(&self.vhost.name, filter, now) {
            let qos = sub_qos.min(e.qos);
            let properties = if self.version == ProtocolVersion::V5 {
                let view = PropertiesView::parse(&e.properties).unwrap_or_default();
                let msg = warren_store::Message::new(
                    ShortStr::from_static(""),
                    ShortStr::from_static(""),
                    e.properties.clone(),
                    &view,
                    e.payload.clone(),
                );
                let (mut p, _) = props::to_v5(&msg, e.expires_at, now);
                p.subscription_identifiers.extend(id);
                p
            } else {
                Default::default()
            };
            let mut st = self.session.state.lock();
            let packet_id = if qos == QoS::AtMostOnce {
                0
            } else {
                st.next_pid()
            };
            let p = Publish {
                dup: false,
                qos,
                retain: true,
                topic: ByteStr::from(topic),
                packet_id,
                properties,
                payload: e.payload,
            };
            if self.session.write_publish(&p) && qos != QoS::AtMostOnce {
                st.inflight.insert(packet_id, Inflight::Retained);
            }
        }
        self.out.schedule();
    }

    pub(crate) fn unsubscribe(&mut self, u: Unsubscribe) -> Result<(), End> {
        let mut codes = Vec::with_capacity(u.filters.len());
        for f in &u.filters {
            let old = {
                let st = self.session.state.lock();
                st.subs.iter().find(|s| s.filter == f.as_str()).cloned()
            };
            let Some(old) = old else {
                codes.push(ReasonCode::NO_SUBSCRIPTION_EXISTED);
                continue;
            };
            let r = self
                .vhost
                .exchange(&self.mqtt.cfg.exchange)
                .and_then(|x| authz::check_bind(&self.access, &self.queue_name, &x, &old.key))
                .and_then(|_| {
                    self.vhost.unbind_queue(
                        &self.queue_name,
                        &self.mqtt.cfg.exchange,
                        &old.key,
                        &old.arguments(),
                        self.id,
                    )
                });
            match r {
                Ok(()) => {
                    let mut st = self.session.state.lock();
                    let subs = st
                        .subs
                        .iter()
                        .filter(|s| s.filter != old.filter)
                        .cloned()
                        .collect();
                    st.set_subs(subs);
                    codes.push(ReasonCode::SUCCESS);
                }
                Err(e) if authz::is_refusal(&e) => {
                    // As RabbitMQ: the subscription stays, the connection too.
                    tracing::warn!(client_id = %self.client_id, connection = self.id, "MQTT unsubscribe refused: {}", e.message);
                    codes.push(ReasonCode::NOT_AUTHORIZED);
                }
                Err(e) => {
                    tracing::warn!(client_id = %self.client_id, error = %e, "MQTT unsubscribe failed");
                    codes.push(ReasonCode::UNSPECIFIED_ERROR);
                }
            }
        }
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: u.packet_id,
            properties: Default::default(),
            reason_codes: codes,
        }));
        Ok(())
    }
}
