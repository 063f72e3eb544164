#!/usr/bin/env python
"""Tutorial 5, "Topics" -- the producer.

Publishes one log message to the topic exchange 'topic_logs'. The routing key is
a list of words separated by dots, such as "kern.critical" (<facility>.<severity>).
Run:  python emit_log_topic.py [routing_key] [message]
      (defaults: anonymous.info, "Hello World!")
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

routing_key = sys.argv[1] if len(sys.argv) > 1 else "anonymous.info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(exchange="topic_logs", routing_key=routing_key, body=message)
print(" [x] Sent %r:%r" % (routing_key, message))

connection.close()
