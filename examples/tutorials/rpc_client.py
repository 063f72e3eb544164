#!/usr/bin/env python
"""Tutorial 6, "RPC" -- the client.

Asks the RPC server for a Fibonacci number and waits for the answer.
Start rpc_server.py first, then run:  python rpc_client.py [n]   (default n = 30)
"""
import os
import sys
import uuid

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


class FibonacciRpcClient:
    def __init__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.connection.channel()

        # Our own private queue for the replies; the server learns its name
        # from the reply_to property of each request.
        result = self.channel.queue_declare(queue="", exclusive=True)
        self.callback_queue = result.method.queue
        self.channel.basic_consume(
            queue=self.callback_queue, on_message_callback=self.on_response, auto_ack=True
        )

        self.corr_id = None
        self.response = None

    def on_response(self, channel, method, props, body):
        # Replies to anything but the current request are ignored.
        if props.correlation_id == self.corr_id:
            self.response = body

    def call(self, n):
        self.corr_id = str(uuid.uuid4())
        self.response = None
        self.channel.basic_publish(
            exchange="",
            routing_key="rpc_queue",
            properties=pika.BasicProperties(
                reply_to=self.callback_queue, correlation_id=self.corr_id
            ),
            body=str(n),
        )
        while self.response is None:
            self.connection.process_data_events(time_limit=None)
        return int(self.response)

    def close(self):
        self.connection.close()


n = int(sys.argv[1]) if len(sys.argv) > 1 else 30

fibonacci_rpc = FibonacciRpcClient()
print(" [x] Requesting fib(%d)" % n)
response = fibonacci_rpc.call(n)
print(" [.] Got %r" % response)
fibonacci_rpc.close()
