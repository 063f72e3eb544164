//! The exchange class: declare, delete, bind, unbind (exchange-to-exchange).

use warren_amqp_codec::methods::*;
use warren_core::access::{Access, Kind, Perm};
use warren_core::vhost::ExchangeDeclare as Declare;
use warren_core::{ExchangeKind, Result};

use crate::channel::Channel;
use crate::connection::ConnCtx;

impl Channel {
    pub(crate) fn exchange_declare(&mut self, ctx: &ConnCtx, m: ExchangeDeclare) -> Result<()> {
        let a = &self.access;
        if !m.passive {
            a.check(
                Kind::Exchange,
                Access::exchange_resource(&m.exchange),
                Perm::Configure,
            )?;
        }
        // Alternate-exchange permissions only matter when the exchange is created.
        let ae = m
            .arguments
            .get("alternate-exchange")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let check_new = |name: &str| -> Result<()> {
            if let Some(ae) = &ae {
                a.check(Kind::Exchange, name, Perm::Read)?;
                a.check(Kind::Exchange, ae, Perm::Write)?;
            }
            Ok(())
        };
        ctx.vhost.declare_exchange_checked(
            &Declare {
                name: m.exchange.to_string(),
                kind: m.kind.to_string(),
                passive: m.passive,
                durable: m.durable,
                auto_delete: m.auto_delete,
                internal: m.internal,
                arguments: m.arguments.clone(),
            },
            &check_new,
        )?;
        if !m.nowait {
            self.send(ctx, ExchangeDeclareOk {});
        }
        Ok(())
    }

    pub(crate) fn exchange_delete(&mut self, ctx: &ConnCtx, m: ExchangeDelete) -> Result<()> {
        self.access.check(
            Kind::Exchange,
            Access::exchange_resource(&m.exchange),
            Perm::Configure,
        )?;
        ctx.vhost.delete_exchange(&m.exchange, m.if_unused)?;
        self.exchange_cache = None;
        if !m.nowait {
            self.send(ctx, ExchangeDeleteOk {});
        }
        Ok(())
    }

    /// Binding checks: write on the destination, read on the source, and the topic read
    /// permission on the key for a topic source.
    pub(crate) fn check_bind(
        &self,
        ctx: &ConnCtx,
        dest: (Kind, &str),
        source: &str,
        routing_key: &str,
    ) -> Result<()> {
        let a = &self.access;
        a.check(dest.0, dest.1, Perm::Write)?;
        let src = Access::exchange_resource(source);
        a.check(Kind::Exchange, src, Perm::Read)?;
        if a.has_topic_rules() {
            if let Ok(x) = ctx.vhost.exchange(source) {
                if x.kind == ExchangeKind::Topic {
                    a.check_topic(src, routing_key, Perm::Read)?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn exchange_bind(&mut self, ctx: &ConnCtx, m: ExchangeBind) -> Result<()> {
        self.check_bind(
            ctx,
            (Kind::Exchange, Access::exchange_resource(&m.destination)),
            &m.source,
            &m.routing_key,
        )?;
        ctx.vhost
            .bind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.nowait {
            self.send(ctx, ExchangeBindOk {});
        }
        Ok(())
    }

    pub(crate) fn exchange_unbind(&mut self, ctx: &ConnCtx, m: ExchangeUnbind) -> Result<()> {
        self.check_bind(
            ctx,
            (Kind::Exchange, Access::exchange_resource(&m.destination)),
            &m.source,
            &m.routing_key,
        )?;
        ctx.vhost
            .unbind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.nowait {
            self.send(ctx, ExchangeUnbindOk {});
        }
        Ok(())
    }
}
