//! The exchange class: declare, delete, bind, unbind (exchange-to-exchange).

use warren_amqp_codec::methods::*;
use warren_core::access::{Access, Kind, Perm};
use warren_core::vhost::ExchangeDeclare as Declare;
use warren_core::{ExchangeKind, Result};

use crate::channel::Channel;
use crate::connection::ConnCtx;

impl Channel {
    pub(crate) fn exchange_declare(&mut self, ctx: &ConnCtx, m: ExchangeDeclare) -> Result<()> {
        if !m.passive {
            let a = &self.access;
            let name = Access::exchange_resource(&m.exchange);
            a.check(Kind::Exchange, name, Perm::Configure)?;
            if let Some(ae) = m
                .arguments
                .get("alternate-exchange")
                .and_then(|v| v.as_str())
            {
                a.check(Kind::Exchange, ae, Perm::Write)?;
                a.check(Kind::Exchange, name, Perm::Read)?;
            }
        }
        ctx.vhost.declare_exchange(&Declare {
            name: m.exchange.to_string(),
            kind: m.kind.to_string(),
            passive: m.passive,
            durable: m.durable,
            auto_delete: m.auto_delete,
            internal: m.internal,
            arguments: m.arguments,
        })?;
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
