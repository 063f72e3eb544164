#!/usr/bin/env python
"""Tutorial 3, "Publish/Subscribe" -- the producer.

Broadcasts one log message to the fanout exchange 'logs': every running
receive_logs.py gets a copy.
Run:  python emit_log.py [message]   (default "info: Hello World!")
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

# A fanout exchange ignores the routing key and copies to every bound queue.
channel.exchange_declare(exchange="logs", exchange_type="fanout")

message = " ".join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange="logs", routing_key="", body=message)
print(" [x] Sent %r" % message)

connection.close()
