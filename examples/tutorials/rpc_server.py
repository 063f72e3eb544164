#!/usr/bin/env python
"""Tutorial 6, "RPC" -- the server.

Answers requests arriving on the queue 'rpc_queue': each request body is a number
n, the reply is the n-th Fibonacci number, sent to the queue named in the
request's reply_to property with the request's correlation_id.
Run:  python rpc_server.py   (stop it with CTRL+C)
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def on_request(channel, method, props, body):
    n = int(body)
    print(" [.] fib(%s)" % n)
    answer = fib(n)

    channel.basic_publish(
        exchange="",
        routing_key=props.reply_to,
        properties=pika.BasicProperties(correlation_id=props.correlation_id),
        body=str(answer),
    )
    # Acknowledge the request only once its reply has been sent.
    channel.basic_ack(delivery_tag=method.delivery_tag)


def main():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    channel.queue_declare(queue="rpc_queue")

    # Several servers can share the load: give each one request at a time.
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue="rpc_queue", on_message_callback=on_request)

    print(" [x] Awaiting RPC requests")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
