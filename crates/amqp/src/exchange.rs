//! The exchange class: declare, delete, bind, unbind (exchange-to-exchange).

use warren_amqp_codec::methods::*;
use warren_core::vhost::ExchangeDeclare as Declare;
use warren_core::Result;

use crate::channel::Channel;
use crate::connection::ConnCtx;

impl Channel {
    pub(crate) fn exchange_declare(&mut self, ctx: &ConnCtx, m: ExchangeDeclare) -> Result<()> {
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
        ctx.vhost.delete_exchange(&m.exchange, m.if_unused)?;
        self.exchange_cache = None;
        if !m.nowait {
            self.send(ctx, ExchangeDeleteOk {});
        }
        Ok(())
    }

    pub(crate) fn exchange_bind(&mut self, ctx: &ConnCtx, m: ExchangeBind) -> Result<()> {
        ctx.vhost
            .bind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.nowait {
            self.send(ctx, ExchangeBindOk {});
        }
        Ok(())
    }

    pub(crate) fn exchange_unbind(&mut self, ctx: &ConnCtx, m: ExchangeUnbind) -> Result<()> {
        ctx.vhost
            .unbind_exchange(&m.destination, &m.source, &m.routing_key, &m.arguments)?;
        if !m.nowait {
            self.send(ctx, ExchangeUnbindOk {});
        }
        Ok(())
    }
}
