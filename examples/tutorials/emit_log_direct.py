#!/usr/bin/env python
"""Tutorial 4, "Routing" -- the producer.

Publishes one log message to the direct exchange 'direct_logs' with its severity
as routing key; only the subscribers bound with that severity get it.
Run:  python emit_log_direct.py [severity] [message]   (defaults: info, "Hello World!")
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

severity = sys.argv[1] if len(sys.argv) > 1 else "info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(exchange="direct_logs", routing_key=severity, body=message)
print(" [x] Sent %r:%r" % (severity, message))

connection.close()
